#include "harness/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace idevid {
namespace {

class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in Loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Binds `s` to 127.0.0.1:port (0 = any free port); returns the bound port or 0.
std::uint16_t Bind(const Socket& s, std::uint16_t port) {
  sockaddr_in addr = Loopback(port);
  if (s.fd() < 0 || ::bind(s.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
  socklen_t length = sizeof addr;
  if (::getsockname(s.fd(), reinterpret_cast<sockaddr*>(&addr), &length) != 0) return 0;
  return ntohs(addr.sin_port);
}

}  // namespace

Result<std::uint16_t> FindFreePort() {
  Socket s;
  std::uint16_t port = Bind(s, 0);
  if (port == 0) return ErrnoError(errno, "cannot find a free port on 127.0.0.1");
  return port;
}

Result<std::uint16_t> FindFreePortPair() {
  for (int attempt = 0; attempt < 64; ++attempt) {
    Socket first;
    std::uint16_t port = Bind(first, 0);
    if (port == 0) return ErrnoError(errno, "cannot find a free port on 127.0.0.1");
    if (port == 65535) continue;
    Socket second;
    if (Bind(second, static_cast<std::uint16_t>(port + 1)) != 0) return port;
  }
  return Fail(ErrorDomain::kIo, EADDRINUSE,
              "cannot find two consecutive free ports on 127.0.0.1 after 64 tries");
}

bool PortAcceptsConnections(std::uint16_t port) {
  Socket s;
  sockaddr_in addr = Loopback(port);
  return s.fd() >= 0 && ::connect(s.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

}  // namespace idevid
