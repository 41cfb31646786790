// Unix stream sockets for pkid and its clients: listening with permissions, one-shot
// request/answer exchanges with deadlines.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "core/result.h"
#include "core/unique_fd.h"

namespace idevid {

// Listens on `path` with mode 0600, or 0660 owned by `group`; the listener is non-blocking (a
// client another thread accepted first is EAGAIN, not a wait). A stale socket file nobody
// listens on is replaced; one in use is an error (kIo, EADDRINUSE); an unknown group is
// kConfig kReference.
Result<UniqueFd> ListenUnix(const std::filesystem::path& path, const std::optional<std::string>& group);

// Reads until `delimiter` or EOF, at most `max_bytes` (kPeer kTooLarge past that), within
// `timeout` (kIo ETIMEDOUT). Ends early with kIo ECANCELED when `stop_fd` (if not -1) becomes
// readable.
Result<std::string> ReadMessage(int fd, char delimiter, std::size_t max_bytes,
                                std::chrono::milliseconds timeout, int stop_fd = -1);

// Writes all of `data` within `timeout` (kIo ETIMEDOUT; kIo with errno on failure). Ends early
// with kIo ECANCELED when `stop_fd` (if not -1) becomes readable.
Result<void> WriteAll(int fd, std::string_view data, std::chrono::milliseconds timeout, int stop_fd = -1);

// Connects to `path`, sends `request`, half-closes, and reads the whole answer, each within
// `timeout`.
Result<std::string> Exchange(const std::filesystem::path& path, std::string_view request,
                             std::chrono::milliseconds timeout);

}  // namespace idevid
