#include "device/ssli/ssli_client.h"

#include <fcntl.h>
#include <poll.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "core/openssl_error.h"
#include "core/tpm_context.h"
#include "core/tpm_key_signer.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "device/pkid/pkid_client.h"
#include "device/ssli/server_name.h"
#include "device/ssli/tpm_provider.h"

namespace idevid {
namespace {

using ossl::SslCtx;
using ossl::Ssl;
using ossl::SslSession;

// The client's certificate and key, wherever they come from.
struct Credentials {
  ossl::Cert certificate;
  ossl::PKey key;
  std::shared_ptr<TpmKeySigner> signer;  // TPM mode
  bool pkcs1_only = false;  // an RSA TPM key whose PSS salt TLS 1.3 would reject
};

Result<ossl::Cert> ParsePem(const std::string& pem) {
  return ParseCertificate(std::span(reinterpret_cast<const std::uint8_t*>(pem.data()), pem.size()));
}

// certificate PEM and key reference of `id` from pkid's export.
Result<nlohmann::json> ExportFromPkid(const std::filesystem::path& socket, const std::string& id) {
  auto answer = SendPkidCommand(socket, "request security pki node-local local-certificate "
                                        "export certificate-id " + id);
  if (!answer) return Fail(answer.error());
  if (answer->status != 0) {
    return Fail(ErrorDomain::kVerify, 0,
                fmt::format("pkid cannot give certificate-id {}: {}", id, answer->text));
  }
  return answer->data;
}

Result<Credentials> TpmCredentials(const SsliConnectRequest& r, const TpmProviderLibrary& library) {
  Credentials c;
  std::uint32_t handle = r.config->idevid.key_handle;
  if (r.pkid_socket) {
    auto exported = ExportFromPkid(*r.pkid_socket, kIdevidCertificateId);
    if (!exported) return Fail(exported.error());
    auto cert = ParsePem((*exported)["certificate_pem"].get<std::string>());
    if (!cert) return Fail(cert.error());
    c.certificate = std::move(*cert);
    handle = (*exported)["key"]["handle"].get<std::uint32_t>();
  } else {
    auto tpm = TpmContext::Open(r.tcti, {.command_timeout = std::chrono::seconds(30)});
    if (!tpm) return Fail(tpm.error());
    auto der = NvRead(*tpm, r.config->idevid.nv_index);
    if (!der) return Fail(der.error().WithContext("reading idev-id"));
    auto cert = ParseCertificate(*der);
    if (!cert) return Fail(cert.error().WithContext("idev-id in NV"));
    c.certificate = std::move(*cert);
  }
  auto signer = TpmKeySigner::Open(r.tcti, handle);
  if (!signer) return Fail(signer.error());
  if (EVP_PKEY_eq(&(*signer)->public_key(), X509_get0_pubkey(c.certificate.get())) != 1) {
    return Fail(ErrorDomain::kVerify, 0,
                fmt::format("the TPM key at {:#010x} does not match the idev-id certificate", handle));
  }
  auto key = MakeTpmPrivateKey(library.get(), *signer);
  if (!key) return Fail(key.error());
  auto pss = (*signer)->RsaPssSaltIsDigestLength();
  if (!pss) return Fail(pss.error());
  c.pkcs1_only = (*signer)->is_rsa() && !*pss;
  c.signer = std::move(*signer);
  c.key = std::move(*key);
  return c;
}

Result<Credentials> FileCredentials(const SsliConnectRequest& r, const std::string& id) {
  auto local = r.config->local_certificates.find(id);
  if (local == r.config->local_certificates.end()) {
    return ConfigError(fmt::format("local-certificate {} is not configured", id));
  }
  auto cert = LoadCertificateFile(local->second.certificate);
  if (!cert) return Fail(cert.error());
  auto key = LoadPrivateKeyPem(local->second.private_key);
  if (!key) return Fail(key.error());
  return Credentials{std::move(*cert), std::move(*key), nullptr};
}

Result<SslCtx> ClientContext(OSSL_LIB_CTX* libctx, const SslInitiationProfile& p,
                             const DeviceConfig& config, const Credentials& c) {
  SslCtx ctx(SSL_CTX_new_ex(libctx, nullptr, TLS_client_method()));
  if (!ctx) return FailOpenSsl("cannot create the TLS client context");
  int min = p.versions == TlsVersions::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  int max = p.versions == TlsVersions::kTls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
  if (c.pkcs1_only) {
    // TLS 1.3 signs RSA with PSS and a digest-length salt only (RFC 8446 4.2.3): refuse now
    // rather than fail in the handshake, or keep to TLS 1.2 with PKCS#1 v1.5.
    if (min == TLS1_3_VERSION) {
      return UsageError(fmt::format("ssl initiation profile {} needs TLS 1.3, but this TPM signs "
                                    "RSA-PSS with a salt TLS 1.3 rejects; allow tls12 or use an "
                                    "ECC IDevID", p.name));
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
  auto trusted = LoadCertificateBundle(ca.certificate);
  if (!trusted) return Fail(trusted.error().WithContext("trusted-ca " + p.trusted_ca));
  for (const auto& cert : *trusted) X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), cert.get());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
}

// Why SSL_connect failed (`call`): the server's name or certificate, OpenSSL's queue, or for a
// bare socket failure what the socket saw.
Error HandshakeError(SSL* ssl, const TlsCall& call, const std::string& peer,
                     const ExpectedServerName& expected, const std::string& profile) {
  long verify = SSL_get_verify_result(ssl);
  bool eof = ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
  bool misnamed = ServerNameMismatched(ssl);
  std::string why = OpenSslError("").message();
  if (misnamed) {
    why = ": " + ServerNameMismatch(ssl, expected, profile);
  } else if (eof || call.ssl_error == SSL_ERROR_ZERO_RETURN ||
             (call.ssl_error == SSL_ERROR_SYSCALL && call.saved_errno == 0)) {
    why = ": the cloud closed the connection during the handshake";
  } else if (call.ssl_error == SSL_ERROR_SYSCALL) {
    why = fmt::format(": {}", std::strerror(call.saved_errno));
  }
  if (verify != X509_V_OK && !misnamed) {
    why += fmt::format("; server certificate: {}", X509_verify_cert_error_string(verify));
  }
  ClearOpenSslErrors();
  return Error(ErrorDomain::kTls, static_cast<std::uint64_t>(verify),
               fmt::format("TLS handshake with {} failed{}", peer, why));
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

Result<int> ConnectTcp(const std::string& host, std::uint16_t port, int timeout_seconds) {
  auto timeout = std::chrono::milliseconds(std::chrono::seconds(timeout_seconds));
  auto fd = ConnectTcpWithin(host, port, SessionLimits::StartingNow(timeout, timeout));
  if (!fd) return Fail(fd.error());
  ::fcntl(*fd, F_SETFL, ::fcntl(*fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv{timeout_seconds, 0};
  ::setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(*fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

void CloseAfterPeer(int fd) {
  // The cloud closes right after its close_notify: wait for that at most a second in all and
  // for at most 16 KiB of stray bytes, however a peer paces them.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  std::size_t left = 16 * 1024;
  char buffer[512];
  for (;;) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (wait.count() <= 0 || ::poll(&p, 1, static_cast<int>(wait.count())) <= 0) break;
    ssize_t n = ::recv(fd, buffer, std::min(sizeof buffer, left), MSG_DONTWAIT);
    if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) break;
    if (n > 0 && (left -= static_cast<std::size_t>(n)) == 0) break;
  }
  ::close(fd);
}

namespace {

Error Refused(const std::string& host) {
  return Error(ErrorDomain::kTls, 0,
               fmt::format("the cloud at {} refused the session{}", host, OpenSslError("").message()));
}

// The cloud's whole answer (it closes after it), at most `max_bytes`.
Result<std::string> ReadAnswer(SSL* ssl, const std::string& host, const SessionLimits& limits,
                               std::size_t max_bytes) {
  std::string response;
  char buffer[16384];
  for (;;) {
    auto read = RunTlsCall(ssl, limits, [&] { return SSL_read(ssl, buffer, sizeof buffer); });
    if (!read) return Fail(read.error().WithContext(fmt::format("waiting for the answer of {}", host)));
    if (read->ret <= 0) {
      // In TLS 1.3 the server judges the client certificate after the client's handshake is
      // done: its refusal arrives as an alert on the first read (RFC 8446 4.4.2.4).
      if (response.empty() && read->ssl_error == SSL_ERROR_SSL) return Fail(Refused(host));
      return response;
    }
    response.append(buffer, static_cast<std::size_t>(read->ret));
    if (response.size() > max_bytes) {
      return Fail(ErrorDomain::kTls, 0, fmt::format("the cloud's response exceeds {} bytes", max_bytes));
    }
  }
}

}  // namespace

Result<void> AskIdentity(SSL* ssl, const std::string& host, SsliResult& result,
                         const SessionLimits& limits, std::size_t max_response_bytes) {
  std::string request = fmt::format("GET /v1/identity HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", host);
  auto written = RunTlsCall(ssl, limits, [&] {
    return SSL_write(ssl, request.data(), static_cast<int>(request.size()));
  });
  if (!written) return Fail(written.error().WithContext(fmt::format("sending the request to {}", host)));
  // A server that refuses the client certificate may already have sent its alert and closed:
  // read the alert so that the error says why.
  if (written->ret <= 0) {
    char byte;
    (void)RunTlsCall(ssl, limits, [&] { return SSL_read(ssl, &byte, 1); });
    return Fail(Refused(host));
  }
  auto response = ReadAnswer(ssl, host, limits, max_response_bytes);
  ClearOpenSslErrors();
  if (!response) return Fail(response.error());
  std::size_t body = response->find("\r\n\r\n");
  if (response->rfind("HTTP/1.", 0) != 0 || body == std::string::npos) {
    return Fail(ErrorDomain::kTls, 0, "the cloud's answer is not an HTTP/1.x response");
  }
  result.http_status = std::atoi(response->c_str() + 9);
  result.body = response->substr(body + 4);
  result.verdict = nlohmann::json::parse(result.body, nullptr, false);
  if (result.verdict.is_discarded()) result.verdict = nullptr;
  return {};
}

Result<void> AskIdentity(SSL* ssl, const std::string& host, SsliResult& result) {
  SsliClientOptions defaults;
  return AskIdentity(ssl, host, result, SessionLimits::StartingNow(defaults.deadline, std::chrono::seconds(30)),
                     defaults.max_response_bytes);
}

bool SsliResult::accepted() const {
  return http_status == 200 && verdict.is_object() && verdict.value("verdict", "") == "accepted";
}

struct SsliClient::State {
  SslInitiationProfile profile;
  std::string host;
  std::uint16_t port = 0;
  SsliClientOptions options;
  ExpectedServerName expected;
  std::optional<TpmProviderLibrary> library;  // declared first: outlives what is made in it
  Credentials credentials;
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
    return ConfigError(fmt::format("ssl initiation profile {} is not configured", r.profile));
  }
  auto state = std::make_unique<State>();
  state->profile = found->second;
  state->host = r.host;
  state->port = r.port;
  state->options = options;
  state->expected = ExpectedServerFor(state->profile, r.host);
  auto library = TpmProviderLibrary::Create();
  if (!library) return Fail(library.error());
  state->library = std::move(*library);
  auto credentials = state->profile.tpm_offload ? TpmCredentials(r, *state->library)
                                                : FileCredentials(r, state->profile.client_certificate);
  if (!credentials) return Fail(credentials.error());
  state->credentials = std::move(*credentials);
  auto ctx = ClientContext(state->library->get(), state->profile, *r.config, state->credentials);
  if (!ctx) return Fail(ctx.error());
  state->ctx = std::move(*ctx);
  if (options.resume_sessions) {
    SSL_CTX_set_app_data(state->ctx.get(), state.get());
    SSL_CTX_set_session_cache_mode(state->ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(state->ctx.get(), KeepSession);
  }
  return std::unique_ptr<SsliClient>(new SsliClient(std::move(state)));
}

std::uint64_t SsliClient::tpm_signatures() const {
  return state_->credentials.signer ? state_->credentials.signer->signatures() : 0;
}

Result<SsliResult> SsliClient::Connect() const {
  const SslInitiationProfile& profile = state_->profile;
  auto limits = SessionLimits::StartingNow(state_->options.deadline,
                                           std::chrono::seconds(profile.handshake_timeout_seconds));
  std::string peer = fmt::format("{}:{}", state_->host, state_->port);
  auto fd = ConnectTcpWithin(state_->host, state_->port, limits);
  if (!fd) return Fail(fd.error());
  Ssl ssl(SSL_new(state_->ctx.get()));
  SSL_set_fd(ssl.get(), *fd);
  if (auto named = RequireServerName(ssl.get(), state_->expected); !named) {
    ::close(*fd);
    return Fail(named.error());
  }
  if (state_->options.resume_sessions) {
    if (SslSession session = state_->SessionToResume()) SSL_set_session(ssl.get(), session.get());
  }
  SsliResult result;
  result.tpm_mode = profile.tpm_offload;
  const auto& signer = state_->credentials.signer;
  std::uint64_t signed_before = signer ? signer->signatures() : 0;
  std::uint64_t failed_before = signer ? signer->failures() : 0;
  auto connected = RunTlsCall(ssl.get(), limits, [&] { return SSL_connect(ssl.get()); });
  Result<void> session;
  if (!connected) {
    session = Fail(connected.error().WithContext(fmt::format("TLS handshake with {} failed", peer)));
  } else if (connected->ret != 1) {
    session = Fail(HandshakeError(ssl.get(), *connected, peer, state_->expected, profile.name));
  } else if (SSL_get_verify_result(ssl.get()) != X509_V_OK) {  // a resumed session keeps its result
    session = Fail(ErrorDomain::kTls, 0, fmt::format("TLS handshake with {}: the server is not verified", peer));
  } else {
    session = AskIdentity(ssl.get(), state_->host, result, limits, state_->options.max_response_bytes);
  }
  // The TPM failing to sign is the TPM's error (infrastructure), not a TLS verdict.
  if (!session && signer && signer->failures() > failed_before) {
    if (auto tpm_error = signer->last_failure()) {
      ClearOpenSslErrors();
      session = Fail(tpm_error->WithContext(fmt::format("TLS handshake with {}: the TPM could not sign", peer)));
    }
  }
  if (session) {
    result.protocol = SSL_get_version(ssl.get());
    result.cipher = SSL_get_cipher_name(ssl.get());
    result.resumed = SSL_session_reused(ssl.get()) == 1;
    result.signature_scheme = SignatureScheme(ssl.get());
    ossl::Cert server(SSL_get1_peer_certificate(ssl.get()));
    if (server) result.server_subject = SubjectLine(*server);
    SSL_shutdown(ssl.get());
    CloseAfterPeer(*fd);
  } else {
    ::close(*fd);
  }
  if (!session) return Fail(session.error());
  if (signer) result.tpm_signatures = signer->signatures() - signed_before;
  return result;
}

Result<SsliResult> SsliConnect(const SsliConnectRequest& r, const SsliClientOptions& options) {
  auto client = SsliClient::Create(r, options);
  if (!client) return Fail(client.error());
  return (*client)->Connect();
}

}  // namespace idevid
