#include "reports/run_record.h"

#include <cmath>

#include <fmt/format.h>

namespace idevid {

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPass: return "PASS";
    case Outcome::kFail: return "FAIL";
    case Outcome::kError: return "ERROR";
    case Outcome::kSkip: return "SKIP";
    case Outcome::kAborted: return "ABORTED";
  }
  return "ERROR";
}

const char* SeverityName(Severity severity) { return severity == Severity::kWarning ? "warning" : "failure"; }

Outcome OverallOutcome(const std::vector<ScenarioRecord>& scenarios) {
  Outcome overall = Outcome::kPass;
  for (const auto& s : scenarios) {
    if (s.outcome == Outcome::kError || s.outcome == Outcome::kAborted) return s.outcome;
    if (s.outcome == Outcome::kFail) overall = Outcome::kFail;
  }
  return overall;
}

double RunDurationMs(const RunRecord& record) {
  if (record.ended < record.started) return 0;
  return std::chrono::duration<double, std::milli>(record.ended - record.started).count();
}

std::string MeasurementValueText(double value) {
  return std::fabs(value) >= 1000 ? fmt::format("{:.0f}", value) : fmt::format("{:.4g}", value);
}

namespace {

// "10 ms", or "10" for a measurement without a unit.
std::string WithUnit(double value, const std::string& unit) {
  return unit.empty() ? MeasurementValueText(value) : fmt::format("{} {}", MeasurementValueText(value), unit);
}

}  // namespace

std::string LimitsText(const MeasurementRecord& m) {
  if (m.low && m.high) {
    return fmt::format("{} .. {}", MeasurementValueText(*m.low), WithUnit(*m.high, m.unit));
  }
  if (m.high) return "<= " + WithUnit(*m.high, m.unit);
  if (m.low) return ">= " + WithUnit(*m.low, m.unit);
  return "";
}

std::string OutOfLimitsText(const MeasurementRecord& m) {
  std::string measured = fmt::format("{} = {}", m.name, WithUnit(m.value, m.unit));
  if (m.high && !(m.value <= *m.high)) {
    return fmt::format("{} is above its limit of {}", measured, WithUnit(*m.high, m.unit));
  }
  if (m.low && !(m.value >= *m.low)) {
    return fmt::format("{} is below its limit of {}", measured, WithUnit(*m.low, m.unit));
  }
  return "";
}

}  // namespace idevid
