#include "device/ssli/session_io.h"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "core/display_text.h"

namespace idevid {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

Error DeadlinePassed(const SessionLimits& limits) {
  return Error(ErrorDomain::kPeer, static_cast<std::uint64_t>(PeerCode::kTimeout),
               fmt::format("the session did not finish within its deadline of {} (connect, "
                           "handshake, request and response together)",
                           DurationText(limits.total)));
}

Error WaitTimedOut(const SessionLimits& limits) {
  return Error(ErrorDomain::kPeer, static_cast<std::uint64_t>(PeerCode::kTimeout),
               fmt::format("the cloud did not answer within the profile's handshake-timeout of {}",
                           DurationText(limits.per_wait)));
}

// Waits until `fd` is ready for `events` or a limit passes (the error names which).
Result<void> WaitFor(int fd, short events, const SessionLimits& limits) {
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(limits.deadline - Clock::now());
    if (left <= milliseconds(0)) return Fail(DeadlinePassed(limits));
    bool deadline_first = left < limits.per_wait;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min(left, limits.per_wait).count()));
    if (n > 0) return {};
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "waiting for the cloud");
    return Fail(deadline_first ? DeadlinePassed(limits) : WaitTimedOut(limits));
  }
}

}  // namespace

SessionLimits SessionLimits::StartingNow(milliseconds total, milliseconds per_wait) {
  return {Clock::now() + total, total, per_wait};
}

std::string DurationText(milliseconds d) {
  return d.count() % 1000 == 0 ? fmt::format("{} s", d.count() / 1000) : fmt::format("{} ms", d.count());
}

namespace {

// A non-blocking connect to one address, waited for within the limits; the socket or the error
// (kPeer kUnreachable with the errno's text when the address refuses or cannot be reached).
Result<UniqueFd> ConnectOne(const addrinfo& address, const SessionLimits& limits) {
  IDEVID_ASSIGN_OR_RETURN(UniqueFd fd, OpenSocket(address.ai_family, SOCK_STREAM | SOCK_NONBLOCK));
  int rc = ::connect(fd.get(), address.ai_addr, address.ai_addrlen);
  int e = errno;
  if (rc != 0 && e == EINPROGRESS) {
    IDEVID_TRY(WaitFor(fd.get(), POLLOUT, limits));
    socklen_t length = sizeof e;
    rc = ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &e, &length) == 0 && e == 0 ? 0 : -1;
  }
  if (rc != 0) return PeerError(PeerCode::kUnreachable, fmt::format("cannot connect: {}", std::strerror(e)));
  SendImmediately(fd.get());
  return fd;
}

// "[::1]" -> "::1": an IPv6 literal as written in HOST:PORT (RFC 3986 3.2.2).
std::string Unbracketed(const std::string& host) {
  return host.size() > 2 && host.front() == '[' && host.back() == ']' ? host.substr(1, host.size() - 2)
                                                                      : host;
}

}  // namespace

Result<UniqueFd> ConnectTcpWithin(const std::string& host, std::uint16_t port, const SessionLimits& limits) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string name = Unbracketed(host);
  if (int rc = ::getaddrinfo(name.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    return PeerError(PeerCode::kUnreachable,
                     fmt::format("cannot resolve {}: {}", QuotedDisplayText(host), gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> addresses(found, ::freeaddrinfo);
  // Every address in turn (e.g. ::1, then 127.0.0.1 for "localhost"), within the one deadline.
  std::optional<Error> last;
  for (const addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
    auto fd = ConnectOne(*a, limits);
    if (fd) return fd;
    last = fd.error();
    if (!last->Is(ErrorDomain::kPeer, PeerCode::kUnreachable)) break;  // a limit passed: no time for the next
  }
  if (!last)
    last = Error(ErrorDomain::kPeer, static_cast<std::uint64_t>(PeerCode::kUnreachable), "no address");
  return Fail(last->WithContext(fmt::format("connecting to the cloud at {}:{}", DisplayText(host), port)));
}

Result<TlsCall> RunTlsCall(SSL* ssl, const SessionLimits& limits, const std::function<int()>& call) {
  for (;;) {
    if (Clock::now() >= limits.deadline) return Fail(DeadlinePassed(limits));
    errno = 0;
    TlsCall outcome;
    outcome.ret = call();
    outcome.saved_errno = errno;
    outcome.ssl_error = SSL_get_error(ssl, outcome.ret);
    bool read = outcome.ssl_error == SSL_ERROR_WANT_READ;
    bool write = outcome.ssl_error == SSL_ERROR_WANT_WRITE;
    // A blocking socket whose SO_RCVTIMEO expired reports EAGAIN as a syscall error.
    bool again = outcome.ssl_error == SSL_ERROR_SYSCALL &&
                 (outcome.saved_errno == EAGAIN || outcome.saved_errno == EWOULDBLOCK);
    if (!read && !write && !again) return outcome;
    IDEVID_TRY(WaitFor(SSL_get_fd(ssl), write ? POLLOUT : POLLIN, limits));
  }
}

}  // namespace idevid
