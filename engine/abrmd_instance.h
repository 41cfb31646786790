// tpm2-abrmd on a private D-Bus session bus, in front of one TPM, so that several processes
// can share it.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

#include "core/result.h"
#include "engine/process.h"

namespace idevid {

struct AbrmdOptions {
  std::filesystem::path dir;  // holds the bus socket and the logs
  std::string tpm_tcti;       // the TPM behind the resource manager, e.g. swtpm:host=...,port=...
  bool detach = false;        // processes outlive this object
  std::chrono::milliseconds start_timeout{15000};
};

// A private dbus-daemon plus tpm2-abrmd: move-only; both are stopped when destroyed unless
// released. Starting it points this process's DBUS_SESSION_BUS_ADDRESS at the private bus,
// which is where the tabrmd TCTI looks: one instance per process is reachable at a time (start
// further ones in child processes).
class AbrmdInstance {
 public:
  // Starts both and waits (with a deadline) until a TPM command passes through. Fails with
  // kProcess naming the program that did not start and showing its log.
  static Result<AbrmdInstance> Start(const AbrmdOptions& options);

  // tabrmd:bus_type=session,bus_name=<name>
  std::string tcti() const;
  const std::string& bus_address() const { return bus_address_; }
  const std::string& bus_name() const { return bus_name_; }
  pid_t abrmd_pid() const { return abrmd_.pid(); }
  pid_t dbus_pid() const { return dbus_.pid(); }
  // What a client process needs in its environment to reach this bus.
  std::map<std::string, std::string> ClientEnvironment() const;

  // Stops tpm2-abrmd and starts a new one on the same bus under the same name (a resource manager
  // that restarts), waiting until a TPM command passes through again. Clients of the old one see
  // their connection break.
  Result<void> RestartDaemon();
  // Stops tpm2-abrmd, then the bus.
  void Stop();
  // Leaves both running.
  void Release();

 private:
  AbrmdInstance() = default;
  Result<void> StartDaemon();  // tpm2-abrmd on this bus, ready when it returns
  AbrmdOptions options_;
  ChildProcess dbus_;
  ChildProcess abrmd_;
  std::string bus_address_;
  std::string bus_name_;
};

}  // namespace idevid
