// The scenario engine without a TPM: phases, findings and measurements against their limits, what
// a failed check says, and that only a check fails a unit: an error of any kind is an ERROR.
#include "engine/scenario.h"

#include <stdexcept>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/limits.h"

namespace idevid {
namespace {

TEST(ScenarioContextTest, AMeasurementAboveItsLimitFailsThePhaseNamingTheLimit) {
  ScenarioRecord record;
  ScenarioContext s(record);
  EXPECT_FALSE(s.Phase("TPM-mode handshakes", [](PhaseContext& p) -> Result<void> {
    p.Measure("p50", 3.25, "ms", std::nullopt, 100.0);
    p.Measure("p95", 11.8912, "ms", std::nullopt, 10.0);
    return {};
  }));
  EXPECT_FALSE(s.Phase("never", [](PhaseContext&) -> Result<void> { return {}; })) << "a failed phase stops";
  EXPECT_EQ(record.outcome, Outcome::kFail);
  ASSERT_EQ(record.phases.size(), 1u);
  EXPECT_EQ(record.phases[0].message, "p95 = 11.89 ms is above its limit of 10 ms");
  EXPECT_EQ(record.message, "TPM-mode handshakes: p95 = 11.89 ms is above its limit of 10 ms");
  EXPECT_EQ(record.failure_codes, std::vector<std::string>{"TPM-mode handshakes.p95"});
}

TEST(ScenarioContextTest, AMeasurementBelowALowerLimitFromTheBenchSaysBelow) {
  PerformanceLimits limits;
  ASSERT_TRUE(limits.Set("tpm_to_file_rate_min", 0.25));
  Limit bound = limits.Get("tpm_to_file_rate_min");
  ScenarioRecord record;
  ScenarioContext s(record);
  s.Phase("TPM mode against file mode", [&](PhaseContext& p) -> Result<void> {
    p.Measure("ratio_tpm_to_file_rate", 0.125, "ratio", bound.low, bound.high);
    return {};
  });
  EXPECT_EQ(record.outcome, Outcome::kFail);
  EXPECT_EQ(record.phases.at(0).message,
            "ratio_tpm_to_file_rate = 0.125 ratio is below its limit of 0.25 ratio");
}

TEST(ScenarioContextTest, AnErrorAndABrokenLimitAreBothSaid) {
  ScenarioRecord record;
  ScenarioContext s(record);
  s.Phase("soak", [](PhaseContext& p) -> Result<void> {
    p.Measure("failures", 3, "count", std::nullopt, 0.0);
    return Fail(ErrorDomain::kProcess, 9, "pkid died");
  });
  EXPECT_EQ(record.outcome, Outcome::kError);
  EXPECT_EQ(record.phases.at(0).message, "pkid died; failures = 3 count is above its limit of 0 count");
}

TEST(ScenarioContextTest, FindingsFailThePhaseAndEveryOneIsKept) {
  ScenarioRecord record;
  ScenarioContext s(record);
  EXPECT_FALSE(s.Phase("cloud's verdict", [](PhaseContext& p) -> Result<void> {
    p.Finding("cloud-refused-unit", "HTTP 403: serial CW1 is not in the inventory");
    p.Finding("slow-answer", "1.2 s", Severity::kWarning);
    p.ExpectContains("serial-shown", "Serial number: CW2", "Serial number: CW1");
    return {};
  }));
  EXPECT_EQ(record.outcome, Outcome::kFail);
  ASSERT_EQ(record.phases.size(), 1u);
  ASSERT_EQ(record.phases[0].findings.size(), 3u);
  EXPECT_EQ(record.phases[0].findings[1].severity, Severity::kWarning);
  EXPECT_EQ(record.phases[0].message,
            "cloud-refused-unit: HTTP 403: serial CW1 is not in the inventory; serial-shown: expected "
            "\"Serial number: CW1\" in: Serial number: CW2");
  EXPECT_EQ(record.failure_codes,
            (std::vector<std::string>{"cloud's verdict.cloud-refused-unit", "cloud's verdict.serial-shown"}));
}

TEST(ScenarioContextTest, AWarningAloneDoesNotFailThePhase) {
  ScenarioRecord record;
  ScenarioContext s(record);
  EXPECT_TRUE(s.Phase("check", [](PhaseContext& p) -> Result<void> {
    p.Finding("slow-answer", "1.2 s", Severity::kWarning);
    return {};
  }));
  EXPECT_EQ(record.outcome, Outcome::kPass);
  EXPECT_EQ(record.phases.at(0).findings.size(), 1u);
}

// A TLS or verification error used to be read as a failed unit: an error is never a verdict.
TEST(ScenarioContextTest, AnyErrorIsAnErrorNeverAFailure) {
  for (ErrorDomain domain :
       {ErrorDomain::kVerify, ErrorDomain::kTls, ErrorDomain::kPeer, ErrorDomain::kTss}) {
    ScenarioRecord record;
    ScenarioContext s(record);
    EXPECT_FALSE(s.Phase("handshake", [&](PhaseContext&) -> Result<void> {
      return Fail(domain, 3, "the cloud did not answer within 1 s");
    }));
    EXPECT_EQ(record.outcome, Outcome::kError) << DomainName(domain);
    EXPECT_EQ(record.message, "handshake: the cloud did not answer within 1 s");
  }
}

TEST(ScenarioContextTest, AnErrorAfterAFindingIsAnErrorThatSaysBoth) {
  ScenarioRecord record;
  ScenarioContext s(record);
  s.Phase("sessions", [](PhaseContext& p) -> Result<void> {
    p.Finding("cloud-refused-unit", "TLS alert unknown CA (48)");
    return PeerError(PeerCode::kClosed, "the cloud closed the connection before it answered");
  });
  EXPECT_EQ(record.outcome, Outcome::kError);
  EXPECT_EQ(
      record.phases.at(0).message,
      "the cloud closed the connection before it answered; cloud-refused-unit: TLS alert unknown CA (48)");
}

TEST(ScenarioContextTest, AnExceptionInAPhaseIsAnErrorOfThatPhaseWithItsEscapedMessage) {
  ScenarioRecord record;
  ScenarioContext s(record);
  EXPECT_FALSE(
      s.Phase("parse", [](PhaseContext&) -> Result<void> { throw std::runtime_error("bad \x1b[31mjson"); }));
  EXPECT_FALSE(s.Phase("never", [](PhaseContext&) -> Result<void> { return {}; }));
  EXPECT_EQ(record.outcome, Outcome::kError);
  ASSERT_EQ(record.phases.size(), 1u);
  EXPECT_EQ(record.phases[0].message, "an exception escaped the phase: bad \\x1b[31mjson");
}

// An exception outside any phase ends its scenario as ERROR; the next scenario runs as usual.
TEST(RunScenarioTest, AStrayExceptionEndsItsScenarioAsAnErrorAndTheRunGoesOn) {
  std::vector<ScenarioRecord> run;
  run.push_back(RunScenarioBody("negative", "throws", [](ScenarioContext& s) {
    s.Phase("first", [](PhaseContext&) -> Result<void> { return {}; });
    nlohmann::json parsed = nlohmann::json::parse("{not json");  // throws nlohmann::json::parse_error
    s.Skip(parsed.dump());                                       // never reached
  }));
  run.push_back(RunScenarioBody("negative", "passes", [](ScenarioContext& s) {
    s.Phase("only", [](PhaseContext&) -> Result<void> { return {}; });
  }));
  ASSERT_EQ(run.size(), 2u);
  EXPECT_EQ(run[0].outcome, Outcome::kError);
  EXPECT_EQ(run[0].message.rfind("an exception escaped the scenario: [json.exception.parse_error.101]", 0),
            0u)
      << run[0].message;
  EXPECT_EQ(run[0].phases.size(), 1u) << "the phases before it are kept";
  EXPECT_EQ(run[1].outcome, Outcome::kPass);
  EXPECT_EQ(OverallOutcome(run), Outcome::kError);
  ScenarioRecord unknown = RunScenarioBody("negative", "throws an int", [](ScenarioContext&) { throw 7; });
  EXPECT_EQ(unknown.message, "an exception that is not a std::exception escaped the scenario");
}

TEST(NotRunScenarioTest, IsAbortedAndSaysTheRunWasInterrupted) {
  ScenarioRecord r = NotRunScenario({"performance", "TPM2_Sign latency", {}});
  EXPECT_EQ(r.suite, "performance");
  EXPECT_EQ(r.name, "TPM2_Sign latency");
  EXPECT_EQ(r.outcome, Outcome::kAborted);
  EXPECT_EQ(r.message, "not run: the run was interrupted");
  EXPECT_TRUE(r.phases.empty());
}

}  // namespace
}  // namespace idevid
