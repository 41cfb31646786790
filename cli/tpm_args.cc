#include "cli/tpm_args.h"

#include <stdlib.h>

#include <charconv>

#include <fmt/format.h>

#include "cli/option_checks.h"
#include "cli/tpm_state_file.h"
#include "core/display_text.h"
#include "core/file_io.h"
#include "core/tpm_capability.h"

namespace idevid::cli {

void AddTpmOptions(CLI::App& command, TpmArgs& args) {
  auto* tcti = command.add_option(
      "--tcti", args.tcti,
      "TPM to use: swtpm:host=H,port=P | mssim:... | device:/dev/tpmrm0 | tabrmd:bus_type=...");
  auto* state =
      command.add_option("--state", args.state, "Use the TPM that 'idevid tpm start --state DIR' started");
  tcti->excludes(state);
  state->excludes(tcti);
  AddHierarchyAuthOptions(command, args);
}

void AddHierarchyAuthOptions(CLI::App& command, TpmArgs& args) {
  command
      .add_option("--owner-auth-file", args.owner_auth_file,
                  "File holding the owner hierarchy's authorization value (or IDEVID_OWNER_AUTH)")
      ->check(ExistingFileCheck());
  command
      .add_option("--endorsement-auth-file", args.endorsement_auth_file,
                  "File holding the endorsement hierarchy's authorization value (or IDEVID_ENDORSEMENT_AUTH)")
      ->check(ExistingFileCheck());
}

Result<void> LoadHierarchyAuth(const TpmArgs& args) {
  for (const auto& [file, variable] : {std::pair{&args.owner_auth_file, "IDEVID_OWNER_AUTH"},
                                       std::pair{&args.endorsement_auth_file, "IDEVID_ENDORSEMENT_AUTH"}}) {
    if (file->empty()) continue;
    IDEVID_ASSIGN_OR_RETURN(std::string text, ReadFileText(*file), "reading a hierarchy authorization file");
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (text.find('\0') != std::string::npos) {
      return UsageError(
          UsageCode::kInvalidArgument,
          fmt::format("{} holds a NUL byte: give the authorization value as text", QuotedDisplayText(*file)));
    }
    ::setenv(variable, text.c_str(), 1);  // this process only: children do not inherit it
  }
  return {};
}

Result<std::string> ResolveTcti(const TpmArgs& args) {
  IDEVID_TRY(LoadHierarchyAuth(args));
  if (!args.tcti.empty()) return args.tcti;
  if (args.state.empty()) {
    return UsageError(UsageCode::kMissingArgument, "name the TPM with --tcti TCTI or --state DIR");
  }
  IDEVID_ASSIGN_OR_RETURN(TpmStateRecord record, ReadStateRecord(args.state));
  if (record.abrmd) ::setenv("DBUS_SESSION_BUS_ADDRESS", record.abrmd->bus_address.c_str(), 1);
  return record.tcti;
}

Result<TpmContext> OpenTpm(const TpmArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(std::string tcti, ResolveTcti(args));
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm,
                          TpmContext::Open(tcti, {.command_timeout = std::chrono::seconds(60)}));
  IDEVID_TRY(EnsureStarted(tpm), "starting the TPM at {}", QuotedDisplayText(tcti));
  return tpm;
}

std::string TargetTcti(const std::string& target) {
  return target == "swtpm" ? "" : target == "abrmd" ? "tabrmd" : target;
}

Result<std::uint32_t> ParseHandle(const std::string& what, const std::string& text) {
  std::string_view digits = text;
  int base = 10;
  if (digits.starts_with("0x") || digits.starts_with("0X")) {
    digits.remove_prefix(2);
    base = 16;
  }
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return UsageError(
        UsageCode::kInvalidArgument,
        fmt::format("{} '{}' is not a number (use hex like 0x81020000)", what, DisplayText(text)));
  }
  return value;
}

}  // namespace idevid::cli
