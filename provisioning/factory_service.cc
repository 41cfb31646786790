#include "provisioning/factory_service.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/display_text.h"
#include "core/openssl_error.h"
#include "core/unique_fd.h"
#include "core/utc_time.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "provisioning/enrolment_wire.h"

namespace idevid {
namespace {

constexpr const char* kJson = "application/json";
constexpr const char* kStepPaths = R"(/v1/enrol/(begin|request|activate|commit))";
constexpr auto kStartDeadline = std::chrono::seconds(10);

// The files the TLS context is made of, loaded and checked before the server starts.
struct TlsMaterial {
  std::vector<ossl::Cert> chain;  // the service's certificate first
  ossl::PKey key;
  std::vector<ossl::Cert> station_cas;  // empty: stations are not asked for a certificate
};

tl::unexpected<Error> BadFile(const char* what, const std::filesystem::path& path, const Error& error) {
  return ConfigError(ConfigCode::kFile, fmt::format("the {} {}: {}", what, path.string(), error.message()));
}

Result<TlsMaterial> LoadTlsMaterial(const FactoryServiceOptions& options) {
  TlsMaterial material;
  auto chain = LoadCertificateBundle(options.certificate);
  if (!chain) return BadFile("service certificate", options.certificate, chain.error());
  material.chain = std::move(*chain);
  auto key = LoadPrivateKeyPem(options.private_key);
  if (!key) return BadFile("service key", options.private_key, key.error());
  material.key = std::move(*key);
  if (X509_check_private_key(material.chain.front().get(), material.key.get()) != 1) {
    ClearOpenSslErrors();
    return ConfigError(ConfigCode::kFile,
                       fmt::format("the service key {} does not belong to the certificate {}",
                                   options.private_key.string(), options.certificate.string()));
  }
  if (options.station_ca) {
    auto cas = LoadCertificateBundle(*options.station_ca);
    if (!cas) return BadFile("station CA bundle", *options.station_ca, cas.error());
    material.station_cas = std::move(*cas);
  }
  return material;
}

// Configures a server context from `material`; false when OpenSSL refuses (its queue says why).
bool SetUpContext(SSL_CTX& ctx, const TlsMaterial& material) {
  if (SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION) != 1) return false;
  if (SSL_CTX_use_certificate(&ctx, material.chain.front().get()) != 1) return false;
  for (std::size_t i = 1; i < material.chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(&ctx, material.chain[i].get()) != 1) return false;
  }
  if (SSL_CTX_use_PrivateKey(&ctx, material.key.get()) != 1) return false;
  if (material.station_cas.empty()) return true;
  X509_STORE* store = SSL_CTX_get_cert_store(&ctx);
  for (const auto& ca : material.station_cas) {
    if (X509_STORE_add_cert(store, ca.get()) != 1) return false;
    if (SSL_CTX_add_client_CA(&ctx, ca.get()) != 1) return false;  // the hint stations choose by
  }
  // RFC 8446 4.4.2.4 / RFC 5246 7.4.6: a station without a verified certificate is not served.
  SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return true;
}

// The station a verified client certificate names: its subject CN, else its whole subject.
std::string StationName(const X509& cert) {
  auto cn = SubjectAttribute(cert, "CN");
  if (cn && !cn->empty()) return DisplayText(cn->front());
  return DisplayText(SubjectLine(cert));
}

std::optional<std::string> PeerStation(const httplib::Request& req) {
  if (req.ssl == nullptr) return std::nullopt;
  X509* cert = SSL_get0_peer_certificate(req.ssl);
  if (cert == nullptr) return std::nullopt;
  return StationName(*cert);
}

// What a handler learnt that the log line of its request states. A request is handled and then
// logged on one server thread, so the note travels in a thread-local.
struct RequestNote {
  std::optional<std::string> claimed_station;
  std::optional<std::string> session;
  std::optional<std::string> reason;
  std::optional<std::string> error;
};
thread_local RequestNote t_note;

void Answer(httplib::Response& res, int status, std::string body) {
  res.status = status;
  res.set_content(std::move(body), kJson);
}

void BadRequest(httplib::Response& res, const Error& error) {
  t_note.error = error.message();
  Answer(res, 400, EncodeWireError(error.message()));
}

// 200 with the value, 403 with the refusal, 500 when the authority failed (its error goes to the
// log, not to the station).
template <typename T>
void AnswerStep(const Result<EnrolmentAnswer<T>>& answer, std::string (*encode)(const T&),
                httplib::Response& res) {
  if (!answer) {
    t_note.error = answer.error().ToString();
    Answer(res, 500, EncodeWireError("the enrolment authority failed; the service's log says why"));
    return;
  }
  if (const auto* refusal = std::get_if<EnrolmentRefusal>(&*answer)) {
    t_note.reason = DisplayText(refusal->reason);
    Answer(res, 403, EncodeRefusal(*refusal));
    return;
  }
  Answer(res, 200, encode(std::get<T>(*answer)));
}

