#include "cloud/tls_io.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace idevid {
namespace {

// Waits for `events` on `fd` for at most the idle wait, never past the deadline.
IoOutcome Wait(int fd, short events, const IoBounds& bounds) {
  for (;;) {
    auto now = Clock::now();
    if (now >= bounds.deadline) return IoOutcome::kDeadline;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(bounds.deadline - now);
    auto wait = std::min(bounds.idle, left);
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(wait.count()));
    if (n > 0) return IoOutcome::kDone;
    if (n < 0 && errno != EINTR) return IoOutcome::kFailed;
    if (n == 0) return wait < bounds.idle ? IoOutcome::kDeadline : IoOutcome::kIdle;
  }
}

}  // namespace

bool SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

IoOutcome DriveSsl(SSL* ssl, int fd, const std::function<int()>& step, const IoBounds& bounds, int* result) {
  for (;;) {
    ERR_clear_error();
    int r = step();
    if (r > 0) {
      *result = r;
      return IoOutcome::kDone;
    }
    int kind = SSL_get_error(ssl, r);
    short events = kind == SSL_ERROR_WANT_READ ? POLLIN : kind == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (kind == SSL_ERROR_ZERO_RETURN) return IoOutcome::kClosed;
    if (kind == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return IoOutcome::kClosed;
    if (events == 0) return IoOutcome::kFailed;
    if (IoOutcome waited = Wait(fd, events, bounds); waited != IoOutcome::kDone) return waited;
  }
}

IoOutcome WaitReadable(int fd, const IoBounds& bounds) { return Wait(fd, POLLIN, bounds); }

void LingeringClose(UniqueFd socket) {
  int fd = socket.get();
  ::shutdown(fd, SHUT_WR);
  char buffer[4096];
  auto deadline = Clock::now() + std::chrono::milliseconds(500);
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0 && ::read(fd, buffer, sizeof buffer) <= 0) break;
  }
}  // `socket` closes it

}  // namespace idevid
