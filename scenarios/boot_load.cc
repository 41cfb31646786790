// boot-load: pkid loads idev-id at start, again on restart, and once a TPM that was down is up.
#include <signal.h>

#include "device/pkid/pkid_client.h"
#include "engine/tested_unit.h"
#include "provisioning/provisioner.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

using scenarios::ShowIdevid;

void StartLoads(TestedUnit& unit, ScenarioContext& s) {
  auto socket = unit.dir() / "boot-load.sock";
  std::optional<ChildProcess> pkid;
  s.Phase("start pkid", [&](PhaseContext& p) -> Result<void> {
    auto start = std::chrono::steady_clock::now();
    IDEVID_ASSIGN_OR_RETURN(pkid, unit.StartPkid(unit.tcti(), socket));
    p.Measure("start_to_answer",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count(),
              "ms", std::nullopt, 5000.0);
    return {};
  });
  s.Phase("idev-id loaded from the TPM", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(std::string text, ShowIdevid(socket));
    p.ExpectContains("idevid-not-loaded", text, "Load status: loaded at");
    p.ExpectContains("key-not-in-tpm", text, "Key location: tpm 0x81020000");
    p.ExpectContains("certificate-not-from-nv", text, "from NV 0x01C90000");
    p.ExpectContains("serial-not-shown", text, "Serial number: " + unit.options().serial);
    return {};
  });
}

void RestartLoadsAgain(TestedUnit& unit, ScenarioContext& s) {
  auto socket = unit.dir() / "restart.sock";
  std::optional<ChildProcess> pkid;
  scenarios::StartPkidPhase(unit, s, socket, pkid);
  s.Phase("SIGHUP loads idev-id again", [&](PhaseContext& p) -> Result<void> {
    auto loads = [&] {
      std::string log = LogTail(unit.dir() / "pkid.log", 1 << 20);
      std::size_t n = 0;
      for (std::size_t at = log.find("idev-id: loaded"); at != std::string::npos;
           at = log.find("idev-id: loaded", at + 1))
        ++n;
      return n;
    };
    std::size_t before = loads();
    ::kill(pkid->pid(), SIGHUP);
    if (!PollUntil([&] { return loads() > before; }, std::chrono::seconds(10))) {
      p.Finding("no-reload-on-sighup", "pkid did not load idev-id again within 10 s of SIGHUP");
    }
    IDEVID_ASSIGN_OR_RETURN(std::string text, ShowIdevid(socket));
    p.ExpectContains("idevid-not-loaded", text, "Load status: loaded at");
    return {};
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
    IDEVID_ASSIGN_OR_RETURN(SwtpmInstance started,
                            SwtpmInstance::Start({.state_dir = dir, .manufacture = true}));
    port = started.port();
    {
      IDEVID_ASSIGN_OR_RETURN(auto tpm, TpmContext::Open(started.tcti()));
      IDEVID_TRY(ProvisionUnit(tpm, unit.issuer(), {.serial = "CW-DOWN-1", .model = unit.options().model}),
                 "provisioning the second unit");
    }
    started.Stop();
    return {};
  });
  std::string tcti = fmt::format("swtpm:host=127.0.0.1,port={}", port);
  s.Phase("pkid starts with the TPM down and says why idev-id is not loaded",
          [&](PhaseContext& p) -> Result<void> {
            IDEVID_ASSIGN_OR_RETURN(pkid, unit.StartPkid(tcti, socket));
            IDEVID_ASSIGN_OR_RETURN(std::string text, ShowIdevid(socket));
            p.ExpectContains("loaded-without-tpm", text, "Load status: not loaded");
            p.ExpectContains("tpm-not-named", text, tcti);
            return {};
          });
  s.Phase("TPM up, restart: idev-id loaded", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(swtpm, SwtpmInstance::Start({.state_dir = dir, .port = port}));
    ::kill(pkid->pid(), SIGHUP);
    bool loaded = PollUntil(
        [&] {
          auto text = ShowIdevid(socket);
          return text && text->find("Serial number: CW-DOWN-1") != std::string::npos;
        },
        std::chrono::seconds(10));
    if (!loaded)
      p.Finding("no-load-after-tpm-back", "idev-id was not loaded within 10 s of the TPM coming back");
    return {};
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
