#include "device/ssli/ssli_client.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "core/attestation_wire.h"
#include "core/display_text.h"
#include "core/openssl_error.h"
#include "core/signer_provider.h"
#include "core/tpm_context.h"
#include "core/tpm_key_signer.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "device/pkid/pkid_client.h"
#include "device/ssli/server_name.h"

namespace idevid {
namespace {

using ossl::Ssl;
using ossl::SslCtx;
using ossl::SslSession;

// The client's certificate and key, wherever they come from.
struct Credentials {
  ossl::Cert certificate;
  ossl::PKey key;
  std::shared_ptr<TpmKeySigner> signer;  // TPM mode
  bool pkcs1_only = false;               // an RSA TPM key whose PSS salt TLS 1.3 would reject
};

Result<ossl::Cert> ParsePem(const std::string& pem) {
  return ParseCertificate(std::span(reinterpret_cast<const std::uint8_t*>(pem.data()), pem.size()));
}

// certificate PEM and key reference of `id` from pkid's export.
Result<nlohmann::json> ExportFromPkid(const std::filesystem::path& socket, const std::string& id) {
  IDEVID_ASSIGN_OR_RETURN(auto answer, SendPkidCommand(socket,
                                                       "request security pki node-local local-certificate "
                                                       "export certificate-id " +
                                                           id));
  if (answer.status != 0) {
    // The unit has no identity to offer (not loaded, or refused by its own pkid): a failed check
    // of the unit, not a fault of the bench.
    return Fail(ErrorDomain::kVerify, X509_V_ERR_APPLICATION_VERIFICATION,
                fmt::format("pkid cannot give certificate-id {}: {}", id, DisplayText(answer.text)));
  }
  return answer.data;
}

Result<Credentials> TpmCredentials(const SsliConnectRequest& r, const SignerProviderLibrary& library) {
  Credentials c;
  std::uint32_t handle = r.config->idevid.key_handle;
  if (r.pkid_socket) {
    IDEVID_ASSIGN_OR_RETURN(nlohmann::json exported, ExportFromPkid(*r.pkid_socket, kIdevidCertificateId));
    const nlohmann::json& pem = exported["certificate_pem"];
    const nlohmann::json& key_handle = exported["key"]["handle"];
    if (!pem.is_string() || !key_handle.is_number_unsigned()) {
      return PeerError(PeerCode::kMalformed, "pkid's export of idev-id has no certificate_pem or key handle");
    }
    IDEVID_ASSIGN_OR_RETURN(c.certificate, ParsePem(pem.get<std::string>()), "idev-id from pkid");
    handle = key_handle.get<std::uint32_t>();
  } else {
    IDEVID_ASSIGN_OR_RETURN(auto tpm,
                            TpmContext::Open(r.tcti, {.command_timeout = std::chrono::seconds(30)}));
    IDEVID_ASSIGN_OR_RETURN(auto der, NvRead(tpm, r.config->idevid.nv_index), "reading idev-id");
    IDEVID_ASSIGN_OR_RETURN(c.certificate, ParseCertificate(der), "idev-id in NV");
  }
  IDEVID_ASSIGN_OR_RETURN(std::shared_ptr<TpmKeySigner> signer, TpmKeySigner::Open(r.tcti, handle));
  if (EVP_PKEY_eq(&signer->public_key(), X509_get0_pubkey(c.certificate.get())) != 1) {
    return Fail(ErrorDomain::kVerify, X509_V_ERR_APPLICATION_VERIFICATION,
                fmt::format("the TPM key at {:#010x} does not match the idev-id certificate", handle));
  }
  IDEVID_ASSIGN_OR_RETURN(c.key, MakeSignerPrivateKey(library.get(), signer));
  IDEVID_ASSIGN_OR_RETURN(bool pss, signer->RsaPssSaltIsDigestLength());
  c.pkcs1_only = signer->is_rsa() && !pss;
  c.signer = std::move(signer);
  return c;
}

Result<Credentials> FileCredentials(const SsliConnectRequest& r, const std::string& id) {
  auto local = r.config->local_certificates.find(id);
  if (local == r.config->local_certificates.end()) {
    return ConfigError(ConfigCode::kReference, fmt::format("local-certificate {} is not configured", id));
  }
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert cert, LoadCertificateFile(local->second.certificate));
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey key, LoadPrivateKeyPem(local->second.private_key));
  return Credentials{std::move(cert), std::move(key), nullptr};
}

