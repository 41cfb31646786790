// A swtpm simulator in socket mode on free loopback ports with its own state directory,
// optionally with tpm2-abrmd in front of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "core/event_log.h"
#include "core/result.h"
#include "engine/abrmd_instance.h"
#include "engine/boot_profile.h"
#include "engine/process.h"

namespace idevid {

struct SwtpmOptions {
  std::filesystem::path state_dir;  // created if missing; TPM state in tpm/, logs beside it
  bool with_abrmd = false;          // put a private tpm2-abrmd in front
  bool detach = false;              // processes outlive this object (`idevid tpm start`)
  // false: the TPM waits for TPM2_Startup as after a power-on (swtpm without startup-clear).
  bool startup_clear = true;
  // true: before the first start, swtpm_setup gives the TPM an EK and an EK certificate from a
  // local CA kept in the state directory, as a TPM vendor would.
  bool manufacture = false;
  // With manufacture: the state directory of another manufactured TPM whose local CA signs this
  // one's EK certificate too (two TPMs of one vendor). Empty: a CA of its own.
  std::filesystem::path vendor;
  std::chrono::milliseconds start_timeout{15000};
  // Command port (control = port + 1); 0 picks a free pair. A fixed port lets a TPM come back
  // at the address its clients already know.
  std::uint16_t port = 0;
  // When set (startup_clear only): once the TPM answers, the unit boots this chain (its PCRs 0-9
  // measured, engine/synthetic_boot.h) and its event log is written to BootLogOf(state_dir).
  std::optional<BootProfile> boot;
};

// A running swtpm (and its resource manager): move-only; everything it started is stopped by
// pid when it is destroyed, unless released.
class SwtpmInstance {
 public:
  // Starts swtpm with startup-clear on a free port pair (retrying when another process takes
  // the ports first) and waits until it answers a TPM command. Fails with kProcess naming the
  // program that failed and showing its log.
  static Result<SwtpmInstance> Start(const SwtpmOptions& options);

  // The TCTI clients use: tpm2-abrmd's when it runs, else swtpm's own.
  std::string tcti() const;
  // swtpm:host=127.0.0.1,port=P (one client at a time).
  std::string swtpm_tcti() const;
  std::uint16_t port() const { return port_; }
  pid_t swtpm_pid() const { return swtpm_.pid(); }
  const std::filesystem::path& state_dir() const { return state_dir_; }
  // The TPM vendor's CA bundle (issuing CA, then root) that signed a manufactured TPM's EK
  // certificate: what an enrolment authority takes as --tpm-vendor-ca.
  std::filesystem::path vendor_ca() const { return VendorCaOf(state_dir_); }
  static std::filesystem::path VendorCaOf(const std::filesystem::path& state_dir) {
    return state_dir / "tpm-vendor-ca.pem";
  }
  // The event log of the unit's last boot (Start with options.boot, or Boot); empty when it has
  // not booted.
  const std::filesystem::path& event_log() const { return event_log_; }
  // Where a booted swtpm's event log is: STATE/boot-log.bin.
  static std::filesystem::path BootLogOf(const std::filesystem::path& state_dir) {
    return state_dir / "boot-log.bin";
  }
  // Boots the unit (engine/synthetic_boot.h) through tcti() and writes its log to
  // BootLogOf(state_dir()): what a swtpm needs again after a TPM reset (a power cycle that resets
  // its PCRs), for its PCRs to match the log. Fails with the TPM's or the file's error.
  Result<EventLog> Boot(const BootProfile& profile);
  const std::optional<AbrmdInstance>& abrmd() const { return abrmd_; }
  std::optional<AbrmdInstance>& abrmd() { return abrmd_; }
  // Environment for client processes such as tpm2-tools: TPM2TOOLS_TCTI and the bus address.
  std::map<std::string, std::string> ClientEnvironment() const;

  // Stops tpm2-abrmd (if any), then swtpm.
  void Stop();
  // Leaves everything running.
  void Release();

 private:
  SwtpmInstance() = default;
  std::filesystem::path state_dir_;
  std::uint16_t port_ = 0;
  std::filesystem::path event_log_;
  ChildProcess swtpm_;
  std::optional<AbrmdInstance> abrmd_;  // declared after swtpm_: destroyed first
};

}  // namespace idevid
