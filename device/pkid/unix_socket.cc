#include "device/pkid/unix_socket.h"

#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace idevid {
namespace {

Result<sockaddr_un> Address(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof addr.sun_path) {
    return UsageError(fmt::format("socket path {} is longer than {} bytes", path.string(),
                                  sizeof addr.sun_path - 1));
  }
  std::strcpy(addr.sun_path, path.c_str());
  return addr;
}

Result<Fd> Connect(const std::filesystem::path& path) {
  auto addr = Address(path);
  if (!addr) return Fail(addr.error());
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return ErrnoError(errno, "cannot create a socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) != 0) {
    return ErrnoError(errno, fmt::format("cannot connect to {}", path.string()));
  }
  return fd;
}

Result<void> SetPermissions(const std::filesystem::path& path, const std::optional<std::string>& group) {
  if (!group) {
    if (::chmod(path.c_str(), 0600) != 0) return ErrnoError(errno, "cannot chmod " + path.string());
    return {};
  }
  struct group* g = ::getgrnam(group->c_str());
  if (g == nullptr) {
    return ConfigError(fmt::format("socket-group '{}' is not a group on this system", *group));
  }
  if (::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0 || ::chmod(path.c_str(), 0660) != 0) {
    return ErrnoError(errno, fmt::format("cannot give {} to group {}", path.string(), *group));
  }
  return {};
}

}  // namespace

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<Fd> ListenUnix(const std::filesystem::path& path, const std::optional<std::string>& group) {
  auto addr = Address(path);
  if (!addr) return Fail(addr.error());
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Fail(ErrorDomain::kIo, EEXIST,
                  fmt::format("{} exists and is not a socket; choose another --socket", path.string()));
    }
    if (Connect(path)) {
      return Fail(ErrorDomain::kIo, EADDRINUSE,
                  fmt::format("{} is in use by another process; stop it or choose another --socket",
                              path.string()));
    }
    ::unlink(path.c_str());  // a stale socket nobody listens on
  }
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return ErrnoError(errno, "cannot create a socket");
  mode_t old = ::umask(0177);  // never visible with wider permissions, not even briefly
  int bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr);
  int bind_errno = errno;
  ::umask(old);
  if (bound != 0) return ErrnoError(bind_errno, fmt::format("cannot bind {}", path.string()));
  if (auto perms = SetPermissions(path, group); !perms) {
    ::unlink(path.c_str());
    return Fail(perms.error());
  }
  if (::listen(fd.get(), 64) != 0) return ErrnoError(errno, "cannot listen on " + path.string());
  return fd;
}

Result<std::string> ReadMessage(int fd, char delimiter, std::size_t max_bytes,
                                std::chrono::milliseconds timeout) {
  std::string data;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (data.find(delimiter) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    int ready = left.count() <= 0 ? 0 : ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      return Fail(ErrorDomain::kIo, ETIMEDOUT, fmt::format("no complete message within {} ms", timeout.count()));
    }
    char buffer[4096];
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "cannot read from the socket");
    if (n == 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
    if (data.size() > max_bytes) {
      return UsageError(fmt::format("message longer than {} bytes refused", max_bytes));
    }
  }
  if (auto at = data.find(delimiter); at != std::string::npos) data.resize(at);
  return data;
}

Result<void> WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "cannot write to the socket");
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<std::string> Exchange(const std::filesystem::path& path, std::string_view request,
                             std::chrono::milliseconds timeout) {
  auto fd = Connect(path);
  if (!fd) return Fail(fd.error().WithContext("cannot reach pkid (is it running?)"));
  if (auto sent = WriteAll(fd->get(), request); !sent) return Fail(sent.error());
  ::shutdown(fd->get(), SHUT_WR);
  return ReadMessage(fd->get(), '\0', 16 * 1024 * 1024, timeout);
}

}  // namespace idevid
