// The bench of `idevid run`: by default a private swtpm with an EK certificate behind its own
// tpm2-abrmd; or a TPM named by a TCTI (a lab board, a unit on the line). A factory and one
// provisioned unit (or, with provision off, the identity already burnt in and its factory CA),
// the device configuration (file certificate, CA profiles, SSL-I profiles) and the cloud peer.
// Everything it starts stops with it; it never clears a TPM or replaces an identity on one.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "cloud/cloud_server.h"
#include "core/result.h"
#include "core/tpm_capability.h"
#include "device/config/device_config.h"
#include "engine/limits.h"
#include "engine/process.h"
#include "engine/swtpm_instance.h"
#include "provisioning/factory.h"

namespace idevid {

struct UnitOptions {
  std::filesystem::path work_dir;  // created; holds TPM state, CA files, logs
  std::string serial = "CW0000000001";
  std::string model = "SRX4300";
  std::string tcti;                  // empty: the embedded swtpm
  bool provision = true;             // false: test the identity already in the TPM
  std::filesystem::path factory_ca;  // its factory's factory-ca.pem (needed without provision)
  std::filesystem::path factory;     // the factory to provision with; empty: a new one here
  PerformanceLimits limits;          // bounds of the performance suite's measurements
  std::string inject;                // faults for every TPM connection (see fault_spec.h); empty: none
  BootProfile boot_profile = DefaultBootProfile();  // the chain the embedded swtpm boots
  int soak_seconds = 30;                            // length of the soak suite
  // The units the bench's cloud accepts (serial,model CSV); none: every unit whose identity
  // verifies. A unit it does not list is refused (a FAIL of the scenarios that need the cloud).
  std::optional<std::filesystem::path> cloud_inventory;
  // Told the unit's serial and model as soon as they are known (provisioned, or read from the
  // identity in the TPM), also when a later step of Prepare fails.
  std::function<void(const std::string& serial, const std::string& model)> on_identified;
};

class TestedUnit {
 public:
  // Starts and provisions everything. Errors name the step: kUsage/kConfig for what the user
  // must fix (a target that keeps its identity, a missing factory CA), else infrastructure.
  static Result<std::unique_ptr<TestedUnit>> Prepare(const UnitOptions& options);
  ~TestedUnit();

  const UnitOptions& options() const { return options_; }
  const std::filesystem::path& dir() const { return options_.work_dir; }
  // The TCTI of the unit's TPM, through the fault TCTI when faults are injected.
  std::string tcti() const;
  // The TCTI of the unit's TPM itself.
  std::string base_tcti() const { return swtpm_ ? swtpm_->tcti() : options_.tcti; }
  const DeviceConfig& config() const { return config_; }
  std::filesystem::path config_path() const { return dir() / "device.conf"; }
  // The CA whose key the bench holds (the factory it provisioned with, or a bench CA): it issues
  // the cloud's and the file certificates and provisions the disposable units.
  const Factory& issuer() const { return *issuer_; }
  // The chain the unit's idev-id certificate must reach.
  const std::filesystem::path& factory_ca() const { return factory_ca_; }
  CloudServer& cloud() { return *cloud_; }
  // Stops the bench's cloud peer: from now on sessions to it find nobody listening (a bench
  // whose cloud went away). The scenarios that need it end in ERROR, not FAIL.
  void StopCloud() { cloud_->Stop(); }
  const TpmInfo& tpm_info() const { return tpm_info_; }
  // Identity facts for the run record: fingerprint, subject, issuer, EK certificate fingerprint.
  const std::map<std::string, std::string>& identity() const { return identity_; }

  // The event log of the embedded unit's boot (DIR/tpm/boot-log.bin, of the PCRs
  // BootPcrSelection() in engine/synthetic_boot.h); empty on a --target.
  std::filesystem::path event_log() const { return swtpm_ ? swtpm_->event_log() : std::filesystem::path(); }
  // Boots the embedded unit again with options().boot_profile and rewrites its event log: after
  // a TPM reset (PCRs back to zero) so that its PCRs match its log again. Fails with
  // kUsage/kUnsupported on a --target (a device boots itself), else the TPM's or the file's error.
  Result<EventLog> BootAgain();

  // The processes of the embedded bench by name ("swtpm", "tpm2-abrmd"); empty on a --target.
  std::map<std::string, pid_t> processes() const;

  // Starts `idevid pkid` on `tcti` with this unit's configuration and waits (with a deadline)
  // until its socket answers.
  Result<ChildProcess> StartPkid(const std::string& tcti, const std::filesystem::path& socket) const;

 private:
  TestedUnit() = default;
  Result<void> ProvisionTheUnit();
  Result<void> ReadTheUnit();
  Result<void> WriteDeviceFiles();

  UnitOptions options_;
  std::optional<SwtpmInstance> swtpm_;
  std::optional<Factory> issuer_;
  std::filesystem::path factory_ca_;
  std::unique_ptr<CloudServer> cloud_;
  DeviceConfig config_;
  TpmInfo tpm_info_;
  std::map<std::string, std::string> identity_;
};

// The idevid binary, for the processes the harness starts: this process's own, or the one beside
// it when this process is another of the project's programs (idevid-bench).
std::string IdevidExecutable();

// The fault-injecting TCTI module, built beside the idevid binary.
std::string FaultTctiLibrary();

}  // namespace idevid
