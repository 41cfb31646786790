#include "engine/scenario.h"

#include <chrono>
#include <exception>

#include <fmt/format.h>

#include "core/display_text.h"

namespace idevid {
namespace {

double MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// What an exception that escaped `where` says, its what() escaped (it may quote outside input).
std::string EscapedExceptionText(const std::string& where) {
  try {
    throw;
  } catch (const std::exception& e) {
    return fmt::format("an exception escaped {}: {}", where, DisplayText(e.what()));
  } catch (...) {
    return fmt::format("an exception that is not a std::exception escaped {}", where);
  }
}

// Why the body could not make its checks (its error, or an exception that escaped it), or
// nullopt when it made them.
std::optional<std::string> RunBody(const PhaseBody& body, PhaseContext& phase) {
  try {
    Result<void> result = body(phase);
    if (!result) return result.error().message();
    return std::nullopt;
  } catch (...) {
    return EscapedExceptionText("the phase");
  }
}

// "; "-joins `part` onto `text`.
void Append(std::string& text, const std::string& part) {
  if (part.empty()) return;
  text += text.empty() ? part : "; " + part;
}

}  // namespace

void PhaseContext::Measure(const std::string& name, double value, const std::string& unit,
                           std::optional<double> low, std::optional<double> high) {
  bool passed = (!low || value >= *low) && (!high || value <= *high);
  measurements.push_back({name, value, unit, low, high, passed});
}

void PhaseContext::Finding(std::string id, std::string evidence, Severity severity) {
  verdict.Add(std::move(id), std::move(evidence), severity);
}

void PhaseContext::Check(const Verdict& other) { verdict.Merge(other); }

void PhaseContext::ExpectContains(const std::string& id, const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return;
  Finding(id, fmt::format("expected {} in: {}", QuotedDisplayText(part), DisplayText(text, 400)));
}

bool ScenarioContext::Phase(const std::string& name, const PhaseBody& body) {
  if (stopped_) return false;
  if (on_phase_) on_phase_(name);
  PhaseContext phase;
  auto start = std::chrono::steady_clock::now();
  std::optional<std::string> error = RunBody(body, phase);
  PhaseRecord p{name,
                Outcome::kPass,
                "",
                MillisecondsSince(start),
                std::move(phase.measurements),
                phase.verdict.findings()};
  if (error) {
    p.outcome = Outcome::kError;  // the checks could not be made: never a verdict on the unit
    p.message = *error;
    record_.failure_codes.push_back(name);
  }
  for (const auto& f : p.findings) {
    if (f.severity != Severity::kFailure) continue;
    if (p.outcome == Outcome::kPass) p.outcome = Outcome::kFail;
    record_.failure_codes.push_back(name + "." + f.id);
  }
  Append(p.message, phase.verdict.FailureText());
  for (const auto& m : p.measurements) {
    if (m.passed) continue;
    if (p.outcome == Outcome::kPass) p.outcome = Outcome::kFail;
    Append(p.message, OutOfLimitsText(m));
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

void ScenarioContext::Abandon(const std::string& message) {
  record_.outcome = Outcome::kError;
  record_.message = message;
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
  return RunScenarioBody(
      scenario.suite, scenario.name, [&](ScenarioContext& context) { scenario.run(unit, context); },
      std::move(on_phase));
}

ScenarioRecord RunScenarioBody(const std::string& suite, const std::string& name,
                               const std::function<void(ScenarioContext&)>& body,
                               std::function<void(const std::string&)> on_phase) {
  ScenarioRecord record;
  record.suite = suite;
  record.name = name;
  auto start = std::chrono::steady_clock::now();
  ScenarioContext context(record, std::move(on_phase));
  try {
    body(context);
  } catch (...) {
    context.Abandon(EscapedExceptionText("the scenario"));
  }
  record.duration_ms = MillisecondsSince(start);
  return record;
}

}  // namespace idevid
