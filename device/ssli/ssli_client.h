// The SSL-initiation client: opens client-authenticated TLS to the cloud with a profile from
// the device configuration, in TPM mode (idev-id, signatures made in the TPM through the
// idevid-tpm provider) or file mode, and asks the cloud who it thinks is talking.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <openssl/types.h>

#include "core/result.h"
#include "device/config/device_config.h"
#include "device/ssli/session_io.h"

namespace idevid {

struct SsliConnectRequest {
  const DeviceConfig* config = nullptr;
  std::string profile;
  std::optional<std::filesystem::path> pkid_socket;  // certificate and key reference from pkid
  std::string tcti;           // the TPM (TPM mode); without pkid also where idev-id is read
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
};

struct SsliResult {
  bool tpm_mode = false;
  std::string protocol;          // "TLSv1.3"
  std::string cipher;
  std::string signature_scheme;  // what the client signed with, e.g. "ecdsa_secp256r1_sha256"
  std::string server_subject;
  int http_status = 0;
  nlohmann::json verdict;        // the cloud's answer (null when it is not JSON)
  std::string body;              // the answer as sent
  std::uint64_t tpm_signatures = 0;
  bool resumed = false;          // the TLS session of an earlier connection was resumed
  bool accepted() const;
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

  // One session: connect, handshake, GET /v1/identity. Errors: kIo (the cloud cannot be
  // reached), kTls (handshake failed or the cloud refused the session with an alert: the message
  // carries it and the certificate verification result; the server's certificate is not for the
  // expected name, found before the client signs anything; the deadline passed; the answer
  // exceeds max_response_bytes).
  Result<SsliResult> Connect() const;

  // The signatures this client's TPM key has made so far (0 in file mode).
  std::uint64_t tpm_signatures() const;

  struct State;

 private:
  explicit SsliClient(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// A TCP connection to host:port with send and receive timeouts; the caller closes it. kIo when
// the host cannot be resolved or reached.
Result<int> ConnectTcp(const std::string& host, std::uint16_t port, int timeout_seconds);

// GET /v1/identity on an established TLS session; fills the result's HTTP status, verdict and
// body. kTls when the cloud refuses the session (the message carries its alert), answers
// something other than HTTP/1.x, answers more than `max_response_bytes` or a limit passes.
Result<void> AskIdentity(SSL* ssl, const std::string& host, SsliResult& result,
                         const SessionLimits& limits, std::size_t max_response_bytes);
// The same within the default limits of SsliClientOptions, waiting at most 30 s at a time.
Result<void> AskIdentity(SSL* ssl, const std::string& host, SsliResult& result);

// Closes a session's socket once the cloud has closed its end, as it does after its answer: the
// connection's TIME_WAIT then stays with the cloud, and a device that opens many sessions does not
// hold its local ports for a minute each. Waits at most a second.
void CloseAfterPeer(int fd);

// Create + one Connect.
Result<SsliResult> SsliConnect(const SsliConnectRequest& request, const SsliClientOptions& options = {});

}  // namespace idevid
