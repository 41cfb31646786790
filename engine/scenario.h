// The scenario engine: a scenario is a sequence of named phases. A phase checks the unit and
// records what its checks found (findings of a Verdict, every one) and its measurements with
// units and limits; or it returns an error when something kept it from checking (a peer gone, a
// timeout, a TPM that does not answer, a process that died). The outcome follows: FAIL only from
// a failed finding or an out-of-limit measurement, ERROR from any error, then PASS or SKIP.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/verdict.h"
#include "reports/run_record.h"

namespace idevid {

class TestedUnit;

class PhaseContext {
 public:
  // Records a measurement; outside [low, high] it fails the phase.
  void Measure(const std::string& name, double value, const std::string& unit,
               std::optional<double> low = std::nullopt, std::optional<double> high = std::nullopt);
  // Records what a check found: `id` is stable ("cloud-refused-unit"), `evidence` says what was
  // seen and what was expected (outside input escaped). A kFailure fails the phase; the phase's
  // body goes on, so that every finding is kept.
  void Finding(std::string id, std::string evidence, Severity severity = Severity::kFailure);
  // Records every finding of a check's verdict.
  void Check(const Verdict& verdict);
  // A check that `text` contains `part`; else the finding `id` quoting what was there.
  void ExpectContains(const std::string& id, const std::string& text, const std::string& part);

  std::vector<MeasurementRecord> measurements;
  Verdict verdict;
};

// A phase: Ok when it could make its checks (their verdict is in the PhaseContext), an error when
// it could not (any error is an ERROR of the phase, never a FAIL).
using PhaseBody = std::function<Result<void>(PhaseContext&)>;

class ScenarioContext {
 public:
  // `on_phase`, when set, hears the name of each phase as it starts (live progress).
  explicit ScenarioContext(ScenarioRecord& record, std::function<void(const std::string&)> on_phase = {})
      : record_(record), on_phase_(std::move(on_phase)) {}
  // Runs one phase unless an earlier one did not pass. An error (or an exception escaping the
  // body) is an ERROR of the phase; otherwise a failed finding or a measurement outside its
  // limits is a FAIL. Returns whether the phase passed.
  bool Phase(const std::string& name, const PhaseBody& body);
  // Samples for the report's charts (e.g. handshake latencies in ms).
  void Series(const std::string& name, std::vector<double> samples);
  // Marks the scenario SKIP with the reason (a target that cannot run it).
  void Skip(const std::string& reason);
  // Ends the scenario as ERROR with `message` (what escaped it outside any phase).
  void Abandon(const std::string& message);

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
// `on_phase` as for ScenarioContext. An exception that escapes the scenario ends it as ERROR
// with its message; it never escapes this function.
ScenarioRecord RunScenario(const Scenario& scenario, TestedUnit& unit,
                           std::function<void(const std::string&)> on_phase = {});
// RunScenario of a body that is given only its ScenarioContext (the unit bound already).
ScenarioRecord RunScenarioBody(const std::string& suite, const std::string& name,
                               const std::function<void(ScenarioContext&)>& body,
                               std::function<void(const std::string&)> on_phase = {});

// The record of a scenario an interrupt left unrun: ABORTED with kNotRunMessage, no phases.
ScenarioRecord NotRunScenario(const Scenario& scenario);

}  // namespace idevid
