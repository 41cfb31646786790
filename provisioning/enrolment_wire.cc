#include "provisioning/enrolment_wire.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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
  auto bytes = DecodeBase64(text);
  // Bad base64 from a peer is a malformed message, whatever the decoder calls it.
  if (!bytes) return Malformed(fmt::format("the field \"{}\": {}", name, bytes.error().root_message()));
  return std::move(bytes).value();
}

}  // namespace

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

std::string EncodeCommitRequest(std::string_view session, const EnrolmentCommit& commit) {
  Json body = {{"session", session}, {"line_check", commit.line_check}, {"record", commit.record}};
  if (!commit.station.empty()) body["station"] = commit.station;
  return Dump(std::move(body));
}

Result<EnrolmentCommitRequest> ParseCommitRequest(std::string_view body) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseBody(body));
  EnrolmentCommitRequest request;
  IDEVID_ASSIGN_OR_RETURN(request.session, StringField(doc, "session"));
  IDEVID_ASSIGN_OR_RETURN(request.commit.line_check, StringField(doc, "line_check"));
  if (doc.contains("station")) {
    IDEVID_ASSIGN_OR_RETURN(request.commit.station, StringField(doc, "station"));
  }
  auto record = doc.find("record");
  if (record == doc.end()) return Malformed("the field \"record\" is missing");
  if (!record->is_object()) return Malformed("the field \"record\" is not an object");
  request.commit.record = *record;
  return request;
}

std::string EncodeCommitted(const EnrolmentCommitted& committed) {
  return Dump({{"committed", committed.serial}});
}

Result<EnrolmentCommitted> ParseCommitted(std::string_view body) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseBody(body));
  EnrolmentCommitted committed;
  IDEVID_ASSIGN_OR_RETURN(committed.serial, StringField(doc, "committed"));
  return committed;
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
