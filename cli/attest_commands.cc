#include "cli/attest_commands.h"

#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "cloud/attest_policy.h"
#include "core/display_text.h"
#include "core/event_log.h"
#include "core/file_io.h"
#include "engine/exit_codes.h"

namespace idevid::cli {
namespace {

// The PCRs the log measures into (EV_NO_ACTION events measure nothing).
Result<PcrSelection> MeasuredPcrs(const EventLog& log) {
  std::set<std::uint32_t> pcrs;
  for (const LogEvent& event : log.events) {
    if (event.type != kEvNoAction) pcrs.insert(event.pcr);
  }
  if (pcrs.empty()) return ConfigError(ConfigCode::kMissing, "the event log measures nothing into any PCR");
  return PcrSelection{TPM2_ALG_SHA256, std::vector<std::uint32_t>(pcrs.begin(), pcrs.end())};
}

// The log of --from-log; every failure here is the log's, not the command line's.
Result<EventLog> ReadLog(const std::string& path) {
  IDEVID_ASSIGN_OR_RETURN(Bytes bytes, ReadFileBytes(path), "--from-log");
  IDEVID_ASSIGN_OR_RETURN(EventLog log, ParseEventLog(bytes), "--from-log {}", QuotedDisplayText(path));
  return log;
}

}  // namespace

int WriteAttestPolicy(const AttestPolicyArgs& args) {
  std::optional<PcrSelection> pcrs;
  if (!args.pcrs.empty()) {
    auto parsed = ParsePcrSelection(args.pcrs);
    if (!parsed) return ReportError(parsed.error().WithContext("--pcrs"));
    pcrs = *std::move(parsed);
  }
  std::string name = args.name.empty() ? std::filesystem::path(args.out).stem().string() : args.name;
  if (name.empty()) {
    return ReportError(Error(ErrorDomain::kUsage, static_cast<std::uint64_t>(UsageCode::kMissingArgument),
                             "--name: the policy needs a name"));
  }
  auto log = ReadLog(args.from_log);
  if (!log) {
    // An unreadable or malformed log is the unit's or the machine's problem, not a usage error.
    ReportError(log.error());
    return kExitInfrastructure;
  }
  if (!pcrs) {
    auto measured = MeasuredPcrs(*log);
    if (!measured) {
      ReportError(
          measured.error().WithContext(fmt::format("--from-log {}", QuotedDisplayText(args.from_log))));
      return kExitInfrastructure;
    }
    pcrs = *std::move(measured);
  }
  AttestPolicy policy = PolicyFromLog(*log, name, *pcrs);
  if (auto written = WriteFileAtomic(args.out, AttestPolicyYaml(policy)); !written) {
    return ReportError(written.error());
  }
  std::size_t digests = 0;
  for (const auto& [key, allowed] : policy.allowed) digests += allowed.size();
  std::cout << fmt::format("wrote policy {} to {}: {}, {} (PCR, event type) entries, {} digests\n",
                           QuotedDisplayText(policy.name), QuotedDisplayText(args.out),
                           policy.pcrs.ToString(), policy.allowed.size(), digests);
  return kExitPass;
}

void AddAttestCommands(CLI::App& app, int* exit_code) {
  CLI::App* attest = app.add_subcommand("attest", "Remote attestation of measured boot: policies");
  attest->require_subcommand(1);
  auto args = std::make_shared<AttestPolicyArgs>();
  CLI::App* policy = attest->add_subcommand("policy",
                                            "Write the measured-boot policy of a known-good unit from its "
                                            "event log: the allowed SHA-256 digests per "
                                            "PCR and event type (YAML, for idevid cloud --attest-policy)");
  policy->add_option("--from-log", args->from_log, "The unit's TCG event log (binary_bios_measurements)")
      ->required();
  policy->add_option("--out", args->out, "The policy file to write (replaced atomically)")->required();
  policy->add_option("--name", args->name,
                     "The policy's name (default: the output file's name without .yaml)");
  policy->add_option(
      "--pcrs", args->pcrs,
      "The PCRs the cloud asks to be quoted, e.g. sha256:0,1,2,3,4,5,6,7 (default: every PCR the "
      "log measures)");
  policy->callback([args, exit_code] { *exit_code = WriteAttestPolicy(*args); });
}

}  // namespace idevid::cli
