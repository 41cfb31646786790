// The scenario engine: a scenario is a sequence of named phases; each phase returns an error or
// records measurements with units and limits; the outcome follows (PASS, FAIL, ERROR, SKIP).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "reports/run_record.h"

namespace idevid {

class TestedUnit;

class PhaseContext {
 public:
  // Records a measurement; outside [low, high] it fails the phase.
  void Measure(const std::string& name, double value, const std::string& unit,
               std::optional<double> low = std::nullopt, std::optional<double> high = std::nullopt);
  std::vector<MeasurementRecord> measurements;
};

using PhaseBody = std::function<Result<void>(PhaseContext&)>;

class ScenarioContext {
 public:
  // `on_phase`, when set, hears the name of each phase as it starts (live progress).
  explicit ScenarioContext(ScenarioRecord& record, std::function<void(const std::string&)> on_phase = {})
      : record_(record), on_phase_(std::move(on_phase)) {}
  // Runs one phase unless an earlier one did not pass; a kVerify or kTls error is a FAIL (the
  // identity did not behave), any other error an ERROR (the bench did not). Returns whether
  // the phase passed.
  bool Phase(const std::string& name, const PhaseBody& body);
  // Samples for the report's charts (e.g. handshake latencies in ms).
  void Series(const std::string& name, std::vector<double> samples);
  // Marks the scenario SKIP with the reason (a target that cannot run it).
  void Skip(const std::string& reason);

 private:
  ScenarioRecord& record_;
  std::function<void(const std::string&)> on_phase_;
  bool stopped_ = false;
};

struct Scenario {
  std::string suite;
  std::string name;
  std::function<void(TestedUnit&, ScenarioContext&)> run;
};

// Runs a scenario into a record: outcome from its phases, failure codes from what failed;
// `on_phase` as for ScenarioContext.
ScenarioRecord RunScenario(const Scenario& scenario, TestedUnit& unit,
                           std::function<void(const std::string&)> on_phase = {});

// The record of a scenario an interrupt left unrun: ABORTED with kNotRunMessage, no phases.
ScenarioRecord NotRunScenario(const Scenario& scenario);

}  // namespace idevid
