// The SSL-initiation client: opens client-authenticated TLS to the cloud with a profile from
// the device configuration, in TPM mode (idev-id, signatures made in the TPM through the
// idevid-signer provider) or file mode, and asks the cloud who it thinks is talking.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include <openssl/types.h>
#include <nlohmann/json.hpp>

#include "core/result.h"
#include "core/unique_fd.h"
#include "device/config/device_config.h"
#include "device/ssli/attestation_prover.h"
#include "device/ssli/session_io.h"

namespace idevid {

// Makes the evidence a session answers the cloud's attestation challenge with, given the session's
// exporter value and the device's genuine prover (which it may use, or not). The default is
// genuine.Prove(challenge, exporter); tests and scenarios replace it to send other evidence.
using AttestationHook = std::function<Result<AttestationEvidence>(const AttestationChallenge& challenge,
                                                                  std::span<const std::uint8_t> exporter,
                                                                  const AttestationProver& genuine)>;

struct SsliConnectRequest {
  const DeviceConfig* config = nullptr;
  std::string profile;
  std::optional<std::filesystem::path> pkid_socket;  // certificate and key reference from pkid
  std::string tcti;  // the TPM (TPM mode); without pkid also where idev-id is read
  std::string host;
  std::uint16_t port = 0;
};

// How an SsliClient runs its sessions.
struct SsliClientOptions {
  // The whole session (connect, handshake, request, response) ends within this, however the
  // cloud paces its bytes; each single wait is also bounded by the profile's handshake-timeout.
  std::chrono::milliseconds deadline = std::chrono::seconds(30);
  // The largest answer taken from the cloud (status line, headers and body); a verdict is small.
  std::size_t max_response_bytes = 64 * 1024;
  // Keep the TLS session (TLS 1.3 ticket, TLS 1.2 ticket or session id) of a verified connection
  // and resume it on the next one, so that the TPM does not sign on every connection. A client
  // talks to one peer under one expected name, so a session is only offered to the server it
  // was verified for. Off by default: every session is then a full handshake signed in the TPM.
  bool resume_sessions = false;
  // How a TPM-mode session with an attestation configuration answers a challenge; empty: the
  // genuine evidence. An error it returns ends the session with that error.
  AttestationHook prove;
};

// How the cloud refused this unit's identity: its verdict on the unit, not an error.
struct SsliRefusal {
  enum class Kind {
    kTlsAlert,     // a fatal alert it sent about our certificate or our proof of its key
    kHttpVerdict,  // its answer to GET /v1/identity (HTTP 403 with a JSON verdict), or to our
                   // attestation evidence (HTTP 4xx), or a challenge this device cannot answer
  };
  Kind kind = Kind::kTlsAlert;
  int alert = 0;  // kTlsAlert: the alert's description (RFC 8446 6.2), e.g. 48 unknown_ca
  // "TLS alert unknown CA (48)", "HTTP 403: <the verdict's reason>" (escaped; for a refused
  // attestation the cloud's first finding, "quote-signature: ..."), or "HTTP 401: ..." for a
  // challenge this device is not configured to answer.
  std::string reason;
};

// What a session came to. The cloud either answered (accepted() when its verdict accepts the
// identity; refused() when it refused it, with why), or the session is an Error: SsliClient::Connect.
struct SsliResult {
  bool tpm_mode = false;
  std::string protocol;  // "TLSv1.3"
  std::string cipher;
  std::string signature_scheme;  // what the client signed with, e.g. "ecdsa_secp256r1_sha256"
  std::string server_subject;
  int http_status = 0;     // 0 when the cloud refused with an alert before answering
  nlohmann::json verdict;  // the cloud's answer (null when it is not JSON)
  std::string body;        // the answer as sent
  std::uint64_t tpm_signatures = 0;
  bool resumed = false;                // the TLS session of an earlier connection was resumed
  std::optional<SsliRefusal> refusal;  // set when the cloud refused the identity
  // Set when the cloud answered GET /v1/identity with an attestation challenge: the challenge as
  // sent; http_status, verdict and body are then the answer to our evidence.
  std::optional<nlohmann::json> challenge;
  // HTTP 200 with the verdict "accepted", or "attested" after a challenge.
  bool accepted() const;
  // The cloud challenged the session and attested its evidence (HTTP 200, verdict "attested").
  bool attested() const;
  // The cloud refused the identity (an alert about it, or HTTP 403).
  bool refused() const { return refusal.has_value(); }
  // The cloud answered but could not decide (HTTP 5xx, e.g. 503 while its ledger is down): no
  // verdict on the unit, an infrastructure failure for whoever judges it.
  bool undecided() const { return !refused() && http_status >= 500 && http_status <= 599; }
};

// An SSL-I profile made ready once (credentials, TLS context, TPM signer) for any number of
// sessions; sessions may run on several threads at once.
class SsliClient {
 public:
  // Errors: kConfig (unknown profile, unreadable files), kUsage (an RSA TPM key), kTss (TPM
  // unreachable, key absent), kVerify (idev-id not loaded in pkid, TPM key and certificate
  // differ). The server must prove the profile's server-name, or else the host of the request
  // (a DNS name, or an IP address in an iPAddress subjectAltName; RFC 6125, RFC 5280 4.2.1.6).
  static Result<std::unique_ptr<SsliClient>> Create(const SsliConnectRequest& request,
                                                    const SsliClientOptions& options = {});
  ~SsliClient();

