// A private directory (TPM state, CA files, logs) that removes itself unless it is kept: the one
// place that creates temporary directories, for the programs and for the tests.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/result.h"

namespace idevid {

// Owns a directory it created; removes it and everything in it when destroyed, unless kept.
class WorkDir {
 public:
  // Creates TMPDIR/<prefix>-XXXXXX (mode 0700). Fails with kIo naming the directory.
  static Result<WorkDir> Create(std::string_view prefix);

  WorkDir(WorkDir&& other) noexcept;
  WorkDir& operator=(WorkDir&& other) noexcept;
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  ~WorkDir();

  const std::filesystem::path& path() const { return path_; }
  // Leaves the directory in place when this object ends; with `command` ("idevid run") also
  // says on stderr where it is left.
  void Keep(std::string_view command = {});

 private:
  explicit WorkDir(std::filesystem::path path) : path_(std::move(path)) {}
  void Remove();

  std::filesystem::path path_;
  bool keep_ = false;
};

}  // namespace idevid
