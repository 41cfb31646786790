// attestation: remote attestation of the measured boot (an IAK quote bound to the TLS session of
// the identity, the event log replayed against a policy) by a cloud started with a policy made
// from the unit's own known-good boot. A good unit is attested naming the policy; every forgery
// is refused with its finding; the cloud still answers after all of them. The unit is a
// disposable swtpm, enrolled (IDevID and IAK) by the bench's factory and booted through the
// synthetic measured boot; the TPM under test is never touched. One unit, one second TPM and one
// cloud serve the whole suite: each forgery leaves the unit booted with its known-good chain.
#include <openssl/rand.h>

#include <chrono>
#include <memory>

#include "cloud/attest_policy.h"
#include "cloud/cloud_server.h"
#include "core/event_log.h"
#include "core/file_io.h"
#include "core/x509.h"
#include "engine/attestation_forgeries.h"
#include "engine/attested_unit.h"
#include "engine/swtpm_instance.h"
#include "engine/tested_unit.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

constexpr const char* kPolicyName = "srx4300-golden";

// What the suite's scenarios share, made by the first that needs it.
struct AttestationStage {
  const TestedUnit* tested = nullptr;
  std::unique_ptr<AttestedUnit> unit;
  std::optional<SwtpmInstance> other;  // another TPM (its own seeds), started on demand
  std::unique_ptr<CloudServer> cloud;  // stopped before the unit goes
  AttestationBench bench;
};

// A serial no earlier run of this factory has issued.
std::string FreshSerial() {
  unsigned char random[4];
  RAND_bytes(random, sizeof random);
  return "CW-A-" + Hex(random);
}

// The unit, booted; the policy from its known-good log; the cloud with that policy.
Result<void> Prepare(TestedUnit& tested, AttestationStage& stage) {
  stage.cloud.reset();
  stage = {};
  std::filesystem::path base = tested.dir() / "attestation";
  IDEVID_ASSIGN_OR_RETURN(stage.unit, AttestedUnit::Create({.stock = tested.dir() / "enrolment" / "stock-a",
                                                            .dir = base / "unit",
                                                            .factory_dir = tested.issuer().dir,
                                                            .serial = FreshSerial()}));
  IDEVID_ASSIGN_OR_RETURN(Bytes log_bytes, ReadFileBytes(stage.unit->event_log()), "the unit's event log");
  IDEVID_ASSIGN_OR_RETURN(EventLog log, ParseEventLog(log_bytes), "the unit's event log");
  IDEVID_ASSIGN_OR_RETURN(PcrSelection pcrs, ParsePcrSelection(stage.unit->options().pcrs));
  IDEVID_TRY(WriteFileAtomic(base / "policy.yaml", AttestPolicyYaml(PolicyFromLog(log, kPolicyName, pcrs))));
  IDEVID_ASSIGN_OR_RETURN(stage.cloud,
                          CloudServer::Start({.certificate = tested.dir() / "cloud.pem",
                                              .private_key = tested.dir() / "cloud.key",
                                              .factory_ca = FactoryFiles::Chain(tested.issuer().dir),
                                              .log = base / "cloud.jsonl",
                                              .attest_policy = base / "policy.yaml"}),
                          "starting the cloud with the policy");
  AttestationStage* s = &stage;
  stage.bench = {.unit = stage.unit.get(),
                 .port = stage.cloud->port(),
                 .other_tcti = [s, base]() -> Result<std::string> {
                   if (!s->other) {
                     IDEVID_ASSIGN_OR_RETURN(s->other, SwtpmInstance::Start({.state_dir = base / "other"}));
                   }
                   return s->other->swtpm_tcti();
                 }};
  stage.tested = &tested;
  return {};
}

using Stage = std::shared_ptr<AttestationStage>;

bool ReadyPhase(TestedUnit& tested, ScenarioContext& s, const Stage& stage) {
  if (stage->tested == &tested && stage->cloud) return true;
  return s.Phase(
      "an enrolled, booted unit and a cloud with its policy", [&](PhaseContext& p) -> Result<void> {
        auto started = std::chrono::steady_clock::now();
        IDEVID_TRY(Prepare(tested, *stage));
        p.Measure(
            "prepare_ms",
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count(),
            "ms");
        return {};
      });
}

void GoodUnit(TestedUnit& tested, ScenarioContext& s, const Stage& stage) {
  if (!ReadyPhase(tested, s, stage)) return;
  s.Phase("the cloud attests the unit naming its policy", [&](PhaseContext& p) -> Result<void> {
    auto started = std::chrono::steady_clock::now();
    IDEVID_ASSIGN_OR_RETURN(SsliResult session, AttestOnce(stage->bench));
    p.Measure("attested_session_ms",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count(),
              "ms");
    if (!session.challenge) {
      p.Finding("not-challenged",
                fmt::format("the cloud answered HTTP {} without a challenge", session.http_status));
    } else if (!session.attested()) {
      p.Finding("good-unit-refused", DisplayText(session.body, 400));
    } else {
      p.ExpectContains("wrong-policy", session.verdict.value("policy", std::string()), kPolicyName);
    }
    return {};
  });
}

void Forged(TestedUnit& tested, ScenarioContext& s, const Stage& stage, const AttestationForgery& forgery) {
  if (!ReadyPhase(tested, s, stage)) return;
  s.Phase(fmt::format("refused with {}", forgery.finding), [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(Verdict verdict, JudgeAttestationForgery(forgery, stage->bench));
    p.Check(verdict);
    return {};
  });
}

// After every forgery the cloud still serves; the shared unit and cloud are then stopped.
void CloudStillAnswers(TestedUnit& tested, ScenarioContext& s, const Stage& stage) {
  if (!ReadyPhase(tested, s, stage)) return;
  s.Phase("the cloud still attests the good unit", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(SsliResult session, AttestOnce(stage->bench));
    if (!session.attested()) p.Finding("good-unit-refused", DisplayText(session.body, 400));
    p.Measure("cloud_connections", static_cast<double>(stage->cloud->connections()), "connections");
    return {};
  });
  stage->cloud.reset();
  *stage = {};
}

}  // namespace

std::vector<Scenario> AttestationSuite() {
  auto stage = std::make_shared<AttestationStage>();
  std::vector<Scenario> suite{{"attestation", "a good unit is attested",
                               [stage](TestedUnit& u, ScenarioContext& s) { GoodUnit(u, s, stage); }}};
  for (const AttestationForgery& forgery : AttestationForgeries()) {
    suite.push_back({"attestation", fmt::format("refused: {}", forgery.name),
                     [stage, forgery](TestedUnit& u, ScenarioContext& s) { Forged(u, s, stage, forgery); }});
  }
  suite.push_back({"attestation", "the cloud still answers after every forgery",
                   [stage](TestedUnit& u, ScenarioContext& s) { CloudStillAnswers(u, s, stage); }});
  return suite;
}

}  // namespace idevid
