#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "core/unique_fd.h"

namespace idevid {
namespace {

Result<void> WriteAll(int fd, const std::uint8_t* data, std::size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, fmt::format("cannot write {}", path));
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return {};
}

}  // namespace

Result<std::vector<std::uint8_t>> ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError(errno, fmt::format("cannot open {}", path.string()));
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return ErrnoError(errno, fmt::format("cannot read {}", path.string()));
  return bytes;
}

Result<std::string> ReadFileText(const std::filesystem::path& path) {
  IDEVID_ASSIGN_OR_RETURN(auto bytes, ReadFileBytes(path));
  return std::string(bytes.begin(), bytes.end());
}

Result<void> WriteFileAtomic(const std::filesystem::path& path, std::span<const std::uint8_t> content,
                             unsigned mode) {
  std::string target = path.string();
  std::string temp = fmt::format("{}.tmp.{}", target, ::getpid());
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return ErrnoError(errno, fmt::format("cannot create {}", temp));
  auto written = WriteAll(fd.get(), content.data(), content.size(), temp);
  if (written && ::fchmod(fd.get(), mode) != 0) written = ErrnoError(errno, "cannot set mode of " + temp);
  if (written && ::fsync(fd.get()) != 0) written = ErrnoError(errno, "cannot flush " + temp);
  fd.reset();
  if (written && ::rename(temp.c_str(), target.c_str()) != 0) {
    written = ErrnoError(errno, fmt::format("cannot rename {} to {}", temp, target));
  }
  if (!written) ::unlink(temp.c_str());
  return written;
}

Result<void> WriteFileAtomic(const std::filesystem::path& path, std::string_view content, unsigned mode) {
  return WriteFileAtomic(
      path, std::span(reinterpret_cast<const std::uint8_t*>(content.data()), content.size()), mode);
}

}  // namespace idevid
