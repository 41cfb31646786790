// The run record as JUnit XML: one testsuite per suite, one testcase per scenario, the unit and
// target as properties.
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "reports/report_writers.h"

namespace idevid {
namespace {

void Property(pugi::xml_node properties, const char* name, const std::string& value) {
  pugi::xml_node p = properties.append_child("property");
  p.append_attribute("name") = name;
  p.append_attribute("value") = value.c_str();
}

std::string Seconds(double ms) { return fmt::format("{:.3f}", ms / 1000.0); }

void AddCase(pugi::xml_node suite, const ScenarioRecord& s) {
  pugi::xml_node tc = suite.append_child("testcase");
  tc.append_attribute("classname") = ("idevid." + s.suite).c_str();
  tc.append_attribute("name") = s.name.c_str();
  tc.append_attribute("time") = Seconds(s.duration_ms).c_str();
  const char* element = s.outcome == Outcome::kFail    ? "failure"
                        : s.outcome == Outcome::kSkip  ? "skipped"
                        : s.outcome == Outcome::kPass  ? nullptr
                                                       : "error";
  if (element != nullptr) {
    pugi::xml_node n = tc.append_child(element);
    n.append_attribute("message") = s.message.c_str();
    if (s.outcome != Outcome::kSkip) n.append_attribute("type") = OutcomeName(s.outcome);
  }
  std::string out;
  for (const auto& p : s.phases) {
    out += fmt::format("{} {} {:.1f} ms {}\n", OutcomeName(p.outcome), p.name, p.duration_ms, p.message);
    for (const auto& m : p.measurements) out += fmt::format("  {} = {} {}\n", m.name, m.value, m.unit);
  }
  tc.append_child("system-out").append_child(pugi::node_pcdata).set_value(out.c_str());
}

}  // namespace

std::string RunRecordJunit(const RunRecord& r) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("testsuites");
  root.append_attribute("name") = "idevid run";
  std::map<std::string, std::vector<const ScenarioRecord*>> suites;
  for (const auto& s : r.scenarios) suites[s.suite].push_back(&s);
  for (const auto& [name, scenarios] : suites) {
    pugi::xml_node suite = root.append_child("testsuite");
    int failures = 0, errors = 0, skipped = 0;
    double ms = 0;
    for (const auto* s : scenarios) {
      failures += s->outcome == Outcome::kFail;
      errors += s->outcome == Outcome::kError || s->outcome == Outcome::kAborted;
      skipped += s->outcome == Outcome::kSkip;
      ms += s->duration_ms;
    }
    suite.append_attribute("name") = name.c_str();
    suite.append_attribute("tests") = static_cast<int>(scenarios.size());
    suite.append_attribute("failures") = failures;
    suite.append_attribute("errors") = errors;
    suite.append_attribute("skipped") = skipped;
    suite.append_attribute("time") = Seconds(ms).c_str();
    pugi::xml_node properties = suite.append_child("properties");
    Property(properties, "serial", r.serial);
    Property(properties, "model", r.model);
    Property(properties, "target", r.target_kind);
    Property(properties, "tpm_manufacturer", r.tpm_manufacturer);
    for (const auto* s : scenarios) AddCase(suite, *s);
  }
  std::ostringstream out;
  doc.save(out, "  ");
  return out.str();
}

}  // namespace idevid
