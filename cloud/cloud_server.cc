#include "cloud/cloud_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <list>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "cloud/attestation_exchange.h"
#include "cloud/connection.h"
#include "cloud/connection_log.h"
#include "cloud/crl_watch.h"
#include "cloud/inventory.h"
#include "core/ledger.h"
#include "core/openssl_error.h"
#include "core/unique_fd.h"
#include "core/x509.h"
#include "core/x509_build.h"

namespace idevid {

using ossl::SslCtx;

struct CloudServer::Impl {
  CloudOptions options;
  SslCtx ctx;
  std::mutex inventory_mutex;
  std::shared_ptr<const std::optional<Inventory>> inventory;
  UniqueFd listen_fd;
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
  ConnectionLog log;
  std::unique_ptr<AttestationService> attestation;  // with a policy; lives as long as the server
  std::unique_ptr<CrlWatch> crl;                    // with a CRL
  std::unique_ptr<Ledger> ledger;                   // with a ledger

  void AcceptLoop();
  void ReapFinishedWorkers();  // with threads_mutex held
  ConnectionSettings Settings();
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
  IDEVID_ASSIGN_OR_RETURN(auto factory, LoadCertificateBundle(o.factory_ca));
  for (const auto& cert : factory) X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), cert.get());
  // RFC 8446 4.4.2.4 / RFC 5246 7.4.6: a client certificate is required and must chain to the
  // factory CA; the handshake fails with an alert otherwise.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  // RFC 5077 / RFC 8446 4.6.1: sessions resume from a session ID (TLS 1.2) or a ticket (both);
  // with client verification, OpenSSL resumes only sessions of this context (and fails the
  // handshake with "session id context uninitialized" when none is set).
  static constexpr unsigned char kSessionContext[] = "idevid-cloud";
  if (SSL_CTX_set_session_id_context(ctx.get(), kSessionContext, sizeof kSessionContext - 1) != 1) {
    return FailOpenSsl("cannot set the TLS session id context");
  }
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
  SSL_CTX_clear_options(ctx.get(), SSL_OP_NO_TICKET);
  return ctx;
}

Result<UniqueFd> Listen(const std::string& host, std::uint16_t port, std::uint16_t* bound) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("'{}' is not an IPv4 address to listen on", host));
  }
  IDEVID_ASSIGN_OR_RETURN(UniqueFd fd, OpenSocket(AF_INET, SOCK_STREAM));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t length = sizeof addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd.get(), 256) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    return ErrnoError(errno, fmt::format("cannot listen on {}:{}", host, port));
  }
  *bound = ntohs(addr.sin_port);
  return fd;
}

std::string PeerName(const sockaddr_in& addr) {
  char ip[INET_ADDRSTRLEN] = "";
  ::inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  return fmt::format("{}:{}", ip, ntohs(addr.sin_port));
}

// A client that goes away while the cloud writes makes write() fail with EPIPE in this thread
// rather than SIGPIPE ending the process (a pending one is discarded when the thread ends).
void BlockBrokenPipeSignal() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
}

}  // namespace

ConnectionSettings CloudServer::Impl::Settings() {
  std::lock_guard lock(inventory_mutex);
  return {ctx.get(),
          options.io_timeout,
          options.handshake_deadline,
          options.request_deadline,
          inventory,
          attestation.get(),
          crl.get(),
          ledger.get()};
}

void CloudServer::Impl::AcceptLoop() {
  while (!stopping) {
    pollfd p{listen_fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    sockaddr_in addr{};
    socklen_t length = sizeof addr;
    UniqueFd fd(::accept4(listen_fd.get(), reinterpret_cast<sockaddr*>(&addr), &length, SOCK_CLOEXEC));
    if (!fd) continue;
    SendImmediately(fd.get());
    ++connections;
    std::lock_guard lock(threads_mutex);
    ReapFinishedWorkers();
    Worker& worker = workers.emplace_back();
    worker.thread = std::thread([this, fd = std::move(fd), peer = PeerName(addr), &worker]() mutable {
      BlockBrokenPipeSignal();
      ServeConnection(std::move(fd), peer, Settings(), log);
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
  IDEVID_ASSIGN_OR_RETURN(impl->ctx, ServerContext(options));
  impl->inventory = std::make_shared<const std::optional<Inventory>>();
  if (options.inventory) {
    IDEVID_ASSIGN_OR_RETURN(Inventory inventory, LoadInventory(*options.inventory));
    impl->inventory = std::make_shared<const std::optional<Inventory>>(std::move(inventory));
  }
  if (options.attest_policy) {
    IDEVID_ASSIGN_OR_RETURN(AttestPolicy policy, LoadAttestPolicy(*options.attest_policy));
    impl->attestation = std::make_unique<AttestationService>();
    impl->attestation->policy = std::move(policy);
  }
  if (options.crl) {
    IDEVID_ASSIGN_OR_RETURN(auto factory_ca, LoadCertificateBundle(options.factory_ca));
    std::vector<const X509*> cas;
    for (const auto& cert : factory_ca) cas.push_back(cert.get());
    IDEVID_ASSIGN_OR_RETURN(impl->crl, CrlWatch::Load(*options.crl, cas));
  }
  if (!options.ledger.empty()) {
    IDEVID_ASSIGN_OR_RETURN(impl->ledger, OpenLedger(options.ledger));
  }
  if (!options.log.empty()) IDEVID_TRY(impl->log.Open(options.log));
  IDEVID_ASSIGN_OR_RETURN(impl->listen_fd, Listen(options.host, options.port, &impl->port));
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
  impl_->listen_fd.reset();
  std::list<Impl::Worker> workers;
  {
    std::lock_guard lock(impl_->threads_mutex);
    workers.swap(impl_->workers);
  }
  for (auto& w : workers) w.thread.join();
  impl_->log.Close();
}

Result<void> CloudServer::ReloadInventory() {
  if (!impl_->options.inventory) {
    return UsageError(UsageCode::kWrongState, "the cloud was started without an inventory");
  }
  IDEVID_ASSIGN_OR_RETURN(Inventory inventory, LoadInventory(*impl_->options.inventory));
  auto loaded = std::make_shared<const std::optional<Inventory>>(std::move(inventory));
  std::lock_guard lock(impl_->inventory_mutex);
  impl_->inventory = std::move(loaded);
  return {};
}

Result<void> CloudServer::ReloadCrl() {
  if (!impl_->crl) return UsageError(UsageCode::kWrongState, "the cloud was started without a CRL");
  return impl_->crl->Reload();
}

}  // namespace idevid
