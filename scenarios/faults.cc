// faults: the identity path under TPM faults, injected by the fault TCTI in front of the unit's
// TPM or caused for real by stopping a disposable unit's swtpm. Each ends in a clean error or
// a recovery, never a hang.
#include <signal.h>

#include "device/ssli/ssli_client.h"
#include "core/fault_tcti/fault_spec.h"
#include "engine/ports.h"
#include "engine/tested_unit.h"
#include "provisioning/provisioner.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

using scenarios::CheckFailed;
using scenarios::ExpectContains;
using scenarios::ShowIdevid;

// A TPM-mode SSL-I session to the bench's cloud whose TPM connection goes through `faults`
// (none: the TPM itself).
Result<SsliResult> TpmSession(TestedUnit& unit, const std::string& faults) {
  auto tcti = faults.empty() ? unit.base_tcti() : FaultTctiString(FaultTctiLibrary(), faults, unit.base_tcti());
  if (!tcti) return Fail(tcti.error());
  return SsliConnect({&unit.config(), "aamw-tpm", std::nullopt, *tcti, "127.0.0.1", unit.cloud().port()});
}

Result<void> Accepted(const Result<SsliResult>& session) {
  if (!session) return Fail(session.error());
  return session->accepted() ? Result<void>{} : CheckFailed("the cloud refused the unit: " + session->verdict.dump());
}

bool NeedsFaultTcti(ScenarioContext& s) {
  if (std::filesystem::exists(FaultTctiLibrary())) return true;
  s.Skip("the fault TCTI module " + FaultTctiLibrary() + " is not installed beside idevid");
  return false;
}

void RetriesSucceed(TestedUnit& unit, ScenarioContext& s) {
  if (!NeedsFaultTcti(s)) return;
  s.Phase("TPM answers RETRY 3 times and YIELDED twice: the session is accepted",
          [&](PhaseContext&) { return Accepted(TpmSession(unit, "retry=3,yielded=2")); });
}

void DroppedMidHandshake(TestedUnit& unit, ScenarioContext& s) {
  if (!NeedsFaultTcti(s)) return;
  s.Phase("the TPM connection drops at the handshake's signature: that session fails naming the TPM",
          [&](PhaseContext&) -> Result<void> {
            auto session = TpmSession(unit, "drop-on=sign");
            if (session) return CheckFailed("the session succeeded without its signature");
            if (session.error().domain() != ErrorDomain::kTss) {  // the TPM's failure, not a TLS verdict
              return CheckFailed("it failed as " + session.error().ToString());
            }
            return ExpectContains(session.error().message(), "the TPM could not sign");
          });
  s.Phase("a new session over a healthy connection is accepted",
          [&](PhaseContext&) { return Accepted(TpmSession(unit, "")); });
}

void CorruptResponse(TestedUnit& unit, ScenarioContext& s) {
  if (!NeedsFaultTcti(s)) return;
  s.Phase("a corrupted TPM response fails the session, it does not crash it",
          [&](PhaseContext&) -> Result<void> {
            auto session = TpmSession(unit, "corrupt=1");
            if (session) return CheckFailed("a corrupted response went unnoticed");
            return session.error().domain() == ErrorDomain::kTss
                       ? Result<void>{}
                       : CheckFailed("it failed the wrong way: " + session.error().ToString());
          });
}

// pkid keeps answering while its TPM is away; a reload then says why idev-id is not loaded, and
// the reload after the TPM is back loads it again.
void PkidSurvivesTheTpm(TestedUnit& unit, ScenarioContext& s) {
  auto dir = unit.dir() / "pkid-tpm-away";
  auto socket = unit.dir() / "pkid-tpm-away.sock";
  std::optional<SwtpmInstance> swtpm;
  std::optional<ChildProcess> pkid;
  s.Phase("a disposable unit and its pkid, idev-id loaded", [&](PhaseContext&) -> Result<void> {
    auto started = SwtpmInstance::Start({.state_dir = dir, .manufacture = true});
    if (!started) return Fail(started.error());
    swtpm = std::move(*started);
    {
      auto tpm = TpmContext::Open(swtpm->tcti());
      if (!tpm) return Fail(tpm.error());
      auto provisioned = ProvisionUnit(*tpm, unit.issuer(), {.serial = "CW-AWAY-1", .model = unit.options().model});
      if (!provisioned) return Fail(provisioned.error());
    }
    auto child = unit.StartPkid(swtpm->tcti(), socket);
    if (!child) return Fail(child.error());
    pkid = std::move(*child);
    auto text = ShowIdevid(socket);
    return text ? ExpectContains(*text, "Serial number: CW-AWAY-1") : Fail(text.error());
  });
  auto reload = [&](const std::string& expect) -> Result<void> {
    ::kill(pkid->pid(), SIGHUP);
    bool seen = PollUntil([&] {
      auto text = ShowIdevid(socket);
      return text && text->find(expect) != std::string::npos;
    }, std::chrono::seconds(10));
    return seen ? Result<void>{} : CheckFailed("after a reload pkid never said '" + expect + "'");
  };
  s.Phase("the TPM goes away: pkid answers and says idev-id is not loaded", [&](PhaseContext&) -> Result<void> {
    swtpm->Stop();
    return reload("Load status: not loaded");
  });
  s.Phase("the TPM is back: the next reload loads idev-id", [&](PhaseContext&) -> Result<void> {
    auto back = SwtpmInstance::Start({.state_dir = dir, .port = swtpm->port()});
    if (!back) return Fail(back.error());
    swtpm = std::move(*back);
    return reload("Serial number: CW-AWAY-1");
  });
  if (pkid) pkid->Stop();
}

}  // namespace

std::vector<Scenario> FaultsSuite() {
  return {{"faults", "RETRY and YIELDED answers are retried; the session succeeds", RetriesSucceed},
          {"faults", "a TPM dropped mid-handshake fails that session; the next one works", DroppedMidHandshake},
          {"faults", "a corrupted TPM response is a clean error", CorruptResponse},
          {"faults", "pkid survives its TPM going away and coming back", PkidSurvivesTheTpm}};
}

}  // namespace idevid
