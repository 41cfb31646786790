#include "engine/scenario.h"

#include <chrono>

#include <fmt/format.h>

namespace idevid {
namespace {

double MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void PhaseContext::Measure(const std::string& name, double value, const std::string& unit,
                           std::optional<double> low, std::optional<double> high) {
  bool passed = (!low || value >= *low) && (!high || value <= *high);
  measurements.push_back({name, value, unit, low, high, passed});
}

bool ScenarioContext::Phase(const std::string& name, const PhaseBody& body) {
  if (stopped_) return false;
  if (on_phase_) on_phase_(name);
  PhaseContext phase;
  auto start = std::chrono::steady_clock::now();
  Result<void> result = body(phase);
  PhaseRecord p{name, Outcome::kPass, "", MillisecondsSince(start), std::move(phase.measurements)};
  if (!result) {
    bool check_failed = result.error().domain() == ErrorDomain::kVerify ||
                        result.error().domain() == ErrorDomain::kTls;
    p.outcome = check_failed ? Outcome::kFail : Outcome::kError;
    p.message = result.error().message();
    record_.failure_codes.push_back(name);
  }
  for (const auto& m : p.measurements) {
    if (m.passed) continue;
    p.outcome = p.outcome == Outcome::kPass ? Outcome::kFail : p.outcome;
    p.message += fmt::format("{}{}", p.message.empty() ? "" : "; ", OutOfLimitsText(m));
    record_.failure_codes.push_back(name + "." + m.name);
  }
  if (p.outcome != Outcome::kPass) {
    if (record_.outcome == Outcome::kPass) {
      record_.outcome = p.outcome;
      record_.message = fmt::format("{}: {}", name, p.message);
    }
    stopped_ = true;
  }
  record_.phases.push_back(std::move(p));
  return !stopped_;
}

void ScenarioContext::Series(const std::string& name, std::vector<double> samples) {
  record_.series[name] = std::move(samples);
}

void ScenarioContext::Skip(const std::string& reason) {
  record_.outcome = Outcome::kSkip;
  record_.message = reason;
  stopped_ = true;
}

ScenarioRecord NotRunScenario(const Scenario& scenario) {
  ScenarioRecord record;
  record.suite = scenario.suite;
  record.name = scenario.name;
  record.outcome = Outcome::kAborted;
  record.message = kNotRunMessage;
  return record;
}

ScenarioRecord RunScenario(const Scenario& scenario, TestedUnit& unit,
                           std::function<void(const std::string&)> on_phase) {
  ScenarioRecord record;
  record.suite = scenario.suite;
  record.name = scenario.name;
  auto start = std::chrono::steady_clock::now();
  ScenarioContext context(record, std::move(on_phase));
  scenario.run(unit, context);
  record.duration_ms = MillisecondsSince(start);
  return record;
}

}  // namespace idevid
