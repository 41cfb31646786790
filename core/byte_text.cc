#include "core/byte_text.h"

#include <openssl/evp.h>

#include <fmt/format.h>

#include "core/display_text.h"

namespace idevid {
namespace {

bool IsBase64Letter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string EncodeBase64(std::span<const std::uint8_t> bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

Result<Bytes> DecodeBase64(std::string_view text) {
  // RFC 4648 §4: groups of four letters, the last one padded with at most two '='.
  if (text.size() % 4 != 0) {
    return ConfigError(ConfigCode::kSyntax, fmt::format("is not padded base64 (RFC 4648 §4): {} characters, "
                                                        "not a multiple of 4",
                                                        text.size()));
  }
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  for (std::size_t i = 0; i + padding < text.size(); ++i) {
    if (!IsBase64Letter(text[i])) {
      return ConfigError(ConfigCode::kSyntax, fmt::format("is not base64 (RFC 4648 §4): character {} is {}",
                                                          i, QuotedDisplayText(text.substr(i, 1))));
    }
  }
  if (text.empty()) return Bytes{};
  Bytes out(text.size() / 4 * 3);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) < padding) {
    return ConfigError(ConfigCode::kSyntax, "is not base64 (RFC 4648 §4)");
  }
  // EVP_DecodeBlock counts the padding as zero bytes.
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

Result<Bytes> DecodeHex(std::string_view text) {
  if (text.size() % 2 != 0) {
    return ConfigError(ConfigCode::kSyntax,
                       fmt::format("is not hex: {} digits, not an even number", text.size()));
  }
  Bytes out(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); ++i) {
    int value = HexValue(text[i]);
    if (value < 0) {
      return ConfigError(ConfigCode::kSyntax, fmt::format("is not hex: character {} is {}", i,
                                                          QuotedDisplayText(text.substr(i, 1))));
    }
    out[i / 2] = static_cast<std::uint8_t>(out[i / 2] << 4 | value);
  }
  return out;
}

}  // namespace idevid
