#include "harness/bench/bench_suite.h"

#include <fmt/format.h>
#include <sys/utsname.h>

#include <algorithm>
#include <regex>
#include <thread>

#include "harness/bench/benchmarks.h"

namespace idevid {
namespace {

// Collects each run as a figure.
class FigureReporter : public benchmark::BenchmarkReporter {
 public:
  explicit FigureReporter(const std::function<void(const BenchFigure&)>& on_figure) : on_figure_(on_figure) {}
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      BenchFigure f{run.run_name.function_name, BenchUnits()[run.run_name.function_name]};
      f.threads = static_cast<int>(run.threads);
      f.iterations = static_cast<std::int64_t>(run.iterations);
      if (run.error_occurred) {
        f.error = run.error_message.empty() ? "failed" : run.error_message;
      } else if (auto it = run.counters.find(kRateCounter); it != run.counters.end()) {
        f.per_second = it->second.value;
      }
      Add(f);
      for (const auto& [counter, value] : run.counters) {
        if (auto paired = PairedFigureName(counter))
          Add({*paired, f.unit, value.value, f.threads, f.iterations, f.error});
      }
    }
  }
  void Add(const BenchFigure& f) {
    figures.push_back(f);
    on_figure_(f);
  }
  std::vector<BenchFigure> figures;

 private:
  const std::function<void(const BenchFigure&)>& on_figure_;
};

std::string Host() {
  utsname u{};
  ::uname(&u);
  return fmt::format("{} cores, {} {}", std::thread::hardware_concurrency(), u.sysname, u.release);
}

BenchTarget Target(BenchContext& context) {
  const TpmInfo& tpm = context.unit().tpm_info();
  return {context.options().tcti.empty() ? "swtpm (embedded, behind tpm2-abrmd)" : context.options().tcti,
          tpm.manufacturer,
          tpm.vendor_string,
          tpm.firmware_version,
          tpm.spec_revision,
          std::string(KeyAlgorithmName(context.identity_algorithm()))};
}

// One station per thread of the widest provisioning benchmark the filter selects.
int StationsNeeded(const std::regex& selected) {
  int needed = 0;
  for (const auto& [name, unit] : BenchUnits()) {
    if (!std::regex_search(name, selected)) continue;
    if (name.starts_with("provision_parallel/n")) needed = std::max(needed, std::stoi(name.substr(20)));
    if (name.starts_with("provision/") || name.starts_with("line_check/")) needed = std::max(needed, 1);
  }
  return needed;
}

}  // namespace

Result<BenchRecord> RunBenchSuite(BenchContext& context, const std::string& filter,
                                  const std::function<void(const BenchFigure&)>& on_figure) {
  BenchRecord record;
  record.started = std::chrono::system_clock::now();
  record.host = Host();
  record.mode = context.options().quick ? "quick" : "full";
  record.min_time_seconds = context.options().min_time_seconds;
  record.target = Target(context);
  benchmark::ClearRegisteredBenchmarks();
  BenchUnits().clear();
  RegisterSignBenchmarks(context);
  RegisterHandshakeBenchmarks(context);
  RegisterBootBenchmarks(context);
  RegisterProvisioningBenchmarks(context);
  if (context.options().include_run) RegisterRunBenchmark(context);
  std::regex selected;
  try {
    selected = std::regex(filter);
  } catch (const std::regex_error& e) {
    return UsageError(fmt::format("--filter '{}' is not a regular expression: {}", filter, e.what()));
  }
  if (auto started = context.StartStations(StationsNeeded(selected)); !started) return Fail(started.error());
  FigureReporter reporter(on_figure);
  benchmark::RunSpecifiedBenchmarks(&reporter, filter);
  benchmark::ClearRegisteredBenchmarks();
  record.figures = reporter.figures;
  std::map<std::string, BenchFigure> by_name;
  for (const auto& f : record.figures) by_name[f.name] = f;
  record.comparisons = Compare(BenchComparisons(record.target.identity_algorithm), by_name);
  record.ended = std::chrono::system_clock::now();
  return record;
}

}  // namespace idevid
