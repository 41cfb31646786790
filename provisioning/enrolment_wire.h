// The enrolment exchange (provisioning/enrolment_channel.h) as JSON over HTTPS, version 1.
//
//   POST /v1/enrol/begin    {"version":1,"serial":S,"model":M[,"station":T]}
//                        -> 200 {"version":1,"session":ID,"nonce":B64}
//   POST /v1/enrol/request  {"version":1,"session":ID,"csr":B64}
//                        -> 200 {"version":1,"credential_blob":B64,"encrypted_secret":B64}
//   POST /v1/enrol/activate {"version":1,"session":ID,"secret":B64}
//                        -> 200 {"version":1,"idevid_certificate":B64 DER,"iak_certificate":B64 DER}
//   POST /v1/enrol/commit   {"version":1,"session":ID,"line_check":"PASS"|"FAIL","record":{...}
//                            [,"station":T]}
//                        -> 200 {"version":1,"committed":S}
//
// A refusal at any step: 403 {"version":1,"refused":{"reason":R,"detail":D}}.
// A request the service cannot read (not JSON, a field missing or of the wrong type, another
// version, bad base64): 400 {"version":1,"error":"what was wrong"}. A body over 256 KiB: 413;
// another path: 404; another method: 405; the authority failing: 500; each with {"version":1,
// "error":...}. B64 is padded base64 (RFC 4648 §4). Bodies are application/json both ways;
// fields a version does not know are ignored. "station" is what the station calls itself; a
// service that verifies station certificates takes it from the certificate instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/byte_text.h"
#include "core/result.h"
#include "core/x509.h"
#include "provisioning/enrolment_channel.h"

namespace idevid {

inline constexpr int kEnrolmentWireVersion = 1;
inline constexpr std::size_t kEnrolmentBodyMaxBytes = 256 * 1024;
inline constexpr const char* kEnrolBeginPath = "/v1/enrol/begin";
inline constexpr const char* kEnrolRequestPath = "/v1/enrol/request";
inline constexpr const char* kEnrolActivatePath = "/v1/enrol/activate";
inline constexpr const char* kEnrolCommitPath = "/v1/enrol/commit";

// The bodies of the second and third requests.
struct SubmitRequest {
  std::string session;
  Bytes csr;
};
struct ActivateRequest {
  std::string session;
  Bytes secret;
};

// The body of the fourth request.
struct EnrolmentCommitRequest {
  std::string session;
  EnrolmentCommit commit;
};

// Request bodies. The parsers fail with kPeer/kMalformed whose root message names what was
// wrong (outside input escaped), for a 400 answer or a client's error.
std::string EncodeBeginRequest(const EnrolmentOrder& order);
Result<EnrolmentOrder> ParseBeginRequest(std::string_view body);
std::string EncodeSubmitRequest(std::string_view session, std::span<const std::uint8_t> csr);
Result<SubmitRequest> ParseSubmitRequest(std::string_view body);
std::string EncodeActivateRequest(std::string_view session, std::span<const std::uint8_t> secret);
Result<ActivateRequest> ParseActivateRequest(std::string_view body);
std::string EncodeCommitRequest(std::string_view session, const EnrolmentCommit& commit);
Result<EnrolmentCommitRequest> ParseCommitRequest(std::string_view body);

// Answer bodies; the parsers fail as the request parsers do.
std::string EncodeSession(const EnrolmentSession& session);
Result<EnrolmentSession> ParseSession(std::string_view body);
std::string EncodeCredential(const Credential& credential);
Result<Credential> ParseCredential(std::string_view body);
std::string EncodeCertificates(const EnrolmentCertificates& certificates);
Result<EnrolmentCertificates> ParseCertificates(std::string_view body);
std::string EncodeCommitted(const EnrolmentCommitted& committed);
Result<EnrolmentCommitted> ParseCommitted(std::string_view body);
std::string EncodeRefusal(const EnrolmentRefusal& refusal);
Result<EnrolmentRefusal> ParseRefusal(std::string_view body);
// {"version":1,"error":message}; the message must already be escaped.
std::string EncodeWireError(std::string_view message);
// The "error" text of an error body, as sent (not escaped).
Result<std::string> ParseWireError(std::string_view body);

}  // namespace idevid
