// `idevid bench`: runs idevid-bench, the performance suite built beside idevid, with the
// arguments given (its own --help lists them).
#pragma once

#include <CLI/CLI.hpp>

namespace idevid::cli {

void AddBenchCommand(CLI::App& app, int* exit_code);

}  // namespace idevid::cli
