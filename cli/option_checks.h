// CLI11 checks shared by the idevid commands' options.
#pragma once

#include <CLI/CLI.hpp>

namespace idevid::cli {

// Passes when the option names an existing file that is not a directory. Otherwise CLI11 fails
// the parse (exit 4) with "--option: no such file "PATH"", the path escaped (DisplayText).
CLI::Validator ExistingFileCheck();

}  // namespace idevid::cli
