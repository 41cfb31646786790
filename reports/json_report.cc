// The run record as versioned JSON.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include "core/utc_time.h"
#include "reports/report_writers.h"

namespace idevid {
namespace {

nlohmann::json MeasurementJson(const MeasurementRecord& m) {
  nlohmann::json j = {
      {"name", m.name}, {"value", m.value}, {"unit", m.unit}, {"outcome", m.passed ? "PASS" : "FAIL"}};
  if (m.low) j["low_limit"] = *m.low;
  if (m.high) j["high_limit"] = *m.high;
  return j;
}

nlohmann::json FindingsJson(const std::vector<Finding>& findings) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& f : findings) {
    j.push_back({{"id", f.id}, {"severity", SeverityName(f.severity)}, {"evidence", f.evidence}});
  }
  return j;
}

nlohmann::json ScenarioJson(const ScenarioRecord& s) {
  nlohmann::json phases = nlohmann::json::array();
  for (const auto& p : s.phases) {
    nlohmann::json measurements = nlohmann::json::array();
    for (const auto& m : p.measurements) measurements.push_back(MeasurementJson(m));
    phases.push_back({{"name", p.name},
                      {"outcome", OutcomeName(p.outcome)},
                      {"message", p.message},
                      {"duration_ms", p.duration_ms},
                      {"measurements", measurements},
                      {"findings", FindingsJson(p.findings)}});
  }
  return {{"suite", s.suite},
          {"name", s.name},
          {"outcome", OutcomeName(s.outcome)},
          {"message", s.message},
          {"duration_ms", s.duration_ms},
          {"phases", phases},
          {"failure_codes", s.failure_codes},
          {"series", s.series}};
}

}  // namespace

nlohmann::json RunRecordJson(const RunRecord& r) {
  nlohmann::json scenarios = nlohmann::json::array();
  for (const auto& s : r.scenarios) scenarios.push_back(ScenarioJson(s));
  return {
      {"record_version", kRunRecordVersion},
      {"kind", "run"},
      {"unit", {{"serial", r.serial}, {"model", r.model}}},
      {"station", r.station},
      {"operator", r.operator_name},
      {"software_version", r.software_version},
      {"target",
       {{"kind", r.target_kind}, {"tpm_manufacturer", r.tpm_manufacturer}, {"tpm_firmware", r.tpm_firmware}}},
      {"identity", r.identity},
      {"shard", r.shard},
      {"started_at", UtcTimestamp(r.started)},
      {"ended_at", UtcTimestamp(r.ended)},
      {"duration_ms", RunDurationMs(r)},
      {"outcome", OutcomeName(r.outcome)},
      {"message", r.message},
      {"scenarios", scenarios}};
}

}  // namespace idevid
