#include "provisioning/factory_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <string_view>

#include <fmt/format.h>
#include <httplib.h>

#include "core/display_text.h"
#include "core/openssl_error.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "provisioning/enrolment_wire.h"

namespace idevid {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kJson = "application/json";
constexpr std::size_t kSessionMaxBytes = 256;
constexpr std::size_t kServiceTextMaxBytes = 2000;  // a refusal's detail or an error text shown

struct ServiceAddress {
  std::string host;  // without brackets
  int port = 443;
};

bool IsIpAddress(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buffer) == 1 || ::inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

bool IsHostNameLetter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

// "https://HOST[:PORT][/]" (RFC 3986 3.2.2: an IPv6 HOST in brackets).
Result<ServiceAddress> ParseServiceUrl(std::string_view url) {
  auto bad = [url](std::string_view why) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("the factory URL {} {}", QuotedDisplayText(url), why));
  };
  constexpr std::string_view kScheme = "https://";
  if (!url.starts_with(kScheme))
    return bad("is not https://HOST:PORT (the enrolment service speaks HTTPS only)");
  std::string_view rest = url.substr(kScheme.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != std::string_view::npos) return bad("has more than https://HOST:PORT");
  ServiceAddress address;
  std::string_view port_text;
  bool has_port = false;
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return bad("opens a [ it does not close");
    address.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty() && rest.front() != ':') return bad("has more than https://HOST:PORT");
    has_port = !rest.empty();
    if (has_port) port_text = rest.substr(1);
  } else {
    auto colon = rest.find(':');
    address.host = std::string(rest.substr(0, colon));
    has_port = colon != std::string_view::npos;
    if (has_port) port_text = rest.substr(colon + 1);
  }
  if (address.host.empty()) return bad("names no host");
  if (!IsIpAddress(address.host) &&
      !std::all_of(address.host.begin(), address.host.end(), IsHostNameLetter)) {
    return bad("names a host that is neither an IP address nor a DNS name");
  }
  if (has_port) {
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), address.port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || address.port < 1 ||
        address.port > 65535) {
      return bad("has no port between 1 and 65535");
    }
  }
  return address;
}

// Text from the service as a station may show it: kept as it is when it is printable already
// (backslashes aside: the service escapes outside input itself), escaped otherwise.
std::string ServiceText(const std::string& text) {
  std::string plain = text;
  std::erase(plain, '\\');
  if (text.size() <= kServiceTextMaxBytes && DisplayText(plain, plain.size() + 1) == plain) return text;
  return DisplayText(text, kServiceTextMaxBytes);
}