Result<SslCtx> ClientContext(OSSL_LIB_CTX* libctx, const SslInitiationProfile& p, const DeviceConfig& config,
                             const Credentials& c) {
  SslCtx ctx(SSL_CTX_new_ex(libctx, nullptr, TLS_client_method()));
  if (!ctx) return FailOpenSsl("cannot create the TLS client context");
  int min = p.versions == TlsVersions::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  int max = p.versions == TlsVersions::kTls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
  if (c.pkcs1_only) {
    // TLS 1.3 signs RSA with PSS and a digest-length salt only (RFC 8446 4.2.3): refuse now
    // rather than fail in the handshake, or keep to TLS 1.2 with PKCS#1 v1.5.
    if (min == TLS1_3_VERSION) {
      return UsageError(UsageCode::kUnsupported,
                        fmt::format("ssl initiation profile {} needs TLS 1.3, but this TPM signs "
                                    "RSA-PSS with a salt TLS 1.3 rejects; allow tls12 or use an "
                                    "ECC IDevID",
                                    p.name));
    }
    max = TLS1_2_VERSION;
    SSL_CTX_set1_client_sigalgs_list(ctx.get(), "RSA+SHA256:RSA+SHA384:RSA+SHA512");
  }
  SSL_CTX_set_min_proto_version(ctx.get(), min);
  SSL_CTX_set_max_proto_version(ctx.get(), max);
  if (SSL_CTX_use_certificate(ctx.get(), c.certificate.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), c.key.get()) != 1) {
    return FailOpenSsl("the client certificate and key do not go together");
  }
  const CaProfile& ca = config.ca_profiles.at(p.trusted_ca);
  IDEVID_ASSIGN_OR_RETURN(auto trusted, LoadCertificateBundle(ca.certificate), "trusted-ca {}", p.trusted_ca);
  for (const auto& cert : trusted) X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), cert.get());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
}

// The alert description the peer sent, as OpenSSL queued it (a received alert is the reason
// SSL_AD_REASON_OFFSET + its description), or nullopt when it sent none.
std::optional<int> ReceivedAlert() {
  for (unsigned long code : {ERR_peek_error(), ERR_peek_last_error()}) {
    if (code == 0 || ERR_GET_LIB(code) != ERR_LIB_SSL) continue;
    int reason = ERR_GET_REASON(code);
    if (reason > SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
      return reason - SSL_AD_REASON_OFFSET;
  }
  return std::nullopt;
}

// The alerts a server sends when it refuses the client's identity: its certificate (RFC 8446
// 6.2: bad, unsupported, revoked, expired, unknown, from an unknown CA, missing), the proof of its
// key (decrypt_error: the CertificateVerify signature did not verify), or access to the service.
bool RefusesTheIdentity(int alert) {
  switch (alert) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_DECRYPT_ERROR:
    case SSL_AD_CERTIFICATE_REQUIRED: return true;
    default: return false;
  }
}

// The cloud's refusal of our identity, when the alert it sent says so (the queue is cleared).
std::optional<SsliRefusal> AlertRefusal() {
  std::optional<int> alert = ReceivedAlert();
  if (!alert || !RefusesTheIdentity(*alert)) return std::nullopt;
  ClearOpenSslErrors();
  return SsliRefusal{SsliRefusal::Kind::kTlsAlert, *alert,
                     fmt::format("TLS alert {} ({})", SSL_alert_desc_string_long(*alert), *alert)};
}

