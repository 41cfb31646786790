// A disposable unit that attests its boot: a TPM copied from a manufactured stock, enrolled
// against the bench's factory (IDevID and IAK, both certificates in NV), booted through the
// synthetic measured boot, and a device configuration whose TPM-mode SSL-I profile answers a
// cloud's attestation challenge with that TPM and its event log. Its TPM is a direct swtpm (no
// resource manager): the TCTI connects per command, so the SSL-I client, the prover and
// tpm2-tools take turns on it. Shared by the `attestation` suite, its tests and the bench.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"
#include "device/config/device_config.h"
#include "engine/swtpm_instance.h"

namespace idevid {

// A TPM as it leaves its vendor: the state manufactured once per `stock` directory (swtpm_setup
// takes a second), copied to `dir` and started there. Copies of one stock share its seeds (and so
// its EK and IAK); a second stock is a second TPM. `vendor`: as SwtpmOptions::vendor.
Result<SwtpmInstance> TpmFromStock(const std::filesystem::path& stock, const std::filesystem::path& dir,
                                   const std::filesystem::path& vendor = {});

struct AttestedUnitOptions {
  std::filesystem::path stock;        // the manufactured TPM to copy (made when missing)
  std::filesystem::path dir;          // the unit's own: TPM state, event log, device.conf
  std::filesystem::path factory_dir;  // the factory that enrols it (and whose CA the cloud trusts)
  std::string serial;
  std::string model = "SRX4300";
  std::string pcrs = "sha256:0,1,2,3,4,5,6,7,8,9";  // what the device agrees to quote
};

class AttestedUnit {
 public:
  // Copies the stock, enrols the unit, boots it with the known-good chain and writes its device
  // configuration. Errors name the step (the TPM's, the enrolment's refusal as kUsage/kWrongState).
  static Result<std::unique_ptr<AttestedUnit>> Create(const AttestedUnitOptions& options);

  const AttestedUnitOptions& options() const { return options_; }
  // The TCTI of its TPM (swtpm's own; one command at a time).
  std::string tcti() const { return swtpm_->swtpm_tcti(); }
  // The environment for tpm2-tools on its TPM.
  std::map<std::string, std::string> ToolEnvironment() const;
  const DeviceConfig& config() const { return config_; }
  // The TPM-mode SSL-I profile that attests.
  static constexpr const char* kProfile = "aamw-tpm";
  // The event log its last boot wrote (what the configuration names).
  std::filesystem::path event_log() const { return options_.dir / "binary_bios_measurements"; }
  // A boot profile whose kernel is not the known-good one (written on first use).
  Result<std::filesystem::path> OtherKernelProfile() const;

  // Power-cycles the unit: shuts its TPM down orderly (TPM2_Shutdown(CLEAR)), stops it, calls `while_off`
  // with the TPM's state directory (to copy or replace it), starts it again on the same port
  // (TPM2_Startup(CLEAR): a TPM reset, PCRs zero, resetCount one up) and boots it with `boot_profile` (empty:
  // the known-good chain).
  Result<void> Reboot(
      const std::filesystem::path& boot_profile = {},
      const std::function<Result<void>(const std::filesystem::path& tpm_state)>& while_off = {});

 private:
  AttestedUnit() = default;
  Result<void> Enrol();
  Result<void> Boot(const std::filesystem::path& boot_profile);
  Result<void> WriteConfig();

  AttestedUnitOptions options_;
  std::optional<SwtpmInstance> swtpm_;
  DeviceConfig config_;
};

}  // namespace idevid
