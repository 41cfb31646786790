// `idevid ledger show|export`: the record of every unit the factory's stations provisioned.
#pragma once

#include <CLI/CLI.hpp>

namespace idevid::cli {

// Adds `idevid ledger` (show, export) to `app`; the chosen command's exit code goes to
// `exit_code` (0, 1 when --serial names no unit, 2 when the ledger fails, 4 usage).
void AddLedgerCommands(CLI::App& app, int* exit_code);

}  // namespace idevid::cli
