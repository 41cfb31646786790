// The options every command that talks to a TPM shares: --tcti, or --state of `idevid tpm start`.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "core/result.h"
#include "core/tpm_context.h"

namespace idevid::cli {

struct TpmArgs {
  std::string tcti;
  std::string state;
  std::string owner_auth_file;
  std::string endorsement_auth_file;
};

// Adds --tcti and --state (mutually exclusive, one required) and the hierarchy-auth files to
// `command`.
void AddTpmOptions(CLI::App& command, TpmArgs& args);

// Adds --owner-auth-file and --endorsement-auth-file to `command`.
void AddHierarchyAuthOptions(CLI::App& command, TpmArgs& args);

// Reads the hierarchy-auth files named (text; a trailing newline is dropped) into this process's
// environment, where every TPM connection of it finds them (child processes do not inherit them);
// kIo when a file cannot be read, kUsage when it holds a NUL byte.
Result<void> LoadHierarchyAuth(const TpmArgs& args);

// The TCTI string named by the options; for --state, the recorded one, whose tpm2-abrmd bus
// this process then joins (DBUS_SESSION_BUS_ADDRESS).
Result<std::string> ResolveTcti(const TpmArgs& args);

// Opens the TPM and makes sure it has been started. Errors name the TCTI.
Result<TpmContext> OpenTpm(const TpmArgs& args);

// The TCTI of a harness --target: "swtpm" (the embedded default) is empty, "abrmd" the system's
// tpm2-abrmd ("tabrmd"); anything else is a TCTI string.
std::string TargetTcti(const std::string& target);

// Parses a handle or NV index given as hex ("0x81020000") or decimal; kUsage otherwise.
Result<std::uint32_t> ParseHandle(const std::string& what, const std::string& text);

}  // namespace idevid::cli
