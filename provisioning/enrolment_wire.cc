#include "provisioning/enrolment_wire.h"

#include <openssl/evp.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/display_text.h"

namespace idevid {
namespace {

using Json = nlohmann::json;

tl::unexpected<Error> Malformed(std::string message) {
  return PeerError(PeerCode::kMalformed, std::move(message));
}

// The body with our version stamped in; strings that are not UTF-8 become U+FFFD, not an exception.
std::string Dump(Json fields) {
  fields["version"] = kEnrolmentWireVersion;
  return fields.dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool IsBase64Letter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// A JSON object of our version.
Result<Json> ParseBody(std::string_view body) {
  Json doc;
  try {
    doc = Json::parse(body);
  } catch (const Json::parse_error& e) {
    return Malformed(fmt::format("the body is not JSON (RFC 8259; syntax error at byte {})", e.byte));
  }
  if (!doc.is_object()) return Malformed("the body is not a JSON object");
  auto version = doc.find("version");
  if (version == doc.end()) return Malformed("the field \"version\" is missing");
  if (!version->is_number_integer()) return Malformed("the field \"version\" is not an integer");
  if (*version != kEnrolmentWireVersion) {
    return Malformed(
        fmt::format("version {} is not spoken here (version {} is)", version->dump(), kEnrolmentWireVersion));
  }
  return doc;
}

Result<std::string> StringField(const Json& doc, const std::string& name) {
  auto it = doc.find(name);
  if (it == doc.end()) return Malformed(fmt::format("the field \"{}\" is missing", name));
  if (!it->is_string()) return Malformed(fmt::format("the field \"{}\" is not a string", name));
  return it->get<std::string>();
}

Result<Bytes> Base64Field(const Json& doc, const std::string& name) {
  IDEVID_ASSIGN_OR_RETURN(std::string text, StringField(doc, name));
  IDEVID_ASSIGN_OR_RETURN(Bytes bytes, DecodeBase64(text), "the field \"{}\"", name);
  return bytes;
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
    return Malformed(
        fmt::format("is not padded base64 (RFC 4648 §4): {} characters, not a multiple of 4", text.size()));
  }
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  for (std::size_t i = 0; i + padding < text.size(); ++i) {
    if (!IsBase64Letter(text[i])) {
      return Malformed(fmt::format("is not base64 (RFC 4648 §4): character {} is {}", i,
                                   QuotedDisplayText(text.substr(i, 1))));
    }
  }
  if (text.empty()) return Bytes{};
  Bytes out(text.size() / 4 * 3);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) < padding) return Malformed("is not base64 (RFC 4648 §4)");
  // EVP_DecodeBlock counts the padding as zero bytes.
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::string EncodeBeginRequest(const EnrolmentOrder& order) {
  Json body = {{"serial", order.serial}, {"model", order.model}};
  if (!order.station.empty()) body["station"] = order.station;
  return Dump(std::move(body));
}

Result<EnrolmentOrder> ParseBeginRequest(std::string_view body) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseBody(body));
  EnrolmentOrder order;
  IDEVID_ASSIGN_OR_RETURN(order.serial, StringField(doc, "serial"));
  IDEVID_ASSIGN_OR_RETURN(order.model, StringField(doc, "model"));
  if (doc.contains("station")) {
    IDEVID_ASSIGN_OR_RETURN(order.station, StringField(doc, "station"));
  }
  return order;
}

std::string EncodeSubmitRequest(std::string_view session, std::span<const std::uint8_t> csr) {
  return Dump({{"session", session}, {"csr", EncodeBase64(csr)}});
}

Result<SubmitRequest> ParseSubmitRequest(std::string_view body) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseBody(body));
  SubmitRequest request;
  IDEVID_ASSIGN_OR_RETURN(request.session, StringField(doc, "session"));
  IDEVID_ASSIGN_OR_RETURN(request.csr, Base64Field(doc, "csr"));
  return request;
}

std::string EncodeActivateRequest(std::string_view session, std::span<const std::uint8_t> secret) {
  return Dump({{"session", session}, {"secret", EncodeBase64(secret)}});
}

Result<ActivateRequest> ParseActivateRequest(std::string_view body) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseBody(body));
  ActivateRequest request;
  IDEVID_ASSIGN_OR_RETURN(request.session, StringField(doc, "session"));
  IDEVID_ASSIGN_OR_RETURN(request.secret, Base64Field(doc, "secret"));
  return request;
}

std::string EncodeSession(const EnrolmentSession& session) {
  return Dump({{"session", session.id}, {"nonce", EncodeBase64(session.nonce)}});
}

Result<EnrolmentSession> ParseSession(std::string_view body) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseBody(body));
  EnrolmentSession session;
  IDEVID_ASSIGN_OR_RETURN(session.id, StringField(doc, "session"));
  IDEVID_ASSIGN_OR_RETURN(session.nonce, Base64Field(doc, "nonce"));
  return session;
}

std::string EncodeCredential(const Credential& credential) {
  return Dump({{"credential_blob", EncodeBase64(credential.blob)},
               {"encrypted_secret", EncodeBase64(credential.encrypted_secret)}});
}

Result<Credential> ParseCredential(std::string_view body) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseBody(body));
  Credential credential;
  IDEVID_ASSIGN_OR_RETURN(credential.blob, Base64Field(doc, "credential_blob"));
  IDEVID_ASSIGN_OR_RETURN(credential.encrypted_secret, Base64Field(doc, "encrypted_secret"));
  return credential;
}

std::string EncodeCertificates(const EnrolmentCertificates& certificates) {
  return Dump({{"idevid_certificate", EncodeBase64(certificates.idevid_certificate)},
               {"iak_certificate", EncodeBase64(certificates.iak_certificate)}});
}

Result<EnrolmentCertificates> ParseCertificates(std::string_view body) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseBody(body));
  EnrolmentCertificates certificates;
  IDEVID_ASSIGN_OR_RETURN(certificates.idevid_certificate, Base64Field(doc, "idevid_certificate"));
  IDEVID_ASSIGN_OR_RETURN(certificates.iak_certificate, Base64Field(doc, "iak_certificate"));
  return certificates;
}

std::string EncodeRefusal(const EnrolmentRefusal& refusal) {
  return Dump({{"refused", {{"reason", refusal.reason}, {"detail", refusal.detail}}}});
}

Result<EnrolmentRefusal> ParseRefusal(std::string_view body) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseBody(body));
  auto refused = doc.find("refused");
  if (refused == doc.end()) return Malformed("the field \"refused\" is missing");
  if (!refused->is_object()) return Malformed("the field \"refused\" is not an object");
  EnrolmentRefusal refusal;
  IDEVID_ASSIGN_OR_RETURN(refusal.reason, StringField(*refused, "reason"), "the field \"refused\"");
  IDEVID_ASSIGN_OR_RETURN(refusal.detail, StringField(*refused, "detail"), "the field \"refused\"");
  return refusal;
}

std::string EncodeWireError(std::string_view message) { return Dump({{"error", message}}); }

Result<std::string> ParseWireError(std::string_view body) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseBody(body));
  return StringField(doc, "error");
}

}  // namespace idevid