// An append-only JSON-lines file written by the server threads; one write() per line.
class RequestLog {
 public:
  Result<void> Open(const std::filesystem::path& path) {
    fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
    if (!fd_) return ErrnoError(errno, "cannot open the log " + path.string());
    return {};
  }
  void Write(const nlohmann::json& line) {
    if (!fd_) return;
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard lock(mutex_);
    // A log that cannot be written must not stop enrolment; what was lost is lost.
    [[maybe_unused]] ssize_t written = ::write(fd_.get(), text.data(), text.size());
  }

 private:
  std::mutex mutex_;
  UniqueFd fd_;
};

nlohmann::json OrNull(const std::optional<std::string>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

// Blocks SIGPIPE in the calling thread (and the threads it starts): a station that goes away
// while the service writes gives EPIPE, not the end of the process.
void BlockBrokenPipeSignal() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
}

}  // namespace

struct FactoryService::Impl {
  Impl(const FactoryServiceOptions& o, EnrolmentChannel& a, TlsMaterial m)
      : options(o), authority(a), material(std::move(m)) {}

  Result<void> Serve();
  void Routes();
  void Begin(const httplib::Request& req, httplib::Response& res);
  void Submit(const httplib::Request& req, httplib::Response& res);
  void Activate(const httplib::Request& req, httplib::Response& res);
  void Commit(const httplib::Request& req, httplib::Response& res);
  void Log(const httplib::Request& req, const httplib::Response& res);

  FactoryServiceOptions options;
  EnrolmentChannel& authority;
  TlsMaterial material;
  RequestLog log;
  std::unique_ptr<httplib::SSLServer> server;
  std::thread thread;
  std::atomic<bool> listen_returned{false};
  std::uint16_t port = 0;
};

void FactoryService::Impl::Begin(const httplib::Request& req, httplib::Response& res) {
  t_note = {};
  auto order = ParseBeginRequest(req.body);
  if (!order) return BadRequest(res, order.error());
  if (!order->station.empty()) t_note.claimed_station = DisplayText(order->station);
  if (!material.station_cas.empty()) order->station = PeerStation(req).value_or("");
  auto answer = authority.Begin(*order);
  if (answer && std::holds_alternative<EnrolmentSession>(*answer)) {
    t_note.session = DisplayText(std::get<EnrolmentSession>(*answer).id);
  }
  AnswerStep(answer, &EncodeSession, res);
}

void FactoryService::Impl::Submit(const httplib::Request& req, httplib::Response& res) {
  t_note = {};
  auto request = ParseSubmitRequest(req.body);
  if (!request) return BadRequest(res, request.error());
  t_note.session = DisplayText(request->session);
  AnswerStep(authority.Submit(request->session, request->csr), &EncodeCredential, res);
}

void FactoryService::Impl::Activate(const httplib::Request& req, httplib::Response& res) {
  t_note = {};
  auto request = ParseActivateRequest(req.body);
  if (!request) return BadRequest(res, request.error());
  t_note.session = DisplayText(request->session);
  AnswerStep(authority.Activate(request->session, request->secret), &EncodeCertificates, res);
}

// A service that verifies station certificates commits in the name of the certificate's station,
// whatever the request says, as Begin does: only the station that began a session can commit it.
void FactoryService::Impl::Commit(const httplib::Request& req, httplib::Response& res) {
  t_note = {};
  auto request = ParseCommitRequest(req.body);
  if (!request) return BadRequest(res, request.error());
  t_note.session = DisplayText(request->session);
  if (!request->commit.station.empty()) t_note.claimed_station = DisplayText(request->commit.station);
  if (!material.station_cas.empty()) request->commit.station = PeerStation(req).value_or("");
  AnswerStep(authority.Commit(request->session, request->commit), &EncodeCommitted, res);
}

void FactoryService::Impl::Log(const httplib::Request& req, const httplib::Response& res) {
  RequestNote note = std::exchange(t_note, {});
  std::string peer = req.remote_addr.find(':') == std::string::npos
                         ? fmt::format("{}:{}", req.remote_addr, req.remote_port)
                         : fmt::format("[{}]:{}", req.remote_addr, req.remote_port);
  log.Write({{"time", UtcTimestamp(std::chrono::system_clock::now())},
             {"peer", peer},
             {"station", PeerStation(req).value_or(note.claimed_station.value_or(""))},
             {"method", DisplayText(req.method)},
             {"path", DisplayText(req.path)},
             {"status", res.status},
             {"session", OrNull(note.session)},
             {"reason", OrNull(note.reason)},
             {"error", OrNull(note.error)}});
}

