// `idevid factory init`, `idevid factory issue`, `idevid provision` and `idevid check`: the factory
// and the line station.
#pragma once

#include <CLI/CLI.hpp>

namespace idevid::cli {

// Adds the commands to `app`; the chosen command's exit code goes to `*exit_code`.
void AddFactoryCommands(CLI::App& app, int* exit_code);

}  // namespace idevid::cli
