#include "cloud/cloud_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <list>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cloud/identity_verdict.h"
#include "cloud/inventory.h"
#include "core/openssl_error.h"
#include "core/x509.h"
#include "core/x509_build.h"

namespace idevid {

using SslCtx = ossl::Owner<SSL_CTX, SSL_CTX_free>;
using Ssl = ossl::Owner<SSL, SSL_free>;

struct CloudServer::Impl {
  CloudOptions options;
  SslCtx ctx;
  std::optional<Inventory> inventory;
  int listen_fd = -1;
  std::uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> connections{0};
  std::thread acceptor;
  // One per connection; a finished worker is joined and removed when the next connection
  // comes, so that a long-running cloud does not keep every thread it ever started.
  struct Worker {
    std::thread thread;
    std::atomic<bool> finished{false};
  };
  std::mutex threads_mutex;
  std::list<Worker> workers;
  std::mutex log_mutex;
  std::FILE* log = nullptr;

  void AcceptLoop();
  void ReapFinishedWorkers();  // with threads_mutex held
  void Serve(int fd, std::string peer);
  void Log(const nlohmann::json& line);
};

namespace {

Result<SslCtx> ServerContext(const CloudOptions& o) {
  SslCtx ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
    return FailOpenSsl("cannot create the TLS server context");
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), o.certificate.c_str()) != 1) {
    return Fail(OpenSslError(fmt::format("cannot use {} as the server certificate", o.certificate.string())));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), o.private_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Fail(OpenSslError(fmt::format("cannot use {} as the server key", o.private_key.string())));
  }
  auto factory = LoadCertificateBundle(o.factory_ca);
  if (!factory) return Fail(factory.error());
  for (const auto& cert : *factory) X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), cert.get());
  // RFC 8446 4.4.2.4 / RFC 5246 7.4.6: a client certificate is required and must chain to the
  // factory CA; the handshake fails with an alert otherwise.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  return ctx;
}

Result<int> Listen(const std::string& host, std::uint16_t port, std::uint16_t* bound) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError(errno, "cannot create a socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return UsageError(fmt::format("'{}' is not an IPv4 address to listen on", host));
  }
  socklen_t length = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 256) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    int e = errno;
    ::close(fd);
    return ErrnoError(e, fmt::format("cannot listen on {}:{}", host, port));
  }
  *bound = ntohs(addr.sin_port);
  return fd;
}

void SetTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// The request line of an HTTP/1.1 request ("GET /v1/identity HTTP/1.1"), read up to the end of
// the headers; empty when the client sent none in time.
std::string ReadRequestLine(SSL* ssl) {
  std::string data;
  char buffer[1024];
  while (data.find("\r\n\r\n") == std::string::npos && data.size() < 8192) {
    int n = SSL_read(ssl, buffer, sizeof buffer);
    if (n <= 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  return data.substr(0, data.find("\r\n"));
}

void Respond(SSL* ssl, int status, const nlohmann::json& body) {
  std::string text = body.dump();
  std::string reason = status == 200 ? "OK" : status == 403 ? "Forbidden" : "Not Found";
  std::string response = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Connection: close\r\n\r\n{}",
      status, reason, text.size(), text);
  SSL_write(ssl, response.data(), static_cast<int>(response.size()));
}

std::string PeerName(const sockaddr_in& addr) {
  char ip[INET_ADDRSTRLEN] = "";
  ::inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  return fmt::format("{}:{}", ip, ntohs(addr.sin_port));
}

std::string Now() {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

// Closes after the peer has had the chance to read our alert: closing with its data unread would
// reset the connection and lose the alert on the way.
void LingeringClose(int fd) {
  ::shutdown(fd, SHUT_WR);
  char buffer[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0 && ::read(fd, buffer, sizeof buffer) <= 0) break;
  }
  ::close(fd);
}

}  // namespace

void CloudServer::Impl::Log(const nlohmann::json& line) {
  std::lock_guard lock(log_mutex);
  if (log == nullptr) return;
  std::fputs((line.dump() + "\n").c_str(), log);
  std::fflush(log);
}