// Whether `call` failed because the peer closed or reset the connection.
bool PeerClosed(const TlsCall& call) {
  bool eof = ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
  return eof || call.ssl_error == SSL_ERROR_ZERO_RETURN ||
         (call.ssl_error == SSL_ERROR_SYSCALL &&
          (call.saved_errno == 0 || call.saved_errno == ECONNRESET || call.saved_errno == EPIPE));
}

// Why SSL_connect failed (`call`) when the cloud did not refuse our identity: the server's name
// or certificate failed our check (kVerify), the cloud went away (kPeer), or the TLS layer
// failed (kTls, with OpenSSL's queue).
Error HandshakeError(SSL* ssl, const TlsCall& call, const std::string& peer,
                     const ExpectedServerName& expected, const std::string& profile) {
  long verify = SSL_get_verify_result(ssl);
  std::string failed = fmt::format("TLS handshake with {} failed", peer);
  Error error = [&] {
    if (ServerNameMismatched(ssl)) {
      return Error(ErrorDomain::kVerify, static_cast<std::uint64_t>(verify),
                   fmt::format("{}: {}", failed, ServerNameMismatch(ssl, expected, profile)));
    }
    if (verify != X509_V_OK) {
      return Error(ErrorDomain::kVerify, static_cast<std::uint64_t>(verify),
                   fmt::format("{}{}; server certificate: {}", failed, OpenSslError("").message(),
                               X509_verify_cert_error_string(verify)));
    }
    if (PeerClosed(call)) {
      std::string why = call.saved_errno == 0 ? "" : fmt::format(" ({})", std::strerror(call.saved_errno));
      return Error(ErrorDomain::kPeer, static_cast<std::uint64_t>(PeerCode::kClosed),
                   fmt::format("{}: the cloud closed the connection during the handshake{}", failed, why));
    }
    return Error(ErrorDomain::kTls, static_cast<std::uint64_t>(call.ssl_error),
                 failed + OpenSslError("").message());
  }();
  ClearOpenSslErrors();
  return error;
}

// "ECDSA+SHA256", "RSASSA-PSS+SHA256": how this client signed its CertificateVerify.
std::string SignatureScheme(SSL* ssl) {
  int type = NID_undef, digest = NID_undef;
  if (SSL_get_signature_type_nid(ssl, &type) != 1 || SSL_get_signature_nid(ssl, &digest) != 1) {
    return "";
  }
  const char* kind = type == EVP_PKEY_EC ? "ECDSA" : OBJ_nid2sn(type);
  return fmt::format("{}+{}", kind, OBJ_nid2sn(digest));
}

}  // namespace

