#include "harness/cli/tpm_args.h"

#include <stdlib.h>

#include <charconv>

#include <fmt/format.h>

#include "core/tpm_capability.h"
#include "harness/cli/tpm_state_file.h"

namespace idevid::cli {

void AddTpmOptions(CLI::App& command, TpmArgs& args) {
  auto* tcti = command.add_option(
      "--tcti", args.tcti,
      "TPM to use: swtpm:host=H,port=P | mssim:... | device:/dev/tpmrm0 | tabrmd:bus_type=...");
  auto* state = command.add_option("--state", args.state,
                                   "Use the TPM that 'idevid tpm start --state DIR' started");
  tcti->excludes(state);
  state->excludes(tcti);
}

Result<std::string> ResolveTcti(const TpmArgs& args) {
  if (!args.tcti.empty()) return args.tcti;
  if (args.state.empty()) return UsageError("name the TPM with --tcti TCTI or --state DIR");
  auto record = ReadStateRecord(args.state);
  if (!record) return Fail(record.error());
  if (record->abrmd) ::setenv("DBUS_SESSION_BUS_ADDRESS", record->abrmd->bus_address.c_str(), 1);
  return record->tcti;
}

Result<TpmContext> OpenTpm(const TpmArgs& args) {
  auto tcti = ResolveTcti(args);
  if (!tcti) return Fail(tcti.error());
  auto tpm = TpmContext::Open(*tcti, {.command_timeout = std::chrono::seconds(60)});
  if (!tpm) return Fail(tpm.error());
  if (auto started = EnsureStarted(*tpm); !started) return Fail(started.error());
  return tpm;
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
    return UsageError(fmt::format("{} '{}' is not a number (use hex like 0x81020000)", what, text));
  }
  return value;
}

}  // namespace idevid::cli
