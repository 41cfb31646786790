// performance: handshake latency in both modes, sign latency, boot-load time, with limits.
#include "core/tpm_key_signer.h"
#include "core/tss_error.h"
#include "device/pkid/node_local_store.h"
#include "device/ssli/ssli_client.h"
#include "engine/tested_unit.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

using scenarios::Quantile;
using Clock = std::chrono::steady_clock;

constexpr int kHandshakes = 50;

// A measurement bounded by the bench's limit `limit` (see PerformanceLimits).
void MeasureWithin(PhaseContext& p, const TestedUnit& unit, const std::string& name, double value,
                   const std::string& unit_name, const std::string& limit) {
  Limit bound = unit.options().limits.Get(limit);
  p.Measure(name, value, unit_name, bound.low, bound.high);
}

double Ms(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// kHandshakes sessions with one client of `profile`; their latencies in ms. A session the cloud
// refuses is a finding of `p` and ends the sampling (empty samples).
Result<std::vector<double>> Latencies(PhaseContext& p, TestedUnit& unit, const std::string& profile) {
  IDEVID_ASSIGN_OR_RETURN(auto client, SsliClient::Create({&unit.config(), profile, std::nullopt, unit.tcti(),
                                                           "127.0.0.1", unit.cloud().port()}));
  std::vector<double> samples;
  for (int i = 0; i < kHandshakes; ++i) {
    auto start = Clock::now();
    IDEVID_ASSIGN_OR_RETURN(SsliResult result, client->Connect(), "session {} of {}", i + 1, kHandshakes);
    if (!result.accepted()) {
      IDEVID_TRY(scenarios::CheckAccepted(p, result));
      return std::vector<double>{};
    }
    samples.push_back(Ms(start));
  }
  return samples;
}

void HandshakeLatency(TestedUnit& unit, ScenarioContext& s) {
  std::vector<double> tpm, file;
  s.Phase("TPM-mode handshakes", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(tpm, Latencies(p, unit, "aamw-tpm"));
    if (tpm.empty()) return {};
    MeasureWithin(p, unit, "p50", Quantile(tpm, 0.5), "ms", "handshake_tpm_p50_ms");
    MeasureWithin(p, unit, "p95", Quantile(tpm, 0.95), "ms", "handshake_tpm_p95_ms");
    return {};
  });
  s.Phase("file-mode handshakes", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(file, Latencies(p, unit, "aamw-file"));
    if (file.empty()) return {};
    MeasureWithin(p, unit, "p50", Quantile(file, 0.5), "ms", "handshake_file_p50_ms");
    MeasureWithin(p, unit, "p95", Quantile(file, 0.95), "ms", "handshake_file_p95_ms");
    return {};
  });
  s.Phase("TPM mode against file mode", [&](PhaseContext& p) -> Result<void> {
    MeasureWithin(p, unit, "ratio_tpm_to_file_rate", Quantile(file, 0.5) / Quantile(tpm, 0.5), "ratio",
                  "tpm_to_file_rate_min");
    return {};
  });
  s.Series("TPM mode", tpm);
  s.Series("file mode", file);
}

void SignLatency(TestedUnit& unit, ScenarioContext& s) {
  s.Phase("100 ECDSA P-256 signatures in the TPM", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(auto signer, TpmKeySigner::Open(unit.tcti(), unit.config().idevid.key_handle));
    std::vector<double> samples;
    Bytes digest(32, 0x11);
    for (int i = 0; i < 100; ++i) {
      auto start = Clock::now();
      IDEVID_TRY(signer->Sign(SignScheme::kEcdsa, "SHA256", digest), "signature {} of 100", i + 1);
      samples.push_back(Ms(start));
    }
    MeasureWithin(p, unit, "p50", Quantile(samples, 0.5), "ms", "sign_p50_ms");
    MeasureWithin(p, unit, "p95", Quantile(samples, 0.95), "ms", "sign_p95_ms");
    return {};
  });
}

void BootLoadTime(TestedUnit& unit, ScenarioContext& s) {
  s.Phase("10 loads of idev-id from the TPM", [&](PhaseContext& p) -> Result<void> {
    // A TPM that does not answer keeps the figure from being made; an identity that does not
    // load is the unit's (the boot-load suite says why).
    std::vector<double> samples;
    for (int i = 0; i < 10; ++i) {
      auto start = Clock::now();
      StoreEntry entry =
          LoadIdevidEntry(unit.config().idevid, unit.tcti(), [] { return std::chrono::system_clock::now(); });
      if (entry.status.tpm_unreachable) return FailTss(TSS2_BASE_RC_IO_ERROR, entry.status.error);
      if (!entry.status.loaded) {
        p.Finding("idevid-not-loaded", entry.status.error);
        return {};
      }
      samples.push_back(Ms(start));
    }
    MeasureWithin(p, unit, "median", Quantile(samples, 0.5), "ms", "boot_load_median_ms");
    return {};
  });
}

}  // namespace

std::vector<Scenario> PerformanceSuite() {
  return {{"performance", "handshake latency, TPM mode and file mode", HandshakeLatency},
          {"performance", "TPM2_Sign latency", SignLatency},
          {"performance", "boot-load time", BootLoadTime}};
}

std::vector<Scenario> AllScenarios() {
  std::vector<Scenario> all;
  for (auto suite : {BootLoadSuite(), VerifyRefusalSuite(), SsliSuites(), NegativeSuite(), FaultsSuite(),
                     EnrolmentSuite(), AttestationSuite(), PerformanceSuite(), SoakSuite()}) {
    all.insert(all.end(), suite.begin(), suite.end());
  }
  return all;
}

std::vector<std::string> SuiteNames() {
  return {"boot-load", "verify-refusal", "ssli-tpm",    "ssli-file",   "negative",
          "faults",    "enrolment",      "attestation", "performance", "soak"};
}

std::vector<std::string> OnRequestSuites() { return {"soak"}; }

}  // namespace idevid
