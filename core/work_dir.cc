#include "core/work_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <iostream>
#include <string>

#include <fmt/format.h>

namespace idevid {

Result<std::filesystem::path> MakeWorkDir(std::string_view prefix) {
  std::string dir = (std::filesystem::temp_directory_path() / fmt::format("{}-XXXXXX", prefix)).string();
  if (::mkdtemp(dir.data()) == nullptr) return Fail(ErrorDomain::kIo, errno, "cannot create " + dir);
  return std::filesystem::path(dir);
}

void ReleaseWorkDir(const std::filesystem::path& dir, bool keep, std::string_view command) {
  if (keep) {
    std::cerr << fmt::format("{}: the bench's files are kept in {}\n", command, dir.string());
  } else {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
}

}  // namespace idevid
