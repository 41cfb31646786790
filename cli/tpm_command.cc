#include "cli/tpm_command.h"

#include <stdlib.h>

#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/option_checks.h"
#include "cli/tpm_args.h"
#include "cli/tpm_state_file.h"
#include "core/tpm_capability.h"
#include "core/tpm_context.h"
#include "engine/exit_codes.h"
#include "engine/process.h"
#include "engine/swtpm_instance.h"
#include "engine/synthetic_boot.h"

namespace idevid::cli {
namespace {

struct StartArgs {
  std::string state;
  bool abrmd = false;
  bool manufacture = false;
  std::string boot_profile;
  bool json = false;
};

struct InfoArgs {
  TpmArgs tpm;
  bool json = false;
};

TpmStateRecord RecordOf(const SwtpmInstance& tpm) {
  TpmStateRecord r{tpm.tcti(),      tpm.swtpm_tcti(),         tpm.port(),
                   tpm.swtpm_pid(), tpm.state_dir().string(), std::nullopt};
  if (tpm.abrmd()) {
    r.abrmd = TpmStateRecord::Abrmd{tpm.abrmd()->abrmd_pid(), tpm.abrmd()->dbus_pid(),
                                    tpm.abrmd()->bus_address(), tpm.abrmd()->bus_name()};
  }
  return r;
}

bool StillRunning(const std::filesystem::path& dir) {
  auto record = ReadStateRecord(dir);
  if (!record) return false;
  auto line = ProcessCommandLine(record->swtpm_pid);  // a recycled pid is not our swtpm
  return line && line->find(record->state_dir) != std::string::npos;
}

// The chain a started TPM boots: --boot-profile's, else the default one for a manufactured TPM
// (a unit off the line boots), else none.
Result<std::optional<BootProfile>> BootOf(const StartArgs& args) {
  if (!args.boot_profile.empty()) {
    IDEVID_ASSIGN_OR_RETURN(BootProfile profile, LoadBootProfile(args.boot_profile));
    return std::optional<BootProfile>(std::move(profile));
  }
  if (args.manufacture) return std::optional<BootProfile>(DefaultBootProfile());
  return std::optional<BootProfile>();
}

int Start(const StartArgs& args) {
  if (StillRunning(args.state)) {
    return ReportError(Error(ErrorDomain::kUsage, static_cast<std::uint64_t>(UsageCode::kWrongState),
                             fmt::format("a TPM started with --state {} is still running; stop it "
                                         "with 'idevid tpm stop --state {}'",
                                         args.state, args.state)));
  }
  auto boot = BootOf(args);
  if (!boot) return ReportError(boot.error());
  auto tpm = SwtpmInstance::Start({.state_dir = args.state,
                                   .with_abrmd = args.abrmd,
                                   .detach = true,
                                   .manufacture = args.manufacture,
                                   .boot = *boot});
  if (!tpm) return ReportError(tpm.error());
  TpmStateRecord record = RecordOf(*tpm);
  if (auto written = WriteStateRecord(args.state, record); !written) {
    tpm->Stop();
    return ReportError(written.error());
  }
  tpm->Release();
  bool has_vendor_ca = std::filesystem::exists(tpm->vendor_ca());
  if (args.json) {
    nlohmann::json j = ToJson(record);
    if (has_vendor_ca) j["tpm_vendor_ca"] = tpm->vendor_ca().string();
    if (!tpm->event_log().empty()) {
      j["event_log"] = {{"path", tpm->event_log().string()}, {"pcrs", BootPcrSelection().ToString()}};
    }
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << record.tcti << "\n";
    if (has_vendor_ca)
      std::cerr << "TPM vendor CA (for --tpm-vendor-ca): " << tpm->vendor_ca().string() << "\n";
    if (!tpm->event_log().empty()) {
      std::cerr << "booted; event log of PCRs " << BootPcrSelection().ToString() << ": "
                << tpm->event_log().string() << "\n";
    }
    if (record.abrmd) {
      std::cerr << "clients need: export DBUS_SESSION_BUS_ADDRESS=" << record.abrmd->bus_address << "\n";
    }
  }
  return kExitPass;
}

int Stop(const std::string& state) {
  auto record = ReadStateRecord(state);
  if (!record) return ReportError(record.error());
  std::vector<Error> errors;
  if (record->abrmd) {
    if (auto r = StopProcessByPid(record->abrmd->abrmd_pid, record->abrmd->bus_name); !r) {
      errors.push_back(r.error());
    }
    if (auto r = StopProcessByPid(record->abrmd->dbus_pid, record->abrmd->bus_address); !r) {
      errors.push_back(r.error());
    }
  }
  if (auto r = StopProcessByPid(record->swtpm_pid, record->state_dir); !r) {
    errors.push_back(r.error());
  }
  for (const auto& e : errors) (void)ReportError(e);
  if (!errors.empty()) return kExitInfrastructure;
  std::filesystem::remove(StateFilePath(state));
  return kExitPass;
}

nlohmann::json InfoJson(const TpmInfo& info, const std::vector<TPM2_HANDLE>& persistent,
                        const std::vector<TPM2_HANDLE>& nv) {
  auto hex = [](const std::vector<TPM2_HANDLE>& handles) {
    std::vector<std::string> out;
    for (auto h : handles) out.push_back(fmt::format("{:#010x}", h));
    return out;
  };
  return {{"manufacturer", info.manufacturer},         {"vendor_string", info.vendor_string},
          {"firmware_version", info.firmware_version}, {"spec_revision", info.spec_revision},
          {"nv_buffer_max", info.nv_buffer_max},       {"nv_index_max", info.nv_index_max},
          {"transient_slots_min", info.transient_min}, {"transient_slots_free", info.transient_avail},
          {"persistent_handles", hex(persistent)},     {"nv_indices", hex(nv)}};
}

// What `idevid tpm info` shows of the TPM the options name.
Result<nlohmann::json> ReadInfo(const TpmArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, OpenTpm(args));
  IDEVID_ASSIGN_OR_RETURN(TpmInfo info, ReadTpmInfo(tpm), "reading the TPM's properties");
  IDEVID_ASSIGN_OR_RETURN(auto persistent, ListHandles(tpm, TPM2_HT_PERSISTENT),
                          "listing persistent handles");
  IDEVID_ASSIGN_OR_RETURN(auto nv, ListHandles(tpm, TPM2_HT_NV_INDEX), "listing NV indices");
  return InfoJson(info, persistent, nv);
}

int Info(const InfoArgs& args) {
  auto read = ReadInfo(args.tpm);
  if (!read) return ReportError(read.error());
  const nlohmann::json& j = *read;
  if (args.json) {
    std::cout << j.dump(2) << "\n";
    return kExitPass;
  }
  for (const auto& [key, value] : j.items()) {
    std::cout << fmt::format("{:<22} {}\n", key + ":",
                             value.is_string() ? value.get<std::string>() : value.dump());
  }
  return kExitPass;
}

}  // namespace

