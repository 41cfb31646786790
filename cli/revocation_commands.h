// `idevid factory revoke` and `idevid factory crl`: a unit revoked in the factory's ledger, and the
// factory's CRL of every revoked unit.
#pragma once

#include <CLI/CLI.hpp>

namespace idevid::cli {

// Adds the commands under `app`'s "factory" command (which AddFactoryCommands adds first); the
// chosen command's exit code goes to `*exit_code`.
void AddRevocationCommands(CLI::App& app, int* exit_code);

}  // namespace idevid::cli
