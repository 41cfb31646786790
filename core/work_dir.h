// The private directory a harness command works in (TPM state, CA files, logs): created under
// TMPDIR, and removed when the command is done unless the user keeps it for inspection.
#pragma once

#include <filesystem>
#include <string_view>

#include "core/result.h"

namespace idevid {

// Creates TMPDIR/<prefix>-XXXXXX. Fails with kIo naming the directory.
Result<std::filesystem::path> MakeWorkDir(std::string_view prefix);

// Removes `dir`, or with `keep` says on stderr where `command` ("idevid run") left it.
void ReleaseWorkDir(const std::filesystem::path& dir, bool keep, std::string_view command);

}  // namespace idevid
