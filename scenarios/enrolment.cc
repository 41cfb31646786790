// enrolment: TCG enrolment (TCG "TPM 2.0 Keys for Device Identity and Attestation" v1.0 rev 12
// §6.2) of fresh units against the bench's factory: a good unit of each key type, enrolled and
// passing the line check with its IAK, and every forgery refused for its reason with nothing
// issued. The units are disposable swtpm instances; the TPM under test is never touched.
#include <openssl/rand.h>

#include "core/x509.h"
#include "engine/attested_unit.h"
#include "engine/enrolment_forgeries.h"
#include "engine/swtpm_instance.h"
#include "engine/tested_unit.h"
#include "provisioning/enrolment_authority.h"
#include "provisioning/enrolment_station.h"
#include "provisioning/line_check.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

// A serial no earlier run of this factory has issued.
std::string FreshSerial(const std::string& prefix) {
  unsigned char random[4];
  RAND_bytes(random, sizeof random);
  return prefix + Hex(random);
}

struct EnrolmentBench {
  std::optional<SwtpmInstance> unit;
  std::optional<SwtpmInstance> other;
};

ForgeryBench MakeBench(TestedUnit& tested, EnrolmentBench& bench, const std::string& name, KeyAlgorithm alg) {
  std::filesystem::path base = tested.dir() / "enrolment";
  return {.unit_tcti = bench.unit->tcti(),
          .other_tcti = [&bench, base, name]() -> Result<std::string> {
            if (!bench.other) {
              // A second TPM of the same vendor: stock-b's EK certificate is signed by stock-a's CA.
              IDEVID_ASSIGN_OR_RETURN(bench.other,
                                      TpmFromStock(base / "stock-b", base / (name + "-b"), base / "stock-a"));
            }
            return bench.other->tcti();
          },
          .factory_dir = tested.issuer().dir,
          .vendor_ca = bench.unit->vendor_ca(),
          .work_dir = base / name,
          .algorithm = alg,
          .serial = FreshSerial("CW-E-"),
          .model = "SRX4300"};
}

bool FreshUnitPhase(TestedUnit& tested, ScenarioContext& s, EnrolmentBench& bench, const std::string& name) {
  return s.Phase("a fresh TPM from its vendor", [&](PhaseContext&) -> Result<void> {
    std::filesystem::path base = tested.dir() / "enrolment";
    IDEVID_ASSIGN_OR_RETURN(bench.unit, TpmFromStock(base / "stock-a", base / name));
    return {};
  });
}

void GoodUnit(TestedUnit& tested, ScenarioContext& s, KeyAlgorithm alg) {
  std::string name = fmt::format("good-{}", KeyAlgorithmName(alg));
  EnrolmentBench bench;
  if (!FreshUnitPhase(tested, s, bench, name)) return;
  ForgeryBench where = MakeBench(tested, bench, name, alg);
  s.Phase("the authority enrols the unit", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(where.unit_tcti));
    IDEVID_ASSIGN_OR_RETURN(Factory factory, LoadFactory(where.factory_dir));
    // The units are copies of one stock TPM (one EK): each is recorded in a ledger of its own.
    IDEVID_ASSIGN_OR_RETURN(
        auto authority, EnrolmentAuthority::Create(std::move(factory), {.tpm_vendor_cas = {where.vendor_ca},
                                                                        .ledger = BenchLedger(where)}));
    IDEVID_ASSIGN_OR_RETURN(
        EnrolResult result,
        EnrolUnit(tpm, *authority, {.serial = where.serial, .model = where.model, .algorithm = alg}));
    for (const auto& [step, ms] : result.timings_ms) p.Measure(step, ms, "ms");
    if (result.refusal)
      p.Finding("good-unit-refused", result.refusal->reason + ": " + result.refusal->detail);
    return {};
  });
  s.Phase("the line check passes it with its IAK", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(where.unit_tcti));
    IDEVID_ASSIGN_OR_RETURN(TrustBundle factory_ca, LoadTrustBundle(FactoryFiles::Chain(where.factory_dir)));
    CheckRequest request{.expect_serial = where.serial, .expect_model = where.model, .check_iak = true};
    IDEVID_ASSIGN_OR_RETURN(TrustBundle vendor, LoadTrustBundle(where.vendor_ca));
    request.vendor_cas.push_back(std::move(vendor));
    IDEVID_ASSIGN_OR_RETURN(CheckReport report, CheckUnit(tpm, factory_ca, request), "the line check");
    for (const auto& m : report.measurements) {
      if (!m.passed) p.Finding("line-check-" + m.name, fmt::format("{} (expected {})", m.value, m.expected));
    }
    return {};
  });
}

void Forged(TestedUnit& tested, ScenarioContext& s, const Forgery& forgery) {
  EnrolmentBench bench;
  if (!FreshUnitPhase(tested, s, bench, forgery.name)) return;
  ForgeryBench where = MakeBench(tested, bench, forgery.name, KeyAlgorithm::kEccP256);
  s.Phase(fmt::format("refused as {}", forgery.reason), [&](PhaseContext& p) -> Result<void> {
    std::filesystem::create_directories(where.work_dir);
    IDEVID_ASSIGN_OR_RETURN(Verdict verdict, JudgeForgery(forgery, where));
    p.Check(verdict);
    return {};
  });
}

}  // namespace

std::vector<Scenario> EnrolmentSuite() {
  std::vector<Scenario> suite{
      {"enrolment", "a good unit enrols (ECC P-256)",
       [](TestedUnit& u, ScenarioContext& s) { GoodUnit(u, s, KeyAlgorithm::kEccP256); }},
      {"enrolment", "a good unit enrols (RSA-2048)",
       [](TestedUnit& u, ScenarioContext& s) { GoodUnit(u, s, KeyAlgorithm::kRsa2048); }}};
  for (const Forgery& forgery : EnrolmentForgeries()) {
    suite.push_back({"enrolment", fmt::format("forgery refused: {}", forgery.name),
                     [forgery](TestedUnit& u, ScenarioContext& s) { Forged(u, s, forgery); }});
  }
  return suite;
}

}  // namespace idevid
