// Unix stream sockets for pkid and its clients: listening with permissions, one-shot
// request/answer exchanges with deadlines.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "core/result.h"

namespace idevid {

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// Listens on `path` with mode 0600, or 0660 owned by `group`. A stale socket file nobody
// listens on is replaced; one in use is an error (kIo, EADDRINUSE).
Result<Fd> ListenUnix(const std::filesystem::path& path, const std::optional<std::string>& group);

// Reads until `delimiter` or EOF, at most `max_bytes` (kUsage past that), within `timeout`.
Result<std::string> ReadMessage(int fd, char delimiter, std::size_t max_bytes,
                                std::chrono::milliseconds timeout);

// Writes all of `data` (kIo on failure).
Result<void> WriteAll(int fd, std::string_view data);

// Connects to `path`, sends `request`, half-closes, and reads the whole answer.
Result<std::string> Exchange(const std::filesystem::path& path, std::string_view request,
                             std::chrono::milliseconds timeout);

}  // namespace idevid
