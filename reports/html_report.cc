// The run record as one HTML page: a summary, a table per suite, measurements, and latency
// histograms as inline SVG, so the page opens offline.
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "core/utc_time.h"
#include "reports/html_escape.h"
#include "reports/report_writers.h"

namespace idevid {
namespace {

std::string Badge(Outcome o) {
  const char* color = o == Outcome::kPass ? "#2e7d32" : o == Outcome::kSkip ? "#757575" : "#c62828";
  return fmt::format("<span style=\"color:{};font-weight:bold\">{}</span>", color, OutcomeName(o));
}

// Overlaid histograms of several series (ms) in one SVG, one color per series.
std::string Histogram(const std::string& title, const std::map<std::string, std::vector<double>>& series) {
  double max = 0;
  for (const auto& [_, v] : series) {
    for (double x : v) max = std::max(max, x);
  }
  if (max <= 0) return "";
  constexpr int kBins = 30, kWidth = 600, kHeight = 200;
  const char* colors[] = {"#1565c0", "#ef6c00", "#6a1b9a", "#2e7d32"};
  std::string bars;
  int color = 0;
  std::size_t tallest = 1;
  std::map<std::string, std::vector<std::size_t>> counts;
  for (const auto& [name, v] : series) {
    auto& c = counts[name];
    c.assign(kBins, 0);
    for (double x : v) c[std::min(kBins - 1, static_cast<int>(x / max * kBins))]++;
    tallest = std::max(tallest, *std::max_element(c.begin(), c.end()));
  }
  std::string legend;
  for (const auto& [name, c] : counts) {
    double w = static_cast<double>(kWidth) / kBins / static_cast<double>(counts.size());
    for (int b = 0; b < kBins; ++b) {
      double h = static_cast<double>(c[b]) / static_cast<double>(tallest) * kHeight;
      bars += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>",
                          b * kWidth / static_cast<double>(kBins) + color * w, kHeight - h, w, h,
                          colors[color % 4]);
    }
    legend += fmt::format("<tspan fill=\"{}\">&#9632; {} ({} samples)</tspan> ", colors[color % 4],
                          HtmlEscape(name), series.at(name).size());
    ++color;
  }
  return fmt::format(
      "<h3>{}</h3><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "role=\"img\"><rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>{}"
      "<line x1=\"0\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>"
      "<text x=\"0\" y=\"{}\" font-size=\"12\">0 ms</text>"
      "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">{:.1f} ms</text>"
      "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text></svg>",
      HtmlEscape(title), kWidth, kHeight + 40, bars, kHeight, kWidth, kHeight, kHeight + 15, kWidth,
      kHeight + 15, max, kHeight + 32, legend);
}

// One measurement, named after its phase (which tells TPM mode from file mode), with its limits;
// one outside them says which limit it broke, in red.
std::string MeasurementLine(const PhaseRecord& p, const MeasurementRecord& m) {
  std::string limits = LimitsText(m);
  std::string text = fmt::format("{} = {} {}{}", m.name, MeasurementValueText(m.value), m.unit,
                                 limits.empty() ? "" : " (limit " + limits + ")");
  if (m.passed) return fmt::format("{}: {}<br>", HtmlEscape(p.name), HtmlEscape(text));
  std::string broken = OutOfLimitsText(m);
  return fmt::format("{}: <span style=\"color:#c62828\">{}</span><br>", HtmlEscape(p.name),
                     HtmlEscape(broken.empty() ? text + " is outside its limits" : broken));
}

// One finding under its phase's name: its id in bold (red for a failure), then its evidence.
std::string FindingLine(const PhaseRecord& p, const Finding& f) {
  const char* color = f.severity == Severity::kFailure ? "#c62828" : "#ef6c00";
  return fmt::format("{}: <b style=\"color:{}\">{}</b> {}<br>", HtmlEscape(p.name), color, HtmlEscape(f.id),
                     HtmlEscape(f.evidence));
}

std::string SuiteTable(const std::string& suite, const std::vector<const ScenarioRecord*>& scenarios) {
  std::string rows;
  for (const auto* s : scenarios) {
    std::string measurements, findings;
    for (const auto& p : s->phases) {
      for (const auto& m : p.measurements) measurements += MeasurementLine(p, m);
      for (const auto& f : p.findings) findings += FindingLine(p, f);
    }
    rows += fmt::format("<tr><td>{}</td><td>{}</td><td>{:.0f} ms</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        HtmlEscape(s->name), Badge(s->outcome), s->duration_ms, HtmlEscape(s->message),
                        findings, measurements);
  }
  return fmt::format(
      "<h2>{}</h2><table><tr><th>scenario</th><th>outcome</th><th>time</th>"
      "<th>message</th><th>findings</th><th>measurements</th></tr>{}</table>",
      HtmlEscape(suite), rows);
}

// When the run was, how long it took and which idevid made it.
std::string RunRows(const RunRecord& r) {
  return fmt::format(
      "<tr><th>date</th><td>{}</td></tr><tr><th>duration</th><td>{:.1f} s (ended {})</td></tr>"
      "<tr><th>idevid version</th><td>{}</td></tr>",
      HtmlEscape(UtcTimestamp(r.started)), RunDurationMs(r) / 1000.0, HtmlEscape(UtcTimestamp(r.ended)),
      HtmlEscape(r.software_version));
}

}  // namespace

std::string RunRecordHtml(const RunRecord& r) {
  std::map<std::string, std::vector<const ScenarioRecord*>> suites;
  std::map<std::string, std::vector<double>> latencies;
  int passed = 0;
  for (const auto& s : r.scenarios) {
    suites[s.suite].push_back(&s);
    passed += s.outcome == Outcome::kPass;
    for (const auto& [name, samples] : s.series) latencies[name] = samples;
  }
  std::string body;
  for (const auto& [suite, scenarios] : suites) body += SuiteTable(suite, scenarios);
  std::string identity;
  for (const auto& [k, v] : r.identity)
    identity += fmt::format("<tr><th>{}</th><td>{}</td></tr>", HtmlEscape(k), HtmlEscape(v));
  return fmt::format(
      "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>idevid run {} {}</title>"
      "<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1em}}"
      "td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}</style></head>"
      "<body><h1>idevid run: {}</h1><table>"
      "<tr><th>unit</th><td>{} ({})</td></tr><tr><th>target</th><td>{} ({} firmware {})</td></tr>"
      "<tr><th>station</th><td>{}</td></tr>{}<tr><th>scenarios</th><td>{} of {} passed</td></tr>"
      "<tr><th>message</th><td>{}</td></tr>{}</table>{}{}</body></html>\n",
      HtmlEscape(r.serial), OutcomeName(r.outcome), Badge(r.outcome), HtmlEscape(r.serial),
      HtmlEscape(r.model), HtmlEscape(r.target_kind), HtmlEscape(r.tpm_manufacturer),
      HtmlEscape(r.tpm_firmware), HtmlEscape(r.station), RunRows(r), passed, r.scenarios.size(),
      HtmlEscape(r.message), identity, body,
      Histogram("Handshake latency, TPM mode vs file mode", latencies));
}

}  // namespace idevid
