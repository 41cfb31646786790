#include "core/work_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <utility>

#include <fmt/format.h>

namespace idevid {

Result<WorkDir> WorkDir::Create(std::string_view prefix) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::filesystem::path parent = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
  std::string dir = (parent / fmt::format("{}-XXXXXX", prefix)).string();
  if (::mkdtemp(dir.data()) == nullptr) return ErrnoError(errno, "cannot create " + dir);
  return WorkDir(std::filesystem::path(dir));
}

WorkDir::WorkDir(WorkDir&& other) noexcept
    : path_(std::exchange(other.path_, {})), keep_(std::exchange(other.keep_, false)) {}

WorkDir& WorkDir::operator=(WorkDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, {});
    keep_ = std::exchange(other.keep_, false);
  }
  return *this;
}

WorkDir::~WorkDir() { Remove(); }

void WorkDir::Keep(std::string_view command) {
  keep_ = true;
  if (!command.empty()) {
    std::cerr << fmt::format("{}: the bench's files are kept in {}\n", command, path_.string());
  }
}

void WorkDir::Remove() {
  if (path_.empty() || keep_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);  // best effort: nothing to tell anyone at teardown
  path_.clear();
}

}  // namespace idevid
