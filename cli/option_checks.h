// CLI11 checks shared by the idevid commands' options.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include <CLI/CLI.hpp>

#include "core/result.h"

namespace idevid::cli {

// Passes when the option names an existing file that is not a directory. Otherwise CLI11 fails
// the parse (exit 4) with "--option: no such file "PATH"", the path escaped (DisplayText).
CLI::Validator ExistingFileCheck();

// "HOST:PORT" split at its last colon. Fails with kUsage naming the text (escaped) when it is
// not that or the port is not 0-65535.
Result<std::pair<std::string, std::uint16_t>> SplitHostPort(const std::string& text);

}  // namespace idevid::cli
