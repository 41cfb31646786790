#include "core/pkcs11_uri.h"

#include <cstring>

#include <fmt/format.h>

#include "core/display_text.h"

namespace idevid {

std::string PaddedText(const unsigned char* field, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(field), size);
  std::size_t end = text.find_last_not_of(std::string_view(" \0", 2));
  text.erase(end == std::string::npos ? 0 : end + 1);
  return text;
}

namespace {

std::optional<Bytes> Attribute(P11KitUri* uri, CK_ATTRIBUTE_TYPE type) {
  CK_ATTRIBUTE* attribute = p11_kit_uri_get_attribute(uri, type);
  if (attribute == nullptr || attribute->pValue == nullptr) return std::nullopt;
  const auto* data = static_cast<const std::uint8_t*>(attribute->pValue);
  return Bytes(data, data + attribute->ulValueLen);
}

}  // namespace

Result<Pkcs11Uri> Pkcs11Uri::Parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("--pkcs11 {} {}", QuotedDisplayText(text), why));
  };
  Pkcs11Uri parsed;
  parsed.text_ = std::string(text);
  parsed.uri_ = std::shared_ptr<P11KitUri>(p11_kit_uri_new(), Free());
  if (!parsed.uri_) return bad("cannot be parsed: out of memory");
  // RFC 7512 2.3: the token and object attributes.
  int rc = p11_kit_uri_parse(parsed.text_.c_str(), P11_KIT_URI_FOR_OBJECT_ON_TOKEN, parsed.uri_.get());
  if (rc != P11_KIT_URI_OK) {
    return bad(
        fmt::format("is not a PKCS#11 URI (RFC 7512): {}; e.g. 'pkcs11:token=Factory;object=issuing-ca'",
                    p11_kit_uri_message(rc)));
  }
  if (p11_kit_uri_get_pin_value(parsed.uri_.get()) != nullptr ||
      p11_kit_uri_get_pin_source(parsed.uri_.get()) != nullptr) {
    return bad("carries a PIN; give the user PIN in IDEVID_PKCS11_PIN or --pkcs11-pin-file instead");
  }
  CK_TOKEN_INFO* token = p11_kit_uri_get_token_info(parsed.uri_.get());
  if (PaddedText(token->label, sizeof token->label).empty() &&
      PaddedText(token->serialNumber, sizeof token->serialNumber).empty()) {
    return bad("names no token: add token=LABEL or serial=SERIAL");
  }
  if (auto label = Attribute(parsed.uri_.get(), CKA_LABEL))
    parsed.object_ = std::string(label->begin(), label->end());
  parsed.id_ = Attribute(parsed.uri_.get(), CKA_ID);
  if (!parsed.object_ && !parsed.id_) return bad("names no key: add object=LABEL (or id=%XX...)");
  return parsed;
}

bool Pkcs11Uri::MatchesToken(const CK_TOKEN_INFO& token) const {
  return p11_kit_uri_match_token_info(uri_.get(), &token) == 1;
}

std::string Pkcs11Uri::TokenDescription() const {
  CK_TOKEN_INFO* token = p11_kit_uri_get_token_info(uri_.get());
  std::string label = PaddedText(token->label, sizeof token->label);
  std::string serial = PaddedText(token->serialNumber, sizeof token->serialNumber);
  if (!label.empty() && !serial.empty()) {
    return fmt::format("token {} (serial {})", QuotedDisplayText(label), QuotedDisplayText(serial));
  }
  return label.empty() ? fmt::format("token with serial {}", QuotedDisplayText(serial))
                       : fmt::format("token {}", QuotedDisplayText(label));
}

}  // namespace idevid
