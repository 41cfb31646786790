// `idevid attest policy`: the measured-boot policy (cloud/attest_policy.h) of a known-good unit,
// written from its event log, for a cloud started with --attest-policy.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace idevid::cli {

struct AttestPolicyArgs {
  std::string from_log;  // the unit's TCG event log (binary_bios_measurements)
  std::string out;       // the policy file to write
  std::string name;      // the policy's name; the output file's stem when empty
  std::string pcrs;      // "sha256:0,..."; every PCR the log measures when empty
};

// Writes the policy; returns the exit code (0 written, 2 an unreadable or malformed log or an
// output that cannot be written, 4 a usage error).
int WriteAttestPolicy(const AttestPolicyArgs& args);

// Adds `idevid attest` and its subcommands to `app`.
void AddAttestCommands(CLI::App& app, int* exit_code);

}  // namespace idevid::cli
