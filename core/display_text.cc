#include "core/display_text.h"

#include <cstdint>

#include <fmt/format.h>

namespace idevid {
namespace {

// Length of the valid UTF-8 sequence that starts at `text[0]`, or 0 when it is not one
// (RFC 3629 section 4: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// One byte that is ASCII or not part of valid UTF-8: itself when printable ASCII, else an escape.
std::string AsciiEscape(unsigned char c) {
  switch (c) {
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\\': return "\\\\";
    default: break;
  }
  if (c < 0x20 || c >= 0x7F) return fmt::format("\\x{:02x}", c);
  return std::string(1, static_cast<char>(c));
}

// U+0080..U+009F are C1 control characters (CSI among them): escaped like C0 ones.
bool IsC1Control(std::string_view sequence) {
  return sequence.size() == 2 && static_cast<unsigned char>(sequence[0]) == 0xC2 &&
         static_cast<unsigned char>(sequence[1]) <= 0x9F;
}

// The code point of a valid UTF-8 sequence of 2 to 4 bytes.
char32_t CodePoint(std::string_view sequence) {
  const auto byte = [&](std::size_t i) {
    return static_cast<char32_t>(static_cast<unsigned char>(sequence[i]));
  };
  char32_t lead_bits = sequence.size() == 2 ? 0x1F : sequence.size() == 3 ? 0x0F : 0x07;
  char32_t cp = byte(0) & lead_bits;
  for (std::size_t i = 1; i < sequence.size(); ++i) cp = (cp << 6) | (byte(i) & 0x3F);
  return cp;
}

// Characters that print as nothing or reorder what follows (Unicode Cf, Zl, Zp of the General
// Punctuation block, the soft hyphen, the BOM): a name could hide or reverse text with them.
bool IsInvisibleOrBidi(char32_t cp) {
  return cp == 0x00AD || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202E) ||
         (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF;
}

}  // namespace

std::string DisplayText(std::string_view raw, std::size_t max_bytes) {
  std::string out;
  std::size_t i = 0;
  while (i < raw.size()) {
    const std::size_t length = Utf8SequenceLength(raw.substr(i));
    const std::size_t step = length == 0 ? 1 : length;
    if (i + step > max_bytes) break;
    const std::string_view sequence = raw.substr(i, step);
    if (length == 0 || length == 1) {
      out += AsciiEscape(static_cast<unsigned char>(raw[i]));
    } else if (IsC1Control(sequence)) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(sequence[1]));
    } else if (char32_t cp = CodePoint(sequence); IsInvisibleOrBidi(cp)) {
      out += fmt::format("\\u{:04x}", static_cast<std::uint32_t>(cp));
    } else {
      out += sequence;
    }
    i += step;
  }
  if (i < raw.size()) out += fmt::format("...({} bytes)", raw.size());
  return out;
}

std::string QuotedDisplayText(std::string_view raw, std::size_t max_bytes) {
  std::string escaped = DisplayText(raw, max_bytes);
  std::string out = "\"";
  for (char c : escaped) {
    if (c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace idevid