void CloudServer::Impl::Serve(int fd, std::string peer) {
  SetTimeouts(fd, options.io_timeout);
  Ssl ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  nlohmann::json line = {{"time", Now()}, {"peer", peer}, {"serial", ""}, {"model", ""}};
  errno = 0;
  int accepted = SSL_accept(ssl.get());
  int saved_errno = errno;
  if (accepted != 1) {
    long verify = SSL_get_verify_result(ssl.get());
    int kind = SSL_get_error(ssl.get(), accepted);
    bool stalled = kind == SSL_ERROR_WANT_READ || kind == SSL_ERROR_WANT_WRITE ||
                   (kind == SSL_ERROR_SYSCALL && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK));
    line["verdict"] = "rejected";
    line["reason"] = verify != X509_V_OK ? fmt::format("handshake refused: {}", X509_verify_cert_error_string(verify))
                     : stalled ? fmt::format("the client stalled: no handshake within {} ms", options.io_timeout.count())
                               : OpenSslError("handshake failed").message();
    ClearOpenSslErrors();
    Log(line);
    LingeringClose(fd);
    return;
  }
  ossl::Cert cert(SSL_get1_peer_certificate(ssl.get()));
  IdentityVerdict verdict = JudgeDeviceCertificate(*cert, inventory);
  line.update(verdict.ToJson());
  line["protocol"] = SSL_get_version(ssl.get());
  line["cipher"] = SSL_get_cipher_name(ssl.get());
  std::string request = ReadRequestLine(ssl.get());
  if (request.rfind("GET /v1/identity ", 0) == 0) {
    Respond(ssl.get(), verdict.accepted ? 200 : 403, verdict.ToJson());
  } else {
    Respond(ssl.get(), 404, {{"error", "only GET /v1/identity is served"}});
  }
  line["request"] = request;
  Log(line);
  SSL_shutdown(ssl.get());
  ::close(fd);
}

void CloudServer::Impl::AcceptLoop() {
  while (!stopping) {
    pollfd p{listen_fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    sockaddr_in addr{};
    socklen_t length = sizeof addr;
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &length, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections;
    std::lock_guard lock(threads_mutex);
    ReapFinishedWorkers();
    Worker& worker = workers.emplace_back();
    worker.thread = std::thread([this, fd, peer = PeerName(addr), &worker] {
      Serve(fd, peer);
      worker.finished = true;
    });
  }
}

void CloudServer::Impl::ReapFinishedWorkers() {
  for (auto it = workers.begin(); it != workers.end();) {
    if (!it->finished) {
      ++it;
      continue;
    }
    it->thread.join();
    it = workers.erase(it);
  }
}

CloudServer::CloudServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<CloudServer>> CloudServer::Start(const CloudOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  auto ctx = ServerContext(options);
  if (!ctx) return Fail(ctx.error());
  impl->ctx = std::move(*ctx);
  if (options.inventory) {
    auto inventory = LoadInventory(*options.inventory);
    if (!inventory) return Fail(inventory.error());
    impl->inventory = std::move(*inventory);
  }
  if (!options.log.empty()) {
    impl->log = std::fopen(options.log.c_str(), "a");
    if (impl->log == nullptr) return ErrnoError(errno, "cannot open the log " + options.log.string());
  }
  auto fd = Listen(options.host, options.port, &impl->port);
  if (!fd) return Fail(fd.error());
  impl->listen_fd = *fd;
  Impl* raw = impl.get();
  impl->acceptor = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<CloudServer>(new CloudServer(std::move(impl)));
}

CloudServer::~CloudServer() { Stop(); }

std::uint16_t CloudServer::port() const { return impl_->port; }
std::uint64_t CloudServer::connections() const { return impl_->connections; }

std::size_t CloudServer::workers() const {
  std::lock_guard lock(impl_->threads_mutex);
  return impl_->workers.size();
}

void CloudServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  ::close(impl_->listen_fd);
  std::list<Impl::Worker> workers;
  {
    std::lock_guard lock(impl_->threads_mutex);
    workers.swap(impl_->workers);
  }
  for (auto& w : workers) w.thread.join();
  if (impl_->log != nullptr) std::fclose(impl_->log);
  impl_->log = nullptr;
}

}  // namespace idevid
