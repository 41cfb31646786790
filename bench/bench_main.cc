// idevid-bench, run as `idevid bench`: the performance suite. Prepares the target (by default
// the embedded swtpm behind its own tpm2-abrmd, provisioned), runs every benchmark beside its
// comparator, prints the figures and ratios, and writes the JSON record and the HTML page.
// Exit codes as idevid's: 0, 1 (a gated target missed, with --check-targets), 2 (a benchmark or
// the bench failed, or an interrupt), 4 (usage).
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "bench/bench_registry.h"
#include "bench/bench_report.h"
#include "bench/bench_suite.h"
#include "cli/tpm_args.h"
#include "core/display_text.h"
#include "core/file_io.h"
#include "core/work_dir.h"
#include "engine/exit_codes.h"
#include "engine/process.h"

namespace idevid {
namespace {

struct BenchArgs {
  std::string target = "swtpm";
  std::string factory_ca;
  std::string json = "reports/out/bench.json";
  std::string html = "reports/out/bench.html";
  std::string filter = ".";
  bool quick = false;
  double min_time = 0;  // 0: 0.5 s, or 0.2 s with --quick
  bool no_run = false;
  bool check_targets = false;
  bool keep_work = false;
  cli::TpmArgs auth;
};

void AddOptions(CLI::App& app, BenchArgs& a) {
  app.add_option("--target", a.target,
                 "swtpm (the embedded default), abrmd (the system's tpm2-abrmd) or a TCTI such as "
                 "device:/dev/tpmrm0; a target's identity is used, never replaced")
      ->capture_default_str();
  app.add_option("--factory-ca", a.factory_ca, "The target's factory-ca.pem (with a --target TPM)")
      ->check(CLI::ExistingFile);
  app.add_option("--json", a.json, "JSON record to write")->capture_default_str();
  app.add_option("--html", a.html, "HTML page to write")->capture_default_str();
  app.add_option("--filter", a.filter,
                 "Regular expression (POSIX extended) over the benchmark names to run, e.g. 'boot|sign'")
      ->capture_default_str();
  app.add_flag(
      "--quick", a.quick,
      "Short run (0.2 s per benchmark; handshakes 0.5 s, the signer and the ledger 1 s): the perf test's");
  app.add_option("--min-time", a.min_time,
                 "Seconds per benchmark (default 0.5, or 0.2 with --quick; handshakes at least 0.5, signing "
                 "and the ledger at least 1)")
      ->check(CLI::Range(0.01, 600.0));
  app.add_flag("--no-run", a.no_run, "Leave out the timed `idevid run`");
  app.add_flag("--check-targets", a.check_targets, "Exit 1 when a ratio misses its target");
  app.add_flag("--keep-work", a.keep_work, "Keep the bench's directory (TPM state, CA files, logs)");
  cli::AddHierarchyAuthOptions(app, a.auth);
}

void OnInterrupt(int) { InterruptBench(); }

Result<void> WriteReports(const BenchArgs& args, const BenchRecord& record) {
  for (const auto& [path, content] : {std::pair{args.json, BenchRecordJson(record).dump(2) + "\n"},
                                      std::pair{args.html, BenchRecordHtml(record)}}) {
    std::error_code ec;
    std::filesystem::path file(path);
    if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
    IDEVID_TRY(WriteFileAtomic(file, std::string_view(content)), "writing the bench report");
  }
  return {};
}

// An end of the bench that is not an error of one of its parts: "idevid: WHAT" on stderr, exit 2.
int InfrastructureEnd(const std::string& what) {
  std::cerr << "idevid: " << what << "\n";
  return cli::kExitInfrastructure;
}

// --check-targets: 1 when a gated ratio is below its target, or could not be measured in a run of
// the whole suite.
int CheckTargets(const BenchArgs& args, const BenchRecord& record) {
  auto missed = GatesIn(record.comparisons, TargetStatus::kMissed);
  for (const auto* c : missed) {
    std::cerr << fmt::format("idevid bench: {}: {} = {:.2f}, below its target {:.2f}\n", c->spec.title,
                             c->spec.ratio_name, c->ratio.value_or(0), *c->spec.target);
  }
  bool whole_suite = args.filter == "." && !args.no_run;
  auto unchecked = GatesIn(record.comparisons, TargetStatus::kNotMeasured);
  for (const auto* c : unchecked) {
    std::cerr << fmt::format(
        "idevid bench: {}: {} {}\n", c->spec.title, c->spec.ratio_name,
        whole_suite ? "was not measured, so its target is not checked" : "is not in the selected benchmarks");
  }
  return !missed.empty() || (whole_suite && !unchecked.empty()) ? cli::kExitFail : cli::kExitPass;
}

// Reports the record; returns the exit code.
int Conclude(const BenchArgs& args, const BenchRecord& record) {
  std::cout << "\n" << BenchRecordText(record);
  if (auto written = WriteReports(args, record); !written) return cli::ReportError(written.error());
  std::cout << fmt::format("\nwrote {} and {}\n", args.json, args.html);
  if (BenchInterrupted()) return InfrastructureEnd("bench interrupted");
  int failed = 0, refused = 0;
  for (const auto& f : record.figures) {
    failed += !f.error.empty();
    refused += f.error_domain == "tls" || f.error_domain == "verify";
  }
  if (refused > 0) {  // the product failed, not the bench
    std::cerr << fmt::format("idevid bench: {} benchmark(s) failed: the cloud refused a session\n", refused);
    return cli::kExitFail;
  }
  if (failed > 0) return InfrastructureEnd(fmt::format("{} benchmark(s) failed (see above)", failed));
  return args.check_targets ? CheckTargets(args, record) : cli::kExitPass;
}

// Refuses what cannot run before anything starts: a target TPM without its factory CA, a filter
// that is no regular expression, a hierarchy authorization file that cannot be used.
Result<void> CheckBenchArgs(const BenchArgs& args, const std::string& tcti) {
  if (!tcti.empty() && args.factory_ca.empty()) {
    return UsageError(UsageCode::kMissingArgument,
                      fmt::format("--target {} needs --factory-ca: the cloud must trust the factory that "
                                  "issued the target's idev-id",
                                  DisplayText(args.target)));
  }
  IDEVID_TRY(ValidFilter(args.filter));
  IDEVID_TRY(cli::LoadHierarchyAuth(args.auth));
  return {};
}

int Bench(const BenchArgs& args) {
  std::string tcti = cli::TargetTcti(args.target);
  if (auto checked = CheckBenchArgs(args, tcti); !checked) return cli::ReportError(checked.error());
  HandleInterrupts(OnInterrupt);
  auto work = WorkDir::Create("idevid-bench");
  if (!work) return cli::ReportError(work.error());
  if (args.keep_work) work->Keep("idevid bench");
  int exit_code = cli::kExitPass;
  {
    double min_time = args.min_time > 0 ? args.min_time : args.quick ? 0.2 : 0.5;
    std::cerr << fmt::format("idevid bench: preparing {}\n", tcti.empty() ? "the embedded swtpm" : tcti);
    auto context = BenchContext::Prepare({.work_dir = work->path(),
                                          .tcti = tcti,
                                          .factory_ca = args.factory_ca,
                                          .min_time_seconds = min_time,
                                          .quick = args.quick,
                                          .include_run = !args.no_run});
    if (!context) {
      exit_code = cli::ReportError(context.error());
    } else if (BenchInterrupted()) {  // before any benchmark: no record to write
      exit_code = InfrastructureEnd("bench interrupted");
    } else {
      auto record = RunBenchSuite(**context, args.filter, [](const BenchFigure& f) {
        std::cerr << fmt::format("  {:<34} {}\n", f.name,
                                 f.error.empty() ? FormatRate(f.per_second, f.unit) : "FAILED: " + f.error);
      });
      if (record) record->idevid_version = IDEVID_VERSION;
      exit_code = record ? Conclude(args, *record) : cli::ReportError(record.error());
    }
  }  // everything the bench started stops here
  return exit_code;
}

}  // namespace
}  // namespace idevid

int main(int argc, char** argv) {
  ::setenv("TSS2_LOG", "all+NONE", 0);
  spdlog::set_default_logger(spdlog::stderr_color_mt("idevid"));
  spdlog::set_level(spdlog::level::warn);
  int benchmark_argc = 1;  // Google Benchmark's own flags are not taken: the options below are
  benchmark::Initialize(&benchmark_argc, argv);
  CLI::App app{"idevid bench: the performance suite; every figure beside its comparator, as ratios"};
  app.name("idevid bench");
  idevid::BenchArgs args;
  idevid::AddOptions(app, args);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? idevid::cli::kExitPass : idevid::cli::kExitUsage;
  }
  return idevid::Bench(args);
}
