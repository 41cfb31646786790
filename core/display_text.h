// Bytes from outside (a peer, a file, a command line) made safe to echo to a terminal or a log.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace idevid {

// The longest piece of outside input an error message or log line echoes, in bytes of input.
inline constexpr std::size_t kDisplayTextMaxBytes = 120;

// Returns `raw` as printable text: valid UTF-8 other than control characters is kept; a control
// character, a byte of invalid UTF-8, a backslash and DEL are written as C escapes (\n, \t, \\,
// \x1b, ...); invisible and bidi-control characters (U+200B, U+202E, ...) as \uXXXX. Input longer than
// `max_bytes` is cut at a character boundary and followed by
// "...(N bytes)" with the whole length, so that a 100 KB name never fills a terminal. Never fails.
std::string DisplayText(std::string_view raw, std::size_t max_bytes = kDisplayTextMaxBytes);

// DisplayText in double quotes: "name", the form error messages use for a value from outside.
std::string QuotedDisplayText(std::string_view raw, std::size_t max_bytes = kDisplayTextMaxBytes);

}  // namespace idevid
