// The HTTP side of remote attestation at the cloud (version 1): an accepted identity's
// GET /v1/identity answered with a challenge (HTTP 401, the connection kept open), then one
// POST /v1/attestation with the evidence on the same TLS session, judged against the policy and
// answered with the attestation verdict (200 attested, 403 refused; 400, 411, 413 for evidence
// that cannot be judged). Every finding goes to the connection log.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "cloud/attest_policy.h"
#include "cloud/attestation_verifier.h"
#include "cloud/connection_log.h"
#include "cloud/http_exchange.h"
#include "cloud/identity_verdict.h"
#include "core/attestation_wire.h"

namespace idevid {

// What a cloud started with a policy holds for its lifetime, shared by its connections.
struct AttestationService {
  AttestPolicy policy;
  BootCounters counters;  // the TPM counters each serial last attested
};

// The challenge for one session: a fresh kAttestationNonceBytes nonce (RAND_bytes) and the
// policy's PCRs. kOpenSsl when the random generator fails.
Result<AttestationChallenge> NewChallenge(const AttestPolicy& policy);

// The answer to GET /v1/identity that carries `challenge`: HTTP 401 with
// `WWW-Authenticate: IDevID-Attestation version="1"` (RFC 9110 §11.6.1) and the challenge's
// JSON; the connection stays open unless the client asked to close it (`close`).
HttpResponse ChallengeResponse(const AttestationChallenge& challenge, bool close);

// True when the request head has `Connection: close` (RFC 9112 §9.6): the cloud must close
// after its answer, so no evidence can follow a challenge.
bool AsksToClose(std::string_view head);

// The body length an evidence request head announces, or the refusal it gets: 404 (another
// resource), 405 (another method than POST), 411 (no Content-Length), 400 (a Content-Length that
// is not a number, or given twice with different values), 413 (over kMaxEvidenceBytes).
std::variant<std::size_t, HttpResponse> EvidenceBodyLength(std::string_view head);

// The attestation verdict's response: 200 when attested, 403 when refused (and `status` when
// given: 400, 411, 413), with the verdict's JSON plus the identity's serial and model.
HttpResponse AttestationResponse(const AttestationVerdict& verdict, const IdentityVerdict& identity,
                                 int status = 0);

// A refusal without verification, for evidence that could not be judged (`id`: evidence-request,
// evidence-too-large, evidence-malformed, evidence-missing).
AttestationVerdict RefusedEvidence(const AttestPolicy& policy, std::string id, std::string evidence);

// Judges an evidence body: ParseEvidence (evidence-malformed when it does not parse), then
// VerifyAttestation in `context`.
AttestationVerdict JudgeEvidence(std::string_view body, const AttestationContext& context);

// Writes the attestation verdict to the log record: "attestation" ("attested"/"refused"),
// "attestation_policy" and every finding in "attestation_findings"; the reason is its reason.
void RecordAttestation(const AttestationVerdict& verdict, ConnectionRecord& record);

// The whole exchange on an established session whose identity was accepted: the challenge,
// the evidence read within `request_deadline` (each wait at most `io_timeout`), the verdict
// answered and recorded. `exporter` is the session's exporter value. Never fails: every end is
// a record.
struct AttestationExchange {
  SSL* ssl = nullptr;
  int fd = -1;
  std::chrono::milliseconds io_timeout;
  std::chrono::milliseconds request_deadline;
  X509_STORE* factory_ca = nullptr;
  AttestationService* service = nullptr;
};
void ServeAttestation(const AttestationExchange& exchange, std::string_view identity_head,
                      const IdentityVerdict& identity, ConnectionRecord& record);

}  // namespace idevid
