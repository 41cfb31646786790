#include "bench/bench_report.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "core/utc_time.h"
#include "reports/html_escape.h"

namespace idevid {
namespace {

std::string RatioText(const Comparison& c) { return c.ratio ? fmt::format("{:.2f}", *c.ratio) : "-"; }

// A figure in JSON: the number, or null when it was not measured.
nlohmann::json MeasuredOrNull(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

std::string TargetText(const ComparisonSpec& spec) {
  if (!spec.target) return "-";
  return fmt::format(">= {:.2f}{}", *spec.target, spec.gated ? "" : " (reported)");
}

nlohmann::json FigureJson(const BenchFigure& f) {
  nlohmann::json j = {
      {"name", f.name},
      {"unit", f.unit},
      {"per_second", MeasuredOrNull(f.error.empty() ? std::optional<double>(f.per_second) : std::nullopt)},
      {"threads", f.threads},
      {"iterations", f.iterations}};
  if (f.per_second > 0) j["ms_per_operation"] = 1000.0 * f.threads / f.per_second;
  if (!f.error.empty()) j["error"] = f.error;
  return j;
}

nlohmann::json ComparisonJson(const Comparison& c) {
  nlohmann::json j = {{"title", c.spec.title},
                      {"ours", c.spec.ours},
                      {"comparator", c.spec.comparator.empty() ? "budget" : c.spec.comparator},
                      {"ours_per_second", MeasuredOrNull(c.ours_per_second)},
                      {"comparator_per_second", MeasuredOrNull(c.comparator_per_second)},
                      {c.spec.ratio_name, MeasuredOrNull(c.ratio)},
                      {"status", TargetStatusName(c.status)},
                      {"gated", c.spec.gated}};
  if (c.spec.target) j["target"] = *c.spec.target;
  if (!c.spec.note.empty()) j["note"] = c.spec.note;
  return j;
}

// One chart: the rates of ours (in blue) and its comparators under one title.
struct Chart {
  std::string title, unit, ours;
  std::vector<std::pair<std::string, double>> bars;  // figure name, rate
};

// The chart as inline SVG, bars scaled to the largest.
std::string ChartSvg(const Chart& chart) {
  double max = 0;
  for (const auto& [_, v] : chart.bars) max = std::max(max, v);
  if (max <= 0) return "";
  constexpr int kLabel = 220, kWidth = 360, kRow = 22;
  std::string rects;
  int y = 0;
  for (const auto& [name, v] : chart.bars) {
    double w = std::max(v / max * kWidth, 1.0);
    rects += fmt::format(
        "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text>"
        "<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\"/>"
        "<text x=\"{:.1f}\" y=\"{}\" font-size=\"12\">{}</text>",
        y + 15, HtmlEscape(name), kLabel, y + 3, w, kRow - 6, name == chart.ours ? "#1565c0" : "#9e9e9e",
        kLabel + w + 4, y + 15, HtmlEscape(FormatRate(v, chart.unit)));
    y += kRow;
  }
  return fmt::format(
      "<h3>{}</h3><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "role=\"img\">{}</svg>",
      HtmlEscape(chart.title), kLabel + kWidth + 120, y + 4, rects);
}

// A chart per comparison title, with each figure the comparisons under it name, in table order.
std::string Charts(const BenchRecord& r) {
  std::map<std::string, const BenchFigure*> figures;
  for (const auto& f : r.figures) figures[f.name] = &f;
  std::vector<Chart> charts;
  for (const auto& c : r.comparisons) {
    if (c.status == TargetStatus::kNotMeasured) continue;
    if (charts.empty() || charts.back().title != c.spec.title)
      charts.push_back({c.spec.title, "", c.spec.ours, {}});
    Chart& chart = charts.back();
    for (const auto& name : {c.spec.ours, c.spec.comparator}) {
      auto found = figures.find(name);
      if (found == figures.end()) continue;
      auto& bars = chart.bars;
      if (std::none_of(bars.begin(), bars.end(), [&](const auto& b) { return b.first == name; })) {
        bars.emplace_back(name, found->second->per_second);
      }
      chart.unit = found->second->unit;
    }
  }
  std::string out;
  for (const auto& chart : charts) out += ChartSvg(chart);
  return out;
}

}  // namespace

std::string FormatRate(double per_second, const std::string& unit) {
  if (unit == "units") return fmt::format("{:.0f} units/min", per_second * 60);
  if (per_second >= 10000) return fmt::format("{:.1f}k {}/s", per_second / 1000, unit);
  if (per_second >= 10) return fmt::format("{:.0f} {}/s", per_second, unit);
  if (per_second >= 1) return fmt::format("{:.2f} {}/s", per_second, unit);
  return fmt::format("{:.1f} s per {}", 1 / per_second,
                     unit.ends_with('s') ? unit.substr(0, unit.size() - 1) : unit);
}

nlohmann::json BenchRecordJson(const BenchRecord& r) {
  nlohmann::json figures = nlohmann::json::array(), comparisons = nlohmann::json::array();
  for (const auto& f : r.figures) figures.push_back(FigureJson(f));
  for (const auto& c : r.comparisons) comparisons.push_back(ComparisonJson(c));
  return {{"schema_version", r.schema_version},
          {"idevid_version", r.idevid_version},
          {"started", UtcTimestamp(r.started)},
          {"ended", UtcTimestamp(r.ended)},
          {"host", r.host},
          {"mode", r.mode},
          {"min_time_seconds", r.min_time_seconds},
          {"target",
           {{"kind", r.target.kind},
            {"manufacturer", r.target.manufacturer},
            {"vendor_string", r.target.vendor_string},
            {"firmware_version", r.target.firmware_version},
            {"spec_revision", r.target.spec_revision},
            {"identity_algorithm", r.target.identity_algorithm}}},
          {"figures", figures},
          {"comparisons", comparisons}};
}

std::string BenchRecordText(const BenchRecord& r) {
  std::string out = fmt::format(
      "idevid bench on {}: TPM {} ({}), firmware {}, spec {}; host {}; {} mode\n\n{:<36} {:>22} {:>8}\n",
      r.target.kind, r.target.manufacturer, r.target.vendor_string, r.target.firmware_version,
      r.target.spec_revision, r.host, r.mode, "figure", "rate", "clients");
  for (const auto& f : r.figures) {
    out += fmt::format("{:<36} {:>22} {:>8}{}\n", f.name,
                       f.error.empty() ? FormatRate(f.per_second, f.unit) : "FAILED", f.threads,
                       f.error.empty() ? "" : "  " + f.error);
  }
  out += fmt::format("\n{:<52} {:<22} {:>8} {:>18} {}\n", "comparison", "ratio", "value", "target", "status");
  for (const auto& c : r.comparisons) {
    out += fmt::format("{:<52} {:<22} {:>8} {:>18} {}\n", c.spec.title, c.spec.ratio_name, RatioText(c),
                       TargetText(c.spec), TargetStatusName(c.status));
  }
  return out;
}

std::string BenchRecordHtml(const BenchRecord& r) {
  std::string figures;
  for (const auto& f : r.figures) {
    figures += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", HtmlEscape(f.name),
                           HtmlEscape(f.error.empty() ? FormatRate(f.per_second, f.unit) : "FAILED"),
                           f.threads, HtmlEscape(f.error));
  }
  std::string rows;
  for (const auto& c : r.comparisons) {
    rows += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td></tr>",
        HtmlEscape(c.spec.title), HtmlEscape(c.spec.ours),
        HtmlEscape(c.spec.comparator.empty() ? "budget" : c.spec.comparator), HtmlEscape(c.spec.ratio_name),
        RatioText(c), HtmlEscape(TargetText(c.spec)), TargetStatusName(c.status), HtmlEscape(c.spec.note));
  }
  return fmt::format(
      "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>idevid bench {}</title>"
      "<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1em}}"
      "td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head><body>"
      "<h1>idevid bench</h1><table><tr><th>target</th><td>{}</td></tr><tr><th>TPM</th><td>{} ({}), "
      "firmware {}, spec {}</td></tr><tr><th>host</th><td>{}</td></tr><tr><th>run</th><td>{}, {} "
      "mode</td></tr>"
      "</table><h2>Comparisons</h2><table><tr><th>comparison</th><th>ours</th><th>comparator</th>"
      "<th>ratio</th><th>value</th><th>target</th><th>status</th><th>note</th></tr>{}</table>"
      "<h2>Charts</h2>{}<h2>Figures</h2><table><tr><th>figure</th><th>rate</th><th>clients</th>"
      "<th>error</th></tr>{}</table></body></html>\n",
      HtmlEscape(UtcTimestamp(r.started)), HtmlEscape(r.target.kind), HtmlEscape(r.target.manufacturer),
      HtmlEscape(r.target.vendor_string), HtmlEscape(r.target.firmware_version),
      HtmlEscape(r.target.spec_revision), HtmlEscape(r.host), HtmlEscape(UtcTimestamp(r.started)),
      HtmlEscape(r.mode), rows, Charts(r), figures);
}

}  // namespace idevid