void AddTpmCommand(CLI::App& app, int* exit_code) {
  CLI::App* tpm = app.add_subcommand("tpm", "Start, stop and inspect TPMs");
  tpm->require_subcommand(1);

  auto start_args = std::make_shared<StartArgs>();
  CLI::App* start = tpm->add_subcommand(
      "start", "Start a private swtpm (and tpm2-abrmd) on free loopback ports; print its TCTI");
  start->add_option("--state", start_args->state, "State directory (created if missing)")->required();
  start->add_flag("--abrmd", start_args->abrmd, "Put tpm2-abrmd on a private D-Bus in front of it");
  start->add_flag(
      "--manufacture", start_args->manufacture,
      "On first start, give the TPM an EK and EK certificate (swtpm_setup); on every start, "
      "boot the unit (measure the default boot chain into PCRs 0-9, event log in STATE/boot-log.bin)");
  start
      ->add_option("--boot-profile", start_args->boot_profile,
                   "Boot the chain this YAML boot profile names (firmware, boot loader, kernel, initrd, "
                   "command line) instead of the default one")
      ->check(ExistingFileCheck());
  start->add_flag("--json", start_args->json, "Print the TCTI, ports and pids as JSON");
  start->callback([start_args, exit_code] { *exit_code = Start(*start_args); });

  auto stop_state = std::make_shared<std::string>();
  CLI::App* stop = tpm->add_subcommand("stop", "Stop what 'idevid tpm start' started, by pid");
  stop->add_option("--state", *stop_state, "State directory given to 'tpm start'")->required();
  stop->callback([stop_state, exit_code] { *exit_code = Stop(*stop_state); });

  auto info_args = std::make_shared<InfoArgs>();
  CLI::App* info = tpm->add_subcommand(
      "info", "Manufacturer, firmware, limits, persistent handles and NV indices of a TPM");
  AddTpmOptions(*info, info_args->tpm);
  info->add_flag("--json", info_args->json, "Print as JSON");
  info->callback([info_args, exit_code] { *exit_code = Info(*info_args); });
}

}  // namespace idevid::cli