Result<UniqueFd> ConnectTcpSocket(const std::string& host, std::uint16_t port, int timeout_seconds) {
  auto timeout = std::chrono::milliseconds(std::chrono::seconds(timeout_seconds));
  IDEVID_ASSIGN_OR_RETURN(UniqueFd fd,
                          ConnectTcpWithin(host, port, SessionLimits::StartingNow(timeout, timeout)));
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  timeval tv{timeout_seconds, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

void CloseAfterPeer(UniqueFd fd) {
  // The cloud closes right after its close_notify: wait for that at most a second in all and
  // for at most 16 KiB of stray bytes, however a peer paces them.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  std::size_t left = 16 * 1024;
  char buffer[512];
  for (;;) {
    auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    pollfd p{fd.get(), POLLIN, 0};
    if (wait.count() <= 0 || ::poll(&p, 1, static_cast<int>(wait.count())) <= 0) break;
    ssize_t n = ::recv(fd.get(), buffer, std::min(sizeof buffer, left), MSG_DONTWAIT);
    if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) break;
    if (n > 0 && (left -= static_cast<std::size_t>(n)) == 0) break;
  }
}

namespace {

// Why a session on which the cloud said nothing yet ended (`call`, on `host`), `doing` what: its
// refusal of our identity (set in `result`), or an error: it closed (kPeer kClosed), or the TLS
// layer failed (kTls).
Result<void> EndedBeforeAnswer(const TlsCall& call, const std::string& host, const std::string& doing,
                               SsliResult& result) {
  if (auto refusal = AlertRefusal()) {
    result.refusal = std::move(refusal);
    return {};
  }
  if (PeerClosed(call)) {
    ClearOpenSslErrors();
    return PeerError(PeerCode::kClosed,
                     fmt::format("the cloud at {} closed the connection {}", DisplayText(host), doing));
  }
  return Fail(Error(ErrorDomain::kTls, static_cast<std::uint64_t>(call.ssl_error),
                    fmt::format("the cloud at {} ended the session {}{}", DisplayText(host), doing,
                                OpenSslError("").message())));
}

// The length of the response that starts `data` once its head is complete: the head and its
// Content-Length (RFC 9112 §6.3), or nullopt while the head is incomplete or when it has no
// Content-Length (the response then ends at the close).
std::optional<std::size_t> FramedLength(std::string_view data) {
  std::size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  constexpr std::string_view kName = "\r\ncontent-length:";
  for (std::size_t at = data.find("\r\n"); at < end; at = data.find("\r\n", at + 2)) {
    std::string_view line = data.substr(at, std::min(end - at, kName.size()));
    bool named = line.size() == kName.size() &&
                 std::equal(line.begin(), line.end(), kName.begin(),
                            [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
    if (!named) continue;
    std::string_view value = data.substr(at + kName.size(), end - at - kName.size());
    value = value.substr(0, value.find("\r\n"));
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    std::size_t length = 0;
    auto [next, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (ec != std::errc() || next == value.data()) return std::nullopt;
    return end + 4 + length;
  }
  return std::nullopt;
}

// The cloud's answer: as long as its Content-Length says, or up to the close; at most
// `max_bytes`; empty when the cloud refused our identity instead (`result`'s refusal is set).
Result<std::string> ReadAnswer(SSL* ssl, const std::string& host, const SessionLimits& limits,
                               std::size_t max_bytes, SsliResult& result) {
  std::string response;
  char buffer[16384];
  for (;;) {
    IDEVID_ASSIGN_OR_RETURN(TlsCall got,
                            RunTlsCall(ssl, limits, [&] { return SSL_read(ssl, buffer, sizeof buffer); }),
                            "waiting for the answer of {}", DisplayText(host));
    if (got.ret <= 0) {
      if (!response.empty()) return response;
      // In TLS 1.3 the server judges the client certificate after the client's handshake is
      // done: its refusal arrives as an alert on the first read (RFC 8446 4.4.2.4).
      IDEVID_TRY(EndedBeforeAnswer(got, host, "before it answered", result));
      return response;
    }
    response.append(buffer, static_cast<std::size_t>(got.ret));
    if (response.size() > max_bytes) {
      return PeerError(PeerCode::kTooLarge, fmt::format("the cloud's response exceeds {} bytes", max_bytes));
    }
    if (auto length = FramedLength(response); length && response.size() >= *length) {
      response.resize(*length);
      return response;
    }
  }
}

// The reason the cloud's JSON verdict gives, or its body when it gives none (escaped).
std::string VerdictReason(const SsliResult& result) {
  if (result.verdict.is_object() && result.verdict.contains("reason") &&
      result.verdict["reason"].is_string()) {
    return DisplayText(result.verdict["reason"].get<std::string>(), 400);
  }
  return DisplayText(result.body, 400);
}

}  // namespace

namespace {

// Sends `request` and reads the cloud's answer into `result` (status, body, JSON verdict); a
// refusal by alert or by HTTP 403 is set as `result`'s refusal.
Result<void> Exchange(SSL* ssl, const std::string& host, const std::string& request, SsliResult& result,
                      const SessionLimits& limits, std::size_t max_response_bytes) {
  IDEVID_ASSIGN_OR_RETURN(
      TlsCall written,
      RunTlsCall(ssl, limits,
                 [&] { return SSL_write(ssl, request.data(), static_cast<int>(request.size())); }),
      "sending the request to {}", DisplayText(host));
  // A server that refuses the client certificate may already have sent its alert and closed:
  // read the alert so that the refusal says why.
  if (written.ret <= 0) {
    char byte;
    (void)RunTlsCall(ssl, limits, [&] { return SSL_read(ssl, &byte, 1); });
    return EndedBeforeAnswer(written, host, "before it took the request", result);
  }
  IDEVID_ASSIGN_OR_RETURN(std::string response, ReadAnswer(ssl, host, limits, max_response_bytes, result));
  ClearOpenSslErrors();
  if (result.refusal) return {};
  std::size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) {
    return PeerError(PeerCode::kMalformed, fmt::format("the cloud's answer is not an HTTP/1.x response: {}",
                                                       QuotedDisplayText(response.substr(0, 40))));
  }
  result.http_status = std::atoi(response.c_str() + 9);
  result.body = response.substr(body + 4);
  result.verdict = nlohmann::json::parse(result.body, nullptr, false);
  if (result.verdict.is_discarded()) result.verdict = nullptr;
  if (result.http_status == 403) {  // the cloud's verdict: it refuses this identity
    result.refusal = SsliRefusal{SsliRefusal::Kind::kHttpVerdict, 0, "HTTP 403: " + VerdictReason(result)};
  }
  return {};
}

}  // namespace

Result<void> AskIdentity(SSL* ssl, const std::string& host, SsliResult& result, const SessionLimits& limits,
                         std::size_t max_response_bytes) {
  // The session stays open after the answer: a cloud with an attestation policy answers with a
  // challenge and waits for the evidence on it.
  std::string request = fmt::format("GET /v1/identity HTTP/1.1\r\nHost: {}\r\n\r\n", host);
  return Exchange(ssl, host, request, result, limits, max_response_bytes);
}

Result<void> AskIdentity(SSL* ssl, const std::string& host, SsliResult& result) {
  SsliClientOptions defaults;
  return AskIdentity(ssl, host, result,
                     SessionLimits::StartingNow(defaults.deadline, std::chrono::seconds(30)),
                     defaults.max_response_bytes);
}

bool SsliResult::accepted() const {
  return (http_status == 200 && verdict.is_object() && verdict.value("verdict", "") == "accepted") ||
         attested();
}

bool SsliResult::attested() const {
  return challenge && http_status == 200 && verdict.is_object() && verdict.value("verdict", "") == "attested";
}

struct SsliClient::State {
  SslInitiationProfile profile;
  std::string host;
  std::uint16_t port = 0;
  SsliClientOptions options;
  ExpectedServerName expected;
  std::optional<SignerProviderLibrary> library;  // declared first: outlives what is made in it
  Credentials credentials;
  std::optional<AttestationProver> prover;  // TPM mode with an attestation configuration
  SslCtx ctx;
  // The session to resume (resume_sessions): the latest one a verified connection received.
  mutable std::mutex session_mutex;
  mutable SslSession session;

  // The session to offer on the next connection, or null.
  SslSession SessionToResume() const {
    std::lock_guard lock(session_mutex);
    if (!session || SSL_SESSION_is_resumable(session.get()) != 1) return nullptr;
    SSL_SESSION_up_ref(session.get());
    return SslSession(session.get());
  }
};

namespace {

// OpenSSL hands over each session (TLS 1.2: at the end of the handshake; TLS 1.3: each ticket
// as it arrives) of a connection whose server was verified: the handshake fails otherwise.
int KeepSession(SSL* ssl, SSL_SESSION* session) {
  auto* state = static_cast<const SsliClient::State*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  if (state == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return 0;
  std::lock_guard lock(state->session_mutex);
  state->session.reset(session);
  return 1;  // the session is ours now
}

}  // namespace

SsliClient::SsliClient(std::unique_ptr<State> state) : state_(std::move(state)) {}
SsliClient::~SsliClient() = default;

Result<std::unique_ptr<SsliClient>> SsliClient::Create(const SsliConnectRequest& r,
                                                       const SsliClientOptions& options) {
  auto found = r.config->ssl_profiles.find(r.profile);
  if (found == r.config->ssl_profiles.end()) {
    return ConfigError(ConfigCode::kReference,
                       fmt::format("ssl initiation profile {} is not configured", r.profile));
  }
  auto state = std::make_unique<State>();
  state->profile = found->second;
  state->host = r.host;
  state->port = r.port;
  state->options = options;
  state->expected = ExpectedServerFor(state->profile, r.host);
  IDEVID_ASSIGN_OR_RETURN(state->library, SignerProviderLibrary::Create());
  IDEVID_ASSIGN_OR_RETURN(state->credentials, state->profile.tpm_offload
                                                  ? TpmCredentials(r, *state->library)
                                                  : FileCredentials(r, state->profile.client_certificate));
  if (state->profile.tpm_offload && r.config->attestation)
    state->prover.emplace(r.tcti, *r.config->attestation);
  IDEVID_ASSIGN_OR_RETURN(
      state->ctx, ClientContext(state->library->get(), state->profile, *r.config, state->credentials));
  if (options.resume_sessions) {
    SSL_CTX_set_app_data(state->ctx.get(), state.get());
    SSL_CTX_set_session_cache_mode(state->ctx.get(),
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(state->ctx.get(), KeepSession);
  }
  return std::unique_ptr<SsliClient>(new SsliClient(std::move(state)));
}

std::uint64_t SsliClient::tpm_signatures() const {
  return state_->credentials.signer ? state_->credentials.signer->signatures() : 0;
}

namespace {

// An attestation challenge: HTTP 401 with a JSON body of type "attestation-challenge".
bool IsChallenge(const SsliResult& result) {
  return result.http_status == 401 && result.verdict.is_object() &&
         result.verdict.value("type", "") == "attestation-challenge";
}

// POST /v1/attestation with `evidence`, the session closing after the answer.
std::string EvidenceRequest(const std::string& host, const AttestationEvidence& evidence) {
  std::string body = EvidenceJson(evidence);
  return fmt::format(
      "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Connection: close\r\n\r\n{}",
      kAttestationPath, host, body.size(), body);
}

// Answers the challenge `result` holds with evidence for this session, and takes the cloud's
// verdict on it as the result; a device without an attestation configuration refuses.
Result<void> AnswerChallenge(SSL* ssl, const SessionLimits& limits, const SsliClient::State& state,
                             SsliResult& result) {
  result.challenge = result.verdict;
  if (!state.prover) {
    result.refusal =
        SsliRefusal{SsliRefusal::Kind::kHttpVerdict, 0,
                    "HTTP 401: the cloud asks for attestation, and this device is not configured "
                    "for attestation (set security pki node-local attestation ...)"};
    return {};
  }
  IDEVID_ASSIGN_OR_RETURN(AttestationChallenge challenge, ParseChallenge(result.body),
                          "the attestation challenge of {}", DisplayText(state.host));
  IDEVID_ASSIGN_OR_RETURN(Bytes exporter, AttestationExporter(ssl));
  IDEVID_ASSIGN_OR_RETURN(AttestationEvidence evidence,
                          state.options.prove ? state.options.prove(challenge, exporter, *state.prover)
                                              : state.prover->Prove(challenge, exporter),
                          "answering the attestation challenge of {}", DisplayText(state.host));
  result.http_status = 0;
  result.verdict = nullptr;
  result.body.clear();
  IDEVID_TRY(Exchange(ssl, state.host, EvidenceRequest(state.host, evidence), result, limits,
                      state.options.max_response_bytes));
  // 400, 413: the evidence is refused too; a 5xx decided nothing (SsliResult::undecided).
  if (!result.refusal && result.http_status != 200 && result.http_status < 500) {
    result.refusal = SsliRefusal{SsliRefusal::Kind::kHttpVerdict, 0,
                                 fmt::format("HTTP {}: {}", result.http_status, VerdictReason(result))};
  }
  return {};
}

// The handshake and the request on `ssl`: fills `result` (the cloud's answer or its refusal of
// our identity), or the error that kept the session from a verdict.
Result<void> RunSession(SSL* ssl, const SessionLimits& limits, const SsliClient::State& state,
                        const std::string& peer, SsliResult& result) {
  IDEVID_ASSIGN_OR_RETURN(TlsCall connected, RunTlsCall(ssl, limits, [&] { return SSL_connect(ssl); }),
                          "TLS handshake with {} failed", peer);
  if (connected.ret != 1) {
    // TLS 1.2: the server judges the client certificate within the handshake.
    if (auto refusal = AlertRefusal()) {
      result.refusal = std::move(refusal);
      return {};
    }
    return Fail(HandshakeError(ssl, connected, peer, state.expected, state.profile.name));
  }
  if (long verify = SSL_get_verify_result(ssl); verify != X509_V_OK) {  // a resumed session keeps its result
    return Fail(ErrorDomain::kVerify, static_cast<std::uint64_t>(verify),
                fmt::format("TLS handshake with {}: the server is not verified", peer));
  }
  IDEVID_TRY(AskIdentity(ssl, state.host, result, limits, state.options.max_response_bytes));
  if (result.refusal || !IsChallenge(result)) return {};
  return AnswerChallenge(ssl, limits, state, result);
}

}  // namespace

Result<SsliResult> SsliClient::Connect() const {
  const SslInitiationProfile& profile = state_->profile;
  auto limits = SessionLimits::StartingNow(state_->options.deadline,
                                           std::chrono::seconds(profile.handshake_timeout_seconds));
  std::string peer = fmt::format("{}:{}", DisplayText(state_->host), state_->port);
  IDEVID_ASSIGN_OR_RETURN(UniqueFd fd, ConnectTcpWithin(state_->host, state_->port, limits));
  Ssl ssl(SSL_new(state_->ctx.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1) return FailOpenSsl("cannot start a TLS session");
  IDEVID_TRY(RequireServerName(ssl.get(), state_->expected));
  if (state_->options.resume_sessions) {
    if (SslSession session = state_->SessionToResume()) SSL_set_session(ssl.get(), session.get());
  }
  SsliResult result;
  result.tpm_mode = profile.tpm_offload;
  const auto& signer = state_->credentials.signer;
  std::uint64_t signed_before = signer ? signer->signatures() : 0;
  std::uint64_t failed_before = signer ? signer->failures() : 0;
  Result<void> session = RunSession(ssl.get(), limits, *state_, peer, result);
  // The TPM failing to sign is the TPM's error (infrastructure), not a TLS verdict nor the
  // cloud's refusal of a signature that never was.
  if (signer && signer->failures() > failed_before) {
    if (auto tpm_error = signer->last_failure()) {
      ClearOpenSslErrors();
      return Fail(tpm_error->WithContext(fmt::format("TLS handshake with {}: the TPM could not sign", peer)));
    }
  }
  IDEVID_TRY(session);
  result.protocol = SSL_get_version(ssl.get());
  result.cipher = SSL_get_cipher_name(ssl.get());
  result.resumed = SSL_session_reused(ssl.get()) == 1;
  result.signature_scheme = SignatureScheme(ssl.get());
  ossl::Cert server(SSL_get1_peer_certificate(ssl.get()));
  if (server) result.server_subject = SubjectLine(*server);
  if (signer) result.tpm_signatures = signer->signatures() - signed_before;
  if (!result.refusal || result.refusal->kind == SsliRefusal::Kind::kHttpVerdict) {
    SSL_shutdown(ssl.get());  // after a refusal by alert the cloud has closed already
    CloseAfterPeer(std::move(fd));
  }
  return result;
}

Result<SsliResult> SsliConnect(const SsliConnectRequest& r, const SsliClientOptions& options) {
  IDEVID_ASSIGN_OR_RETURN(auto client, SsliClient::Create(r, options));
  return client->Connect();
}

}  // namespace idevid
