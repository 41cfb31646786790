// The parser of the device configuration language: Junos-style `set` statements, one per line,
// `#` comments, double-quoted words for values with blanks.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/result.h"
#include "device/config/device_config.h"

namespace idevid {

// Parses a whole configuration (a leading UTF-8 byte order mark is ignored). The first problem
// fails the parse with kConfig and a message "FILE:LINE:COLUMN: what was expected and what was
// found"; a statement setting an attribute an earlier one set is refused naming both lines.
// After parsing, references are checked (an SSL-I profile naming an unknown certificate-id or CA
// profile, a local certificate without its key, ...) and reported at the statement that makes
// them. Words from the text are echoed escaped and cut (DisplayText).
Result<DeviceConfig> ParseDeviceConfig(std::string_view text, const std::string& file_name);

// Reads and parses a configuration file, then checks that each ca-profile's certificate file can
// be read. kConfig when the file is missing or not readable (the user's to fix), when it does
// not parse, or naming the statement of an unreadable CA file; kIo for other read failures.
Result<DeviceConfig> LoadDeviceConfig(const std::filesystem::path& path);

}  // namespace idevid
