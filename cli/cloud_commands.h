// `idevid ssli connect` (the device's SSL-I client) and `idevid cloud` (the cloud peer).
#pragma once

#include <CLI/CLI.hpp>

namespace idevid::cli {

void AddCloudCommands(CLI::App& app, int* exit_code);

}  // namespace idevid::cli
