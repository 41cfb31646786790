// `idevid pkid` (the device PKI daemon) and `idevid cli` (its operational commands).
#pragma once

#include <CLI/CLI.hpp>

namespace idevid::cli {

void AddDeviceCommands(CLI::App& app, int* exit_code);

}  // namespace idevid::cli
