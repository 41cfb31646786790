// The one owner of a file descriptor (sockets, pipes, files): closes it on destruction.
#pragma once

#include <utility>

#include "core/result.h"

namespace idevid {

// Owns a file descriptor; -1 is "none". Move-only; closes what it owns when destroyed or reset.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }
  // Closes what it owns (errors of close are ignored: nothing can be done) and owns `fd`.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// ::socket(domain, type | SOCK_CLOEXEC, protocol), owned; kIo with errno when it fails.
Result<UniqueFd> OpenSocket(int domain, int type, int protocol = 0);

// Sets TCP_NODELAY on a TCP socket, so that each write goes out at once: an exchange of small
// TLS records in turns (a challenge, then evidence) otherwise waits on the peer's delayed ACK
// (up to 40 ms on Linux) each time. Best effort: a socket that is not TCP is left as it is.
void SendImmediately(int fd);

// ::pipe2(O_CLOEXEC): [0] the read end, [1] the write end; kIo with errno when it fails.
struct Pipe {
  UniqueFd read;
  UniqueFd write;
};
Result<Pipe> OpenPipe();

}  // namespace idevid
