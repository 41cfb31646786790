#include "engine/abrmd_instance.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <optional>

#include <fmt/format.h>

#include "core/tpm_capability.h"
#include "core/tpm_context.h"

namespace idevid {
namespace {

std::string UniqueBusName() {
  static std::atomic<int> counter{0};
  return fmt::format("com.intel.tss2.Tabrmd.idevid.p{}n{}", ::getpid(), ++counter);
}

// `process` did not start: how it ended (or `why` while it still runs), and its log. The code is
// its exit status, or kProcessDeadline while it still runs.
Error StartFailure(ChildProcess& process, const std::string& why, const std::filesystem::path& log) {
  std::optional<std::string> ended = process.Ended();
  return Error(ErrorDomain::kProcess, process.status_code().value_or(kProcessDeadline),
               fmt::format("{} did not start: {}; its log {} ends with:\n{}", process.name(),
                           ended.value_or(why), log.string(), LogTail(log)));
}

// Asks the bus whether tpm2-abrmd has taken its name yet, so that the TCTI is tried only once
// the service exists (the tabrmd TCTI warns on stderr for every failed attempt).
bool NameHasOwner(const std::string& bus_address, const std::string& name) {
  auto reply =
      RunCommand({"dbus-send", "--bus=" + bus_address, "--print-reply", "--dest=org.freedesktop.DBus",
                  "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:" + name},
                 {}, std::chrono::seconds(5));
  return reply && reply->exit_status == 0 && reply->out.find("true") != std::string::npos;
}

bool AnswersTpmCommand(const std::string& tcti) {
  auto tpm = TpmContext::Open(tcti, {.command_timeout = std::chrono::seconds(5)});
  return tpm && ReadTpmProperty(*tpm, TPM2_PT_MANUFACTURER).has_value();
}

}  // namespace

Result<AbrmdInstance> AbrmdInstance::Start(const AbrmdOptions& options) {
  AbrmdInstance instance;
  auto socket = options.dir / "dbus.sock";
  std::filesystem::remove(socket);
  instance.bus_address_ = "unix:path=" + socket.string();
  instance.bus_name_ = UniqueBusName();
  auto dbus_log = options.dir / "dbus.log";
  IDEVID_ASSIGN_OR_RETURN(instance.dbus_,
                          ChildProcess::Spawn({.argv = {"dbus-daemon", "--session", "--nofork", "--nopidfile",
                                                        "--address=" + instance.bus_address_},
                                               .log = dbus_log,
                                               .detach = options.detach}));
  if (!PollUntil([&] { return std::filesystem::exists(socket) || instance.dbus_.Ended(); },
                 options.start_timeout) ||
      instance.dbus_.Ended()) {
    return Fail(StartFailure(instance.dbus_, "no bus socket in time", dbus_log));
  }
  ::setenv("DBUS_SESSION_BUS_ADDRESS", instance.bus_address_.c_str(), 1);
  instance.options_ = options;
  IDEVID_TRY(instance.StartDaemon());
  return instance;
}

Result<void> AbrmdInstance::StartDaemon() {
  auto abrmd_log = options_.dir / "tpm2-abrmd.log";
  // Room for 16 concurrent clients per comparator of `idevid bench` (the default is 27 connections;
  // tpm2-openssl 1.1.1 keeps its connection after its provider is unloaded).
  IDEVID_ASSIGN_OR_RETURN(
      abrmd_, ChildProcess::Spawn(
                  {.argv = {"tpm2-abrmd", "--session", "--allow-root", "--flush-all", "--max-connections=64",
                            "--dbus-name=" + bus_name_, "--tcti=" + options_.tpm_tcti},
                   .log = abrmd_log,
                   .env = ClientEnvironment(),
                   .detach = options_.detach}));
  std::string tcti = this->tcti();
  // tpm2-abrmd sometimes hangs instead of exiting when it cannot reach the TPM: its log says so.
  auto gave_up = [&] { return LogTail(abrmd_log).find("failed to create TCTI") != std::string::npos; };
  auto ready = [&] {
    return abrmd_.Ended() || gave_up() || (NameHasOwner(bus_address_, bus_name_) && AnswersTpmCommand(tcti));
  };
  if (!PollUntil(ready, options_.start_timeout, std::chrono::milliseconds(20)) || abrmd_.Ended() ||
      gave_up()) {
    return Fail(StartFailure(abrmd_, "no TPM answer through it in time", abrmd_log));
  }
  return {};
}

Result<void> AbrmdInstance::RestartDaemon() {
  abrmd_.Stop();
  if (!PollUntil([&] { return !NameHasOwner(bus_address_, bus_name_); }, options_.start_timeout)) {
    return Fail(ErrorDomain::kProcess, kProcessDeadline, "the stopped tpm2-abrmd still owns " + bus_name_);
  }
  return StartDaemon();
}

std::string AbrmdInstance::tcti() const {
  return fmt::format("tabrmd:bus_type=session,bus_name={}", bus_name_);
}

std::map<std::string, std::string> AbrmdInstance::ClientEnvironment() const {
  return {{"DBUS_SESSION_BUS_ADDRESS", bus_address_}};
}

void AbrmdInstance::Stop() {
  abrmd_.Stop();
  dbus_.Stop();
}

void AbrmdInstance::Release() {
  abrmd_.Release();
  dbus_.Release();
}

}  // namespace idevid
