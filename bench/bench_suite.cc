#include "bench/bench_suite.h"

#include <fmt/format.h>
#include <sys/utsname.h>

#include <algorithm>
#include <regex>
#include <thread>
#include <tuple>

#include "bench/bench_registry.h"
#include "core/display_text.h"

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
        std::tie(f.error_domain, f.error) =
            SplitFailure(run.error_message.empty() ? "failed" : run.error_message);
      } else if (auto it = run.counters.find(kRateCounter); it != run.counters.end()) {
        f.per_second = it->second.value;
      }
      Add(f);
      for (const auto& [counter, value] : run.counters) {
        if (auto paired = PairedFigureName(counter)) {
          Add({*paired, f.unit, value.value, f.threads, f.iterations, f.error, f.error_domain});
        }
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

}  // namespace

Result<void> ValidFilter(const std::string& filter) {
  try {
    std::regex parsed(filter, std::regex::extended);
  } catch (const std::regex_error& e) {
    return UsageError(
        UsageCode::kInvalidArgument,
        fmt::format("--filter '{}' is not a regular expression: {}", DisplayText(filter), e.what()));
  }
  return {};
}

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
  RegisterEnrolmentBenchmarks(context);
  RegisterAttestationBenchmarks(context);
  if (context.options().include_run) RegisterRunBenchmark(context);
  FigureReporter reporter(on_figure);
  std::size_t ran = benchmark::RunSpecifiedBenchmarks(&reporter, filter);
  benchmark::ClearRegisteredBenchmarks();
  if (ran == 0) {
    std::string names;
    for (const auto& [name, unit] : BenchUnits()) names += " " + name;
    return UsageError(
        UsageCode::kInvalidArgument,
        fmt::format("--filter '{}' selects no benchmark; they are:{}", DisplayText(filter), names));
  }
  record.figures = reporter.figures;
  std::map<std::string, BenchFigure> by_name;
  for (const auto& f : record.figures) by_name[f.name] = f;
  record.comparisons = Compare(BenchComparisons(record.target.identity_algorithm), by_name);
  record.ended = std::chrono::system_clock::now();
  return record;
}

}  // namespace idevid
