// faults: the identity path under TPM faults, injected by the fault TCTI in front of the unit's
// TPM or caused for real by stopping a disposable unit's swtpm. Each ends in a clean error or
// a recovery, never a hang.
#include <signal.h>

#include "core/fault_tcti/fault_spec.h"
#include "device/ssli/ssli_client.h"
#include "engine/ports.h"
#include "engine/tested_unit.h"
#include "provisioning/provisioner.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

using scenarios::CheckAccepted;
using scenarios::ExpectError;
using scenarios::ShowIdevid;

// A TPM-mode SSL-I session to the bench's cloud whose TPM connection goes through `faults`
// (none: the TPM itself).
Result<SsliResult> TpmSession(TestedUnit& unit, const std::string& faults) {
  IDEVID_ASSIGN_OR_RETURN(std::string tcti,
                          faults.empty() ? Result<std::string>(unit.base_tcti())
                                         : FaultTctiString(FaultTctiLibrary(), faults, unit.base_tcti()));
  return SsliConnect({&unit.config(), "aamw-tpm", std::nullopt, tcti, "127.0.0.1", unit.cloud().port()});
}

// The session was made and the cloud accepted the unit (a refusal is a finding).
Result<void> Accepted(PhaseContext& p, const Result<SsliResult>& session) {
  IDEVID_TRY(session);
  return CheckAccepted(p, *session);
}

bool NeedsFaultTcti(ScenarioContext& s) {
  if (std::filesystem::exists(FaultTctiLibrary())) return true;
  s.Skip("the fault TCTI module " + FaultTctiLibrary() + " is not installed beside idevid");
  return false;
}

void RetriesSucceed(TestedUnit& unit, ScenarioContext& s) {
  if (!NeedsFaultTcti(s)) return;
  s.Phase("TPM answers RETRY 3 times and YIELDED twice: the session is accepted",
          [&](PhaseContext& p) { return Accepted(p, TpmSession(unit, "retry=3,yielded=2")); });
}

void DroppedMidHandshake(TestedUnit& unit, ScenarioContext& s) {
  if (!NeedsFaultTcti(s)) return;
  s.Phase("the TPM connection drops at the handshake's signature: that session fails naming the TPM",
          [&](PhaseContext& p) {
            // The TPM's failure, not a TLS verdict nor a refusal by the cloud.
            return ExpectError(p, TpmSession(unit, "drop-on=sign"), ErrorDomain::kTss,
                               "the TPM could not sign", "session-without-signature");
          });
  s.Phase("a new session over a healthy connection is accepted",
          [&](PhaseContext& p) { return Accepted(p, TpmSession(unit, "")); });
}

void CorruptResponse(TestedUnit& unit, ScenarioContext& s) {
  if (!NeedsFaultTcti(s)) return;
  s.Phase("a corrupted TPM response fails the session, it does not crash it", [&](PhaseContext& p) {
    return ExpectError(p, TpmSession(unit, "corrupt=1"), ErrorDomain::kTss, "", "corrupt-response-unnoticed");
  });
}

// pkid keeps answering while its TPM is away; a reload then says why idev-id is not loaded, and
// the reload after the TPM is back loads it again.
void PkidSurvivesTheTpm(TestedUnit& unit, ScenarioContext& s) {
  auto dir = unit.dir() / "pkid-tpm-away";
  auto socket = unit.dir() / "pkid-tpm-away.sock";
  std::optional<SwtpmInstance> swtpm;
  std::optional<ChildProcess> pkid;
  s.Phase("a disposable unit and its pkid, idev-id loaded", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(swtpm, SwtpmInstance::Start({.state_dir = dir, .manufacture = true}));
    {
      IDEVID_ASSIGN_OR_RETURN(auto tpm, TpmContext::Open(swtpm->tcti()));
      IDEVID_TRY(ProvisionUnit(tpm, unit.issuer(), {.serial = "CW-AWAY-1", .model = unit.options().model}),
                 "provisioning the disposable unit");
    }
    IDEVID_ASSIGN_OR_RETURN(pkid, unit.StartPkid(swtpm->tcti(), socket));
    IDEVID_ASSIGN_OR_RETURN(std::string text, ShowIdevid(socket));
    p.ExpectContains("idevid-not-loaded", text, "Serial number: CW-AWAY-1");
    return {};
  });
  auto reload = [&](PhaseContext& p, const std::string& id, const std::string& expect) -> Result<void> {
    ::kill(pkid->pid(), SIGHUP);
    bool seen = PollUntil(
        [&] {
          auto text = ShowIdevid(socket);
          return text && text->find(expect) != std::string::npos;
        },
        std::chrono::seconds(10));
    if (!seen)
      p.Finding(id, fmt::format("within 10 s of a reload pkid never said {}", QuotedDisplayText(expect)));
    return {};
  };
  s.Phase("the TPM goes away: pkid answers and says idev-id is not loaded",
          [&](PhaseContext& p) -> Result<void> {
            swtpm->Stop();
            return reload(p, "loaded-without-tpm", "Load status: not loaded");
          });
  s.Phase("the TPM is back: the next reload loads idev-id", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(swtpm, SwtpmInstance::Start({.state_dir = dir, .port = swtpm->port()}));
    return reload(p, "no-load-after-tpm-back", "Serial number: CW-AWAY-1");
  });
  if (pkid) pkid->Stop();
}

}  // namespace

std::vector<Scenario> FaultsSuite() {
  return {
      {"faults", "RETRY and YIELDED answers are retried; the session succeeds", RetriesSucceed},
      {"faults", "a TPM dropped mid-handshake fails that session; the next one works", DroppedMidHandshake},
      {"faults", "a corrupted TPM response is a clean error", CorruptResponse},
      {"faults", "pkid survives its TPM going away and coming back", PkidSurvivesTheTpm}};
}

}  // namespace idevid