// SIGPIPE blocked in this thread while it lives: a service that goes away while the station
// writes gives an error, not the end of the process. A SIGPIPE raised meanwhile is discarded.
class BrokenPipeBlocked {
 public:
  BrokenPipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~BrokenPipeBlocked() {
    timespec zero{};
    while (sigtimedwait(&pipe_, nullptr, &zero) > 0) {}
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  BrokenPipeBlocked(const BrokenPipeBlocked&) = delete;
  BrokenPipeBlocked& operator=(const BrokenPipeBlocked&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
};

Error PeerFailure(PeerCode code, std::string message) {
  return Error(ErrorDomain::kPeer, static_cast<std::uint64_t>(code), std::move(message));
}

tl::unexpected<Error> BadFile(const char* what, const std::filesystem::path& path, const Error& error) {
  return ConfigError(ConfigCode::kFile, fmt::format("the {} {}: {}", what, path.string(), error.message()));
}

// The station's certificate (and chain) and key, installed in the client context.
Result<void> UseStationIdentity(SSL_CTX& ctx, const std::filesystem::path& cert_path,
                                const std::filesystem::path& key_path) {
  auto chain = LoadCertificateBundle(cert_path);
  if (!chain) return BadFile("station certificate", cert_path, chain.error());
  auto key = LoadPrivateKeyPem(key_path);
  if (!key) return BadFile("station key", key_path, key.error());
  if (X509_check_private_key(chain->front().get(), key->get()) != 1) {
    ClearOpenSslErrors();
    return ConfigError(ConfigCode::kFile,
                       fmt::format("the station key {} does not belong to the certificate {}",
                                   key_path.string(), cert_path.string()));
  }
  if (SSL_CTX_use_certificate(&ctx, chain->front().get()) != 1) return FailOpenSsl("the station certificate");
  for (std::size_t i = 1; i < chain->size(); ++i) {
    if (SSL_CTX_add1_chain_cert(&ctx, (*chain)[i].get()) != 1)
      return FailOpenSsl("the station certificate's chain");
  }
  if (SSL_CTX_use_PrivateKey(&ctx, key->get()) != 1) return FailOpenSsl("the station key");
  return {};
}

// RFC 6125: the service's certificate must name the host of the URL. OpenSSL checks it as part
// of the chain (X509_V_ERR_HOSTNAME_MISMATCH / X509_V_ERR_IP_ADDRESS_MISMATCH).
Result<void> RequireHostName(SSL_CTX& ctx, const std::string& host) {
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(&ctx);
  int ok = IsIpAddress(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                             : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  if (ok != 1) return FailOpenSsl("cannot require the service's name " + host);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return {};
}

}  // namespace

struct HttpsEnrolmentChannel::Impl {
  template <typename T>
  Result<EnrolmentAnswer<T>> Step(const char* path, const std::string& body,
                                  Result<T> (*parse)(std::string_view));
  Error TransportError(httplib::Error error, Clock::duration elapsed);

  FactoryClientOptions options;
  ServiceAddress address;
  std::unique_ptr<httplib::SSLClient> client;
};

Error HttpsEnrolmentChannel::Impl::TransportError(httplib::Error error, Clock::duration elapsed) {
  const std::string& url = options.url;
  switch (error) {
    case httplib::Error::Connection:
      return PeerFailure(PeerCode::kUnreachable, fmt::format("cannot connect to {}", url));
    case httplib::Error::ConnectionTimeout:
      return PeerFailure(PeerCode::kTimeout, fmt::format("no connection to {} within {} ms", url,
                                                         options.connect_timeout.count()));
    case httplib::Error::SSLServerVerification: {
      long result = client->get_openssl_verify_result();
      // X509_V_OK here: the chain verified and the library's own name check refused it.
      if (result == X509_V_OK) result = X509_V_ERR_HOSTNAME_MISMATCH;
      ClearOpenSslErrors();
      return Error(
          ErrorDomain::kVerify, static_cast<std::uint64_t>(result),
          fmt::format("the service at {} is not trusted, nothing was sent to it: its certificate: {}", url,
                      X509_verify_cert_error_string(result)));
    }
    case httplib::Error::SSLLoadingCerts:
      return Error(ErrorDomain::kConfig, static_cast<std::uint64_t>(ConfigCode::kFile),
                   fmt::format("the trust bundle {}: {}", options.trust.string(),
                               OpenSslError("cannot be loaded").message()));
    default: break;
  }
  unsigned long queued = ERR_peek_error();
  // Only the library's SSL_shutdown of a handshake it gave up on: no cause of its own.
  if (ERR_GET_REASON(queued) == SSL_R_SHUTDOWN_WHILE_IN_INIT) {
    ClearOpenSslErrors();
    queued = 0;
  }
  if (queued != 0) {
    if (ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      ClearOpenSslErrors();
      return PeerFailure(PeerCode::kClosed, fmt::format("{} closed the connection before it answered", url));
    }
    Error tls = OpenSslError(fmt::format("the TLS session with {} failed", url));
    return Error(ErrorDomain::kTls, SSL_ERROR_SSL, tls.root_message());
  }
  // Nothing queued: the library gave up waiting, or the connection ended without a word.
  milliseconds limit =
      error == httplib::Error::SSLConnection ? options.connect_timeout : options.read_timeout;
  if (elapsed + milliseconds(20) >= limit) {
    return PeerFailure(PeerCode::kTimeout, fmt::format("{} said nothing within {} ms", url, limit.count()));
  }
  // TLS 1.3 (RFC 8446 4.4.2.4): a service that refuses the station's certificate, or its lack of
  // one, does so after the station's side of the handshake is complete; the reset of the
  // connection often overtakes its alert.
  return PeerFailure(PeerCode::kClosed,
                     fmt::format("{} closed the connection before it answered ({}; a service that requires a "
                                 "station certificate does so when it does not accept the station's)",
                                 url, httplib::to_string(error)));
}

template <typename T>
Result<EnrolmentAnswer<T>> HttpsEnrolmentChannel::Impl::Step(const char* path, const std::string& body,
                                                             Result<T> (*parse)(std::string_view)) {
  ClearOpenSslErrors();
  BrokenPipeBlocked pipe_blocked;
  auto started = Clock::now();
  auto res = client->Post(path, body, kJson);
  if (!res)
    return Fail(
        TransportError(res.error(), Clock::now() - started).WithContext(fmt::format("POST {}", path)));
  if (res->body.size() > kEnrolmentBodyMaxBytes) {
    return PeerError(PeerCode::kTooLarge,
                     fmt::format("{} answered {} bytes to POST {}, more than the {} an enrolment "
                                 "answer may have",
                                 options.url, res->body.size(), path, kEnrolmentBodyMaxBytes));
  }
  if (res->status == 200) {
    IDEVID_ASSIGN_OR_RETURN(T value, parse(res->body),
                            "the answer of {} to POST {} is not enrolment version {}", options.url, path,
                            kEnrolmentWireVersion);
    return value;
  }
  if (res->status == 403) {
    IDEVID_ASSIGN_OR_RETURN(EnrolmentRefusal refusal, ParseRefusal(res->body),
                            "the refusal of {} to POST {} is not enrolment version {}", options.url, path,
                            kEnrolmentWireVersion);
    return EnrolmentRefusal{ServiceText(refusal.reason), ServiceText(refusal.detail)};
  }
  auto text = ParseWireError(res->body);
  return PeerError(PeerCode::kMalformed,
                   fmt::format("{} answered HTTP {} to POST {}: {}", options.url, res->status, path,
                               text ? ServiceText(*text) : "(no error text)"));
}

HttpsEnrolmentChannel::HttpsEnrolmentChannel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsEnrolmentChannel::~HttpsEnrolmentChannel() = default;

Result<std::unique_ptr<HttpsEnrolmentChannel>> HttpsEnrolmentChannel::Connect(
    const FactoryClientOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  IDEVID_ASSIGN_OR_RETURN(impl->address, ParseServiceUrl(options.url));
  if (options.certificate.has_value() != options.private_key.has_value()) {
    return UsageError(UsageCode::kMissingArgument,
                      "a station certificate and its key are given together (one of them is missing)");
  }
  if (auto trust = LoadCertificateBundle(options.trust); !trust) {
    return BadFile("trust bundle", options.trust, trust.error());
  }
  impl->client = std::make_unique<httplib::SSLClient>(impl->address.host, impl->address.port);
  if (!impl->client->is_valid()) return FailOpenSsl("cannot set up the TLS client context");
  SSL_CTX& ctx = *impl->client->ssl_context();
  if (SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION) != 1) return FailOpenSsl("cannot require TLS 1.2");
  IDEVID_TRY(RequireHostName(ctx, impl->address.host));
  if (options.certificate) IDEVID_TRY(UseStationIdentity(ctx, *options.certificate, *options.private_key));
  // Only the trust bundle: httplib reads the system's CAs only when it is given none.
  impl->client->set_ca_cert_path(options.trust.string());
  impl->client->enable_server_certificate_verification(true);
  impl->client->set_connection_timeout(options.connect_timeout);
  impl->client->set_read_timeout(options.read_timeout);
  impl->client->set_write_timeout(options.read_timeout);
  impl->client->set_keep_alive(false);
  impl->client->set_follow_location(false);
  return std::unique_ptr<HttpsEnrolmentChannel>(new HttpsEnrolmentChannel(std::move(impl)));
}

Result<EnrolmentAnswer<EnrolmentSession>> HttpsEnrolmentChannel::Begin(const EnrolmentOrder& order) {
  IDEVID_ASSIGN_OR_RETURN(auto answer,
                          impl_->Step(kEnrolBeginPath, EncodeBeginRequest(order), &ParseSession));
  if (const auto* session = std::get_if<EnrolmentSession>(&answer)) {
    // The id goes back in later requests and into the station's records: printable and short.
    if (session->id.empty() || session->id.size() > kSessionMaxBytes ||
        DisplayText(session->id, kSessionMaxBytes + 1) != session->id) {
      return PeerError(
          PeerCode::kMalformed,
          fmt::format("{} answered a session id that is empty, longer than {} bytes or not printable: {}",
                      impl_->options.url, kSessionMaxBytes, QuotedDisplayText(session->id)));
    }
  }
  return answer;
}

Result<EnrolmentAnswer<Credential>> HttpsEnrolmentChannel::Submit(const std::string& session,
                                                                  std::span<const std::uint8_t> csr) {
  return impl_->Step(kEnrolRequestPath, EncodeSubmitRequest(session, csr), &ParseCredential);
}

Result<EnrolmentAnswer<EnrolmentCertificates>> HttpsEnrolmentChannel::Activate(
    const std::string& session, std::span<const std::uint8_t> secret) {
  return impl_->Step(kEnrolActivatePath, EncodeActivateRequest(session, secret), &ParseCertificates);
}

Result<EnrolmentAnswer<EnrolmentCommitted>> HttpsEnrolmentChannel::Commit(const std::string& session,
                                                                          const EnrolmentCommit& commit) {
  return impl_->Step(kEnrolCommitPath, EncodeCommitRequest(session, commit), &ParseCommitted);
}

}  // namespace idevid
