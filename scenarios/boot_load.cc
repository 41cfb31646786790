// boot-load: pkid loads idev-id at start, again on restart, and once a TPM that was down is up.
#include <signal.h>

#include "device/pkid/pkid_client.h"
#include "engine/tested_unit.h"
#include "provisioning/provisioner.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

using scenarios::CheckFailed;
using scenarios::ExpectContains;
using scenarios::ShowIdevid;

void StartLoads(TestedUnit& unit, ScenarioContext& s) {
  auto socket = unit.dir() / "boot-load.sock";
  std::optional<ChildProcess> pkid;
  s.Phase("start pkid", [&](PhaseContext& p) -> Result<void> {
    auto start = std::chrono::steady_clock::now();
    auto child = unit.StartPkid(unit.tcti(), socket);
    if (!child) return Fail(child.error());
    pkid = std::move(*child);
    p.Measure("start_to_answer", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count(), "ms", std::nullopt, 5000.0);
    return {};
  });
  s.Phase("idev-id loaded from the TPM", [&](PhaseContext&) -> Result<void> {
    auto text = ShowIdevid(socket);
    if (!text) return Fail(text.error());
    for (const char* part : {"Load status: loaded at", "Key location: tpm 0x81020000", "from NV 0x01C90000"}) {
      if (auto ok = ExpectContains(*text, part); !ok) return ok;
    }
    return ExpectContains(*text, "Serial number: " + unit.options().serial);
  });
}

void RestartLoadsAgain(TestedUnit& unit, ScenarioContext& s) {
  auto socket = unit.dir() / "restart.sock";
  std::optional<ChildProcess> pkid;
  scenarios::StartPkidPhase(unit, s, socket, pkid);
  s.Phase("SIGHUP loads idev-id again", [&](PhaseContext&) -> Result<void> {
    auto loads = [&] {
      std::string log = LogTail(unit.dir() / "pkid.log", 1 << 20);
      std::size_t n = 0;
      for (std::size_t at = log.find("idev-id: loaded"); at != std::string::npos; at = log.find("idev-id: loaded", at + 1)) ++n;
      return n;
    };
    std::size_t before = loads();
    ::kill(pkid->pid(), SIGHUP);
    if (!PollUntil([&] { return loads() > before; }, std::chrono::seconds(10))) {
      return CheckFailed("pkid did not load idev-id again after SIGHUP");
    }
    auto text = ShowIdevid(socket);
    return text ? ExpectContains(*text, "Load status: loaded at") : Fail(text.error());
  });
}

void TpmDownThenUp(TestedUnit& unit, ScenarioContext& s) {
  auto dir = unit.dir() / "tpm-down";
  auto socket = unit.dir() / "tpm-down.sock";
  std::optional<SwtpmInstance> swtpm;
  std::optional<ChildProcess> pkid;
  std::uint16_t port = 0;
  s.Phase("provision a second unit, then stop its TPM", [&](PhaseContext&) -> Result<void> {
    // Ports picked by Start, which retries when another process takes them first.
    auto started = SwtpmInstance::Start({.state_dir = dir, .manufacture = true});
    if (!started) return Fail(started.error());
    port = started->port();
    {
      auto tpm = TpmContext::Open(started->tcti());
      if (!tpm) return Fail(tpm.error());
      auto unit2 = ProvisionUnit(*tpm, unit.issuer(), {.serial = "CW-DOWN-1", .model = unit.options().model});
      if (!unit2) return Fail(unit2.error());
    }
    started->Stop();
    return {};
  });
  std::string tcti = fmt::format("swtpm:host=127.0.0.1,port={}", port);
  s.Phase("pkid starts with the TPM down and says why idev-id is not loaded", [&](PhaseContext&) -> Result<void> {
    auto child = unit.StartPkid(tcti, socket);
    if (!child) return Fail(child.error());
    pkid = std::move(*child);
    auto text = ShowIdevid(socket);
    if (!text) return Fail(text.error());
    if (auto ok = ExpectContains(*text, "Load status: not loaded"); !ok) return ok;
    return ExpectContains(*text, tcti);
  });
  s.Phase("TPM up, restart: idev-id loaded", [&](PhaseContext&) -> Result<void> {
    auto started = SwtpmInstance::Start({.state_dir = dir, .port = port});
    if (!started) return Fail(started.error());
    swtpm = std::move(*started);
    ::kill(pkid->pid(), SIGHUP);
    bool loaded = PollUntil([&] {
      auto text = ShowIdevid(socket);
      return text && text->find("Serial number: CW-DOWN-1") != std::string::npos;
    }, std::chrono::seconds(10));
    return loaded ? Result<void>{} : CheckFailed("idev-id was not loaded after the TPM came back");
  });
  if (pkid) pkid->Stop();
}

}  // namespace

std::vector<Scenario> BootLoadSuite() {
  return {{"boot-load", "pkid start loads idev-id", StartLoads},
          {"boot-load", "restart loads idev-id again", RestartLoadsAgain},
          {"boot-load", "TPM down at start, up at restart", TpmDownThenUp}};
}

}  // namespace idevid
