// The record of one harness run, shaped like a manufacturing test record: the unit, the target,
// and per scenario its phases with measurements (value, unit, limits, outcome). Never a key.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/verdict.h"

namespace idevid {

// 2: each phase carries the findings of its checks ("findings": [{id, severity, evidence}]).
inline constexpr int kRunRecordVersion = 2;

enum class Outcome { kPass, kFail, kError, kSkip, kAborted };

// "PASS", "FAIL", "ERROR", "SKIP", "ABORTED".
const char* OutcomeName(Outcome outcome);

struct MeasurementRecord {
  std::string name;
  double value = 0;
  std::string unit;           // "ms", "1/s", "count", ...
  std::optional<double> low;  // inclusive limits, when the measurement has any
  std::optional<double> high;
  bool passed = true;
};

struct PhaseRecord {
  std::string name;
  Outcome outcome = Outcome::kPass;
  std::string message;  // why it failed, was skipped or errored
  double duration_ms = 0;
  std::vector<MeasurementRecord> measurements;
  std::vector<Finding> findings;  // what its checks found, every one (failures and warnings)
};

struct ScenarioRecord {
  std::string suite;
  std::string name;
  Outcome outcome = Outcome::kPass;
  std::string message;
  double duration_ms = 0;
  std::vector<PhaseRecord> phases;
  std::vector<std::string> failure_codes;             // the failed phases and measurements
  std::map<std::string, std::vector<double>> series;  // samples for charts, e.g. latencies
};

struct RunRecord {
  std::string serial;
  std::string model;
  std::string station;
  std::string operator_name;
  std::string software_version;
  std::string target_kind;  // "swtpm", "device", a TCTI
  std::string tpm_manufacturer;
  std::string tpm_firmware;
  std::map<std::string, std::string> identity;  // fingerprint, subject, issuer, ek fingerprint
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point ended;
  Outcome outcome = Outcome::kPass;
  std::string message;  // for ERROR / ABORTED runs
  std::string shard;    // "1/2" or empty
  std::vector<ScenarioRecord> scenarios;
};

// PASS when every scenario passed or was skipped; FAIL when one failed; ERROR when one errored.
Outcome OverallOutcome(const std::vector<ScenarioRecord>& scenarios);

// The run's wall time in ms, from started to ended (0 when it has not ended).
double RunDurationMs(const RunRecord& record);

// The message of a scenario that an interrupt left unrun.
inline constexpr const char* kNotRunMessage = "not run: the run was interrupted";

// A measured value as the reports print it: four significant digits, whole numbers from 1000.
std::string MeasurementValueText(double value);

// A measurement's limits in words: "<= 10 ms", ">= 0.2 ratio", "1 .. 5 count"; empty without any.
std::string LimitsText(const MeasurementRecord& m);

// Why a measurement is outside its limits, naming the limit it broke:
// "p95 = 11.89 ms is above its limit of 10 ms" ("below" for a lower limit); empty when within them.
std::string OutOfLimitsText(const MeasurementRecord& m);

// "failure" or "warning": a finding's severity as the records write it.
const char* SeverityName(Severity severity);

}  // namespace idevid