  // One session: connect, handshake, GET /v1/identity and, when the cloud answers with an
  // attestation challenge (HTTP 401), POST /v1/attestation with the evidence on the same
  // session (a TPM-mode profile with an attestation configuration; any other is refused by the
  // challenge: a refusal naming the missing configuration). A cloud that refuses the identity (a fatal
  // alert about our certificate or signature: bad_certificate, unsupported_certificate,
  // certificate_revoked/expired/unknown/required, unknown_ca, access_denied, decrypt_error; or
  // HTTP 403) is a result with refusal set, not an error. Errors, all of them infrastructure for
  // whoever judges the unit:
  //  - kPeer: kUnreachable (no address, refused or unreachable), kTimeout (the profile's
  //    handshake-timeout or the session's deadline passed), kClosed (the cloud closed before it
  //    answered), kTooLarge (over max_response_bytes), kMalformed (not HTTP/1.x);
  //  - kVerify (code: the X509_V_ERR): the cloud's certificate does not verify, or is not for
  //    the expected name. The cloud failed our check, so the unit was never judged: found
  //    before the client signs anything;
  //  - kTss: the TPM could not sign or quote; kTls (code: SSL_get_error): any other TLS failure,
  //    e.g. an alert about something else than our identity (protocol_version, handshake_failure);
  //  - kConfig: the challenge asks for PCRs the attestation configuration does not allow, or
  //    the event log cannot be read or is too large.
  Result<SsliResult> Connect() const;

  // The signatures this client's TPM key has made so far (0 in file mode).
  std::uint64_t tpm_signatures() const;

  struct State;

 private:
  explicit SsliClient(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// A blocking TCP connection to host:port with send and receive timeouts. kPeer as
// ConnectTcpWithin (session_io.h).
Result<UniqueFd> ConnectTcpSocket(const std::string& host, std::uint16_t port, int timeout_seconds);

// GET /v1/identity on an established TLS session (the response framed by its Content-Length, or
// ended by the close); fills the result's HTTP status, verdict and body, and its refusal when the cloud
// refused the identity (an alert on the first read, as TLS 1.3 servers send it after the handshake, RFC
// 8446 4.4.2.4; or HTTP 403). kPeer when the cloud closes before it answers (kClosed), answers something
// other than HTTP/1.x (kMalformed) or more than `max_response_bytes` (kTooLarge), or a limit passes
// (kTimeout); kTls for another alert.
Result<void> AskIdentity(SSL* ssl, const std::string& host, SsliResult& result, const SessionLimits& limits,
                         std::size_t max_response_bytes);
// The same within the default limits of SsliClientOptions, waiting at most 30 s at a time.
Result<void> AskIdentity(SSL* ssl, const std::string& host, SsliResult& result);

// Closes a session's socket once the cloud has closed its end, as it does after its answer: the
// connection's TIME_WAIT then stays with the cloud, and a device that opens many sessions does not
// hold its local ports for a minute each. Waits at most a second.
void CloseAfterPeer(UniqueFd fd);

// Create + one Connect.
Result<SsliResult> SsliConnect(const SsliConnectRequest& request, const SsliClientOptions& options = {});

}  // namespace idevid
