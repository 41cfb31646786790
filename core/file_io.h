// Whole-file reads and atomic writes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace idevid {

// Reads a whole file. Fails with kIo naming the path.
Result<std::vector<std::uint8_t>> ReadFileBytes(const std::filesystem::path& path);
Result<std::string> ReadFileText(const std::filesystem::path& path);

// Writes `content` to a temporary file beside `path`, fsyncs it, sets `mode` and renames it over
// `path`: readers see the old or the new file, never a part. Fails with kIo naming the path.
Result<void> WriteFileAtomic(const std::filesystem::path& path, std::span<const std::uint8_t> content,
                             unsigned mode = 0644);
Result<void> WriteFileAtomic(const std::filesystem::path& path, std::string_view content,
                             unsigned mode = 0644);

}  // namespace idevid
