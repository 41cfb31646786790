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

using Clock = std::chrono::steady_clock;

Result<sockaddr_un> Address(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof addr.sun_path) {
    return UsageError(UsageCode::kInvalidArgument, fmt::format("socket path {} is longer than {} bytes",
                                                               path.string(), sizeof addr.sun_path - 1));
  }
  std::strcpy(addr.sun_path, path.c_str());
  return addr;
}

Result<UniqueFd> Connect(const std::filesystem::path& path) {
  IDEVID_ASSIGN_OR_RETURN(sockaddr_un addr, Address(path));
  IDEVID_ASSIGN_OR_RETURN(UniqueFd fd, OpenSocket(AF_UNIX, SOCK_STREAM));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
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
    return ConfigError(ConfigCode::kReference,
                       fmt::format("socket-group '{}' is not a group on this system", *group));
  }
  if (::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0 || ::chmod(path.c_str(), 0660) != 0) {
    return ErrnoError(errno, fmt::format("cannot give {} to group {}", path.string(), *group));
  }
  return {};
}

// Waits until `fd` is ready for `events`, the deadline passes (kIo ETIMEDOUT, `late` says what
// was late) or `stop_fd` becomes readable (kIo ECANCELED).
Result<void> WaitFor(int fd, short events, Clock::time_point deadline, int stop_fd, const std::string& late) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Fail(ErrorDomain::kIo, ETIMEDOUT, late);
    pollfd p[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    int ready = ::poll(p, stop_fd < 0 ? 1 : 2, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return ErrnoError(errno, "cannot wait for the socket");
    // An answer that can go still goes; a client that has not finished asking is not waited for.
    if (events == POLLOUT && p[0].revents != 0) return {};
    if (stop_fd >= 0 && p[1].revents != 0) return Fail(ErrorDomain::kIo, ECANCELED, "pkid is stopping");
    if (p[0].revents != 0) return {};
  }
}

}  // namespace

Result<UniqueFd> ListenUnix(const std::filesystem::path& path, const std::optional<std::string>& group) {
  IDEVID_ASSIGN_OR_RETURN(sockaddr_un addr, Address(path));
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Fail(ErrorDomain::kIo, EEXIST,
                  fmt::format("{} exists and is not a socket; choose another --socket", path.string()));
    }
    if (Connect(path)) {
      return Fail(
          ErrorDomain::kIo, EADDRINUSE,
          fmt::format("{} is in use by another process; stop it or choose another --socket", path.string()));
    }
    ::unlink(path.c_str());  // a stale socket nobody listens on
  }
  IDEVID_ASSIGN_OR_RETURN(UniqueFd fd, OpenSocket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK));
  mode_t old = ::umask(0177);  // never visible with wider permissions, not even briefly
  int bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int bind_errno = errno;
  ::umask(old);
  if (bound != 0) return ErrnoError(bind_errno, fmt::format("cannot bind {}", path.string()));
  if (auto perms = SetPermissions(path, group); !perms) {
    ::unlink(path.c_str());
    return Fail(std::move(perms).error());
  }
  if (::listen(fd.get(), 64) != 0) return ErrnoError(errno, "cannot listen on " + path.string());
  return fd;
}

Result<std::string> ReadMessage(int fd, char delimiter, std::size_t max_bytes,
                                std::chrono::milliseconds timeout, int stop_fd) {
  std::string data;
  auto deadline = Clock::now() + timeout;
  std::string late = fmt::format("no complete message within {} ms", timeout.count());
  while (data.find(delimiter) == std::string::npos) {
    IDEVID_TRY(WaitFor(fd, POLLIN, deadline, stop_fd, late));
    char buffer[4096];
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "cannot read from the socket");
    if (n == 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
    if (data.size() > max_bytes) {
      return PeerError(PeerCode::kTooLarge, fmt::format("message longer than {} bytes refused", max_bytes));
    }
  }
  if (auto at = data.find(delimiter); at != std::string::npos) data.resize(at);
  return data;
}

Result<void> WriteAll(int fd, std::string_view data, std::chrono::milliseconds timeout, int stop_fd) {
  auto deadline = Clock::now() + timeout;
  std::string late = fmt::format("the answer was not taken within {} ms", timeout.count());
  while (!data.empty()) {
    IDEVID_TRY(WaitFor(fd, POLLOUT, deadline, stop_fd, late));
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n < 0) return ErrnoError(errno, "cannot write to the socket");
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<std::string> Exchange(const std::filesystem::path& path, std::string_view request,
                             std::chrono::milliseconds timeout) {
  IDEVID_ASSIGN_OR_RETURN(UniqueFd fd, Connect(path), "cannot reach pkid (is it running?)");
  IDEVID_TRY(WriteAll(fd.get(), request, timeout), "cannot send the command to pkid");
  ::shutdown(fd.get(), SHUT_WR);
  return ReadMessage(fd.get(), '\0', 16 * 1024 * 1024, timeout);
}

}  // namespace idevid