void FactoryService::Impl::Routes() {
  server->Post(kEnrolBeginPath,
               [this](const httplib::Request& req, httplib::Response& res) { Begin(req, res); });
  server->Post(kEnrolRequestPath,
               [this](const httplib::Request& req, httplib::Response& res) { Submit(req, res); });
  server->Post(kEnrolActivatePath,
               [this](const httplib::Request& req, httplib::Response& res) { Activate(req, res); });
  server->Post(kEnrolCommitPath,
               [this](const httplib::Request& req, httplib::Response& res) { Commit(req, res); });
  // RFC 9110 15.5.6: a known resource asked with another method answers 405 with Allow.
  auto not_allowed = [](const httplib::Request& req, httplib::Response& res) {
    t_note = {};
    res.set_header("Allow", "POST");
    Answer(res, 405,
           EncodeWireError(fmt::format("{} {} is not allowed; only POST is", QuotedDisplayText(req.method),
                                       QuotedDisplayText(req.path))));
  };
  server->Get(kStepPaths, not_allowed);  // HEAD too
  server->Put(kStepPaths, not_allowed);
  server->Patch(kStepPaths, not_allowed);
  server->Delete(kStepPaths, not_allowed);
  server->Options(kStepPaths, not_allowed);
  // Answers the library makes itself (404, 413, 400 for broken HTTP) carry the JSON error too.
  server->set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message;
        switch (res.status) {
          case 404:
            message = fmt::format("no resource {} (the enrolment steps are {}, {}, {} and {})",
                                  QuotedDisplayText(req.path), kEnrolBeginPath, kEnrolRequestPath,
                                  kEnrolActivatePath, kEnrolCommitPath);
            break;
          case 413: message = fmt::format("the body is larger than {} bytes", kEnrolmentBodyMaxBytes); break;
          default: message = fmt::format("the request could not be served (HTTP {})", res.status);
        }
        t_note.error = message;
        res.set_content(EncodeWireError(message), kJson);
        return httplib::Server::HandlerResponse::Handled;
      }));
  server->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    t_note.error = "an exception while serving the request";
    Answer(res, 500, EncodeWireError("the service failed while serving the request"));
  });
  server->set_logger([this](const httplib::Request& req, const httplib::Response& res) { Log(req, res); });
}

Result<void> FactoryService::Impl::Serve() {
  if (!options.log.empty()) IDEVID_TRY(log.Open(options.log), "the service's request log");
  server = std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) { return SetUpContext(ctx, material); });
  if (!server->is_valid()) return FailOpenSsl("cannot set up the service's TLS context");
  server->set_read_timeout(options.read_timeout);
  server->set_write_timeout(options.write_timeout);
  server->set_payload_max_length(kEnrolmentBodyMaxBytes);
  // SO_REUSEADDR only: the library's default SO_REUSEPORT would let a second service bind the
  // same port and silently take half of the stations.
  server->set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  Routes();
  errno = 0;
  int bound = options.port == 0 ? server->bind_to_any_port(options.host)
                                : (server->bind_to_port(options.host, options.port) ? options.port : -1);
  if (bound <= 0) return ErrnoError(errno, fmt::format("cannot listen on {}:{}", options.host, options.port));
  port = static_cast<std::uint16_t>(bound);
  thread = std::thread([this] {
    BlockBrokenPipeSignal();  // inherited by the server's worker threads
    (void)server->listen_after_bind();
    listen_returned = true;
  });
  // Stop() only ends a server that has begun listening: wait for that.
  auto deadline = std::chrono::steady_clock::now() + kStartDeadline;
  while (!server->is_running() && !listen_returned && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!server->is_running()) {
    return Fail(ErrorDomain::kIo, 0,
                fmt::format("the service on {}:{} did not start listening", options.host, port));
  }
  return {};
}

FactoryService::FactoryService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FactoryService::~FactoryService() { Stop(); }

Result<std::unique_ptr<FactoryService>> FactoryService::Start(const FactoryServiceOptions& options,
                                                              EnrolmentChannel& authority) {
  IDEVID_ASSIGN_OR_RETURN(TlsMaterial material, LoadTlsMaterial(options));
  std::unique_ptr<FactoryService> service(
      new FactoryService(std::make_unique<Impl>(options, authority, std::move(material))));
  IDEVID_TRY(service->impl_->Serve(), "starting the enrolment service");
  return service;
}

std::uint16_t FactoryService::port() const { return impl_->port; }

void FactoryService::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->server->stop();
  impl_->thread.join();
}

}  // namespace idevid
