// Bytes as text: padded base64 (RFC 4648 §4) and hex, strict in what they read.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/x509.h"

namespace idevid {

// Padded base64 (RFC 4648 §4) of `bytes`.
std::string EncodeBase64(std::span<const std::uint8_t> bytes);
// Decodes padded base64: only the alphabet, a length that is a multiple of 4, at most two '=' at
// the end. Fails with kConfig/kSyntax naming what is wrong (outside input escaped).
Result<Bytes> DecodeBase64(std::string_view text);
// Decodes hex digits (either case, an even number of them; Hex() in core/x509.h writes them).
// Fails with kConfig/kSyntax naming what is wrong (outside input escaped).
Result<Bytes> DecodeHex(std::string_view text);

}  // namespace idevid
