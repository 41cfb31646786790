// The run record as JUnit XML: one testsuite per suite, one testcase per scenario, the unit and
// target as properties. A run that did not pass always shows a <failure> or an <error>: what went
// wrong before or around the scenarios is a testcase of its own (suite "idevid run", name "run"),
// and a scenario an interrupt left unrun is an <error>.
#include <algorithm>
#include <map>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "reports/report_writers.h"

namespace idevid {
namespace {

constexpr const char* kRunSuite = "idevid run";

void Property(pugi::xml_node properties, const char* name, const std::string& value) {
  pugi::xml_node p = properties.append_child("property");
  p.append_attribute("name") = name;
  p.append_attribute("value") = value.c_str();
}

std::string Seconds(double ms) { return fmt::format("{:.3f}", ms / 1000.0); }

// The tests/failures/errors/skipped/time attributes of a testsuite or testsuites.
struct Counts {
  int tests = 0, failures = 0, errors = 0, skipped = 0;
  double ms = 0;

  void Add(const ScenarioRecord& s) {
    ++tests;
    failures += s.outcome == Outcome::kFail;
    errors += s.outcome == Outcome::kError || s.outcome == Outcome::kAborted;
    skipped += s.outcome == Outcome::kSkip;
    ms += s.duration_ms;
  }
  void Add(const Counts& c) {
    tests += c.tests, failures += c.failures, errors += c.errors, skipped += c.skipped, ms += c.ms;
  }
  void WriteTo(pugi::xml_node node) const {
    node.append_attribute("tests") = tests;
    node.append_attribute("failures") = failures;
    node.append_attribute("errors") = errors;
    node.append_attribute("skipped") = skipped;
    node.append_attribute("time") = Seconds(ms).c_str();
  }
};

// Every finding of the scenario's phases, one a line: "phase: failure id: evidence".
std::string FindingsText(const ScenarioRecord& s) {
  std::string text;
  for (const auto& p : s.phases) {
    for (const auto& f : p.findings) {
      text += fmt::format("{}: {} {}: {}\n", p.name, SeverityName(f.severity), f.id, f.evidence);
    }
  }
  return text;
}

void AddCase(pugi::xml_node suite, const std::string& classname, const ScenarioRecord& s) {
  pugi::xml_node tc = suite.append_child("testcase");
  tc.append_attribute("classname") = classname.c_str();
  tc.append_attribute("name") = s.name.c_str();
  tc.append_attribute("time") = Seconds(s.duration_ms).c_str();
  const char* element = s.outcome == Outcome::kFail   ? "failure"
                        : s.outcome == Outcome::kSkip ? "skipped"
                        : s.outcome == Outcome::kPass ? nullptr
                                                      : "error";
  if (element != nullptr) {
    pugi::xml_node n = tc.append_child(element);
    n.append_attribute("message") = s.message.c_str();
    if (s.outcome != Outcome::kSkip) n.append_attribute("type") = OutcomeName(s.outcome);
    std::string findings = FindingsText(s);
    if (s.outcome != Outcome::kSkip && !findings.empty()) {
      n.append_child(pugi::node_pcdata).set_value(findings.c_str());
    }
  }
  std::string out;
  for (const auto& p : s.phases) {
    out += fmt::format("{} {} {:.1f} ms {}\n", OutcomeName(p.outcome), p.name, p.duration_ms, p.message);
    for (const auto& m : p.measurements) {
      std::string limits = LimitsText(m);
      out += fmt::format("  {} = {} {}{}\n", m.name, MeasurementValueText(m.value), m.unit,
                         limits.empty() ? "" : " (limit " + limits + ")");
    }
  }
  if (!out.empty()) tc.append_child("system-out").append_child(pugi::node_pcdata).set_value(out.c_str());
}

// The run itself as a testcase, when it did not pass and the scenarios do not say all of why:
// an error or a failed check before the scenarios (no scenario ran), an interrupt, or an outcome
// no scenario carries.
std::optional<ScenarioRecord> RunCase(const RunRecord& r) {
  if (r.outcome == Outcome::kPass || r.outcome == Outcome::kSkip) return std::nullopt;
  bool a_scenario_says = std::any_of(r.scenarios.begin(), r.scenarios.end(), [](const ScenarioRecord& s) {
    return s.outcome == Outcome::kFail || s.outcome == Outcome::kError || s.outcome == Outcome::kAborted;
  });
  if (a_scenario_says && r.message.empty()) return std::nullopt;
  std::string message =
      r.message.empty() ? fmt::format("the run ended {}", OutcomeName(r.outcome)) : r.message;
  return ScenarioRecord{kRunSuite, "run", r.outcome, message, RunDurationMs(r), {}, {}, {}};
}

// One testsuite of `scenarios`, with the unit and target as properties; returns its counts.
Counts AddSuite(pugi::xml_node root, const RunRecord& r, const std::string& name,
                const std::vector<const ScenarioRecord*>& scenarios) {
  pugi::xml_node suite = root.append_child("testsuite");
  suite.append_attribute("name") = name.c_str();
  Counts counts;
  for (const auto* s : scenarios) counts.Add(*s);
  counts.WriteTo(suite);
  pugi::xml_node properties = suite.append_child("properties");
  Property(properties, "serial", r.serial);
  Property(properties, "model", r.model);
  Property(properties, "target", r.target_kind);
  Property(properties, "tpm_manufacturer", r.tpm_manufacturer);
  Property(properties, "software_version", r.software_version);
  for (const auto* s : scenarios) AddCase(suite, name == kRunSuite ? kRunSuite : "idevid." + s->suite, *s);
  return counts;
}

}  // namespace

std::string RunRecordJunit(const RunRecord& r) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("testsuites");
  root.append_attribute("name") = kRunSuite;
  std::optional<ScenarioRecord> run_case = RunCase(r);
  std::map<std::string, std::vector<const ScenarioRecord*>> suites;
  for (const auto& s : r.scenarios) suites[s.suite].push_back(&s);
  Counts total;
  if (run_case) total.Add(AddSuite(root, r, kRunSuite, {&*run_case}));
  for (const auto& [name, scenarios] : suites) total.Add(AddSuite(root, r, name, scenarios));
  total.ms = RunDurationMs(r);  // the run's wall time, not the sum of the suites'
  total.WriteTo(root);
  std::ostringstream out;
  doc.save(out, "  ");
  return out.str();
}

}  // namespace idevid
