// `idevid tpm start|stop|info`: a private swtpm (and tpm2-abrmd) for a shell or a CI job, and
// what a TPM says about itself.
#pragma once

#include <CLI/CLI.hpp>

namespace idevid::cli {

// Adds the `tpm` subcommand tree to `app`; the chosen command's exit code is stored in
// `*exit_code` when it runs.
void AddTpmCommand(CLI::App& app, int* exit_code);

}  // namespace idevid::cli
