// `idevid run`: the harness. Provisions the embedded swtpm, runs the scenario suites and writes
// the JUnit XML, JSON run record and HTML report.
#pragma once

#include <CLI/CLI.hpp>

namespace idevid::cli {

void AddRunCommand(CLI::App& app, int* exit_code);

}  // namespace idevid::cli
