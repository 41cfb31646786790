// The scenario engine without a TPM: phases, measurements against their limits, and what a
// failed limit says.
#include "engine/scenario.h"

#include <gtest/gtest.h>

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
  EXPECT_EQ(record.phases.at(0).message, "ratio_tpm_to_file_rate = 0.125 ratio is below its limit of 0.25 ratio");
}

TEST(ScenarioContextTest, AnErrorAndABrokenLimitAreBothSaid) {
  ScenarioRecord record;
  ScenarioContext s(record);
  s.Phase("soak", [](PhaseContext& p) -> Result<void> {
    p.Measure("failures", 3, "count", std::nullopt, 0.0);
    return Fail(ErrorDomain::kProcess, 0, "pkid died");
  });
  EXPECT_EQ(record.outcome, Outcome::kError);
  EXPECT_EQ(record.phases.at(0).message, "pkid died; failures = 3 count is above its limit of 0 count");
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
