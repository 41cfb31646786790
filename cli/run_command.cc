#include "cli/run_command.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "cli/option_checks.h"
#include "cli/parallel_run.h"
#include "cli/tpm_args.h"
#include "core/display_text.h"
#include "core/work_dir.h"
#include "engine/bench_file.h"
#include "engine/exit_codes.h"
#include "engine/progress.h"
#include "engine/tested_unit.h"
#include "reports/report_writers.h"
#include "scenarios/scenarios.h"

namespace idevid::cli {
namespace {

std::atomic<bool> g_interrupted{false};

void OnInterrupt(int) { g_interrupted = true; }

struct RunArgs {
  std::string target = "swtpm";
  bool no_provision = false;
  bool provision = false;  // --provision: wins over a bench file's provision: false
  std::string factory_ca;
  std::string factory;
  std::vector<std::string> suites;
  std::string report = "reports/out";
  std::string station;
  std::string serial = "CW0000000001";
  std::string model = "SRX4300";
  std::string shard;   // "I/N", 1-based
  std::string bench;   // bench file
  std::string inject;  // faults in front of every TPM connection
  int soak_seconds = 30;
  bool keep_work = false;  // leave the bench's directory for inspection
  TpmArgs auth;            // only its hierarchy-auth files
  PerformanceLimits limits;
  std::string cloud_inventory;  // the units the bench's cloud accepts; empty: every verified unit
  int stop_cloud_after = 0;     // stop the bench's cloud after this many scenarios; 0: never
  int parallel = 1;             // units at once, each on its own embedded swtpm
  bool serial_given = false;    // --serial/--model or the bench file named the unit
  bool model_given = false;
};

// Fills in what the bench file says and the command line does not (flags win).
Result<void> ApplyBenchFile(const CLI::App& run, RunArgs& args) {
  args.serial_given = run.count("--serial") > 0;
  args.model_given = run.count("--model") > 0;
  if (args.bench.empty()) return {};
  IDEVID_ASSIGN_OR_RETURN(auto bench, LoadBenchFile(args.bench, SuiteNames()));
  auto fill = [&](const char* flag, std::string& field, const std::optional<std::string>& value) {
    if (value && run.count(flag) == 0) field = *value;
  };
  fill("--target", args.target, bench.target);
  fill("--station", args.station, bench.station);
  fill("--factory", args.factory, bench.factory);
  fill("--factory-ca", args.factory_ca, bench.factory_ca);
  fill("--report", args.report, bench.report);
  fill("--serial", args.serial, bench.serial);
  fill("--model", args.model, bench.model);
  args.serial_given = args.serial_given || bench.serial;
  args.model_given = args.model_given || bench.model;
  if (run.count("--provision") > 0) args.no_provision = false;
  if (bench.provision && run.count("--no-provision") == 0 && run.count("--provision") == 0) {
    args.no_provision = !*bench.provision;
  }
  if (run.count("--suite") == 0 && !bench.suites.empty()) args.suites = bench.suites;
  for (const auto& [key, value] : bench.limits) (void)args.limits.Set(key, value);  // checked on load
  return {};
}

struct Shard {
  int index = 1;
  int total = 1;
};

// --shard I/N, else GitLab's CI_NODE_INDEX/CI_NODE_TOTAL (1-based), else GoogleTest's
// GTEST_SHARD_INDEX/GTEST_TOTAL_SHARDS (0-based).
Result<Shard> ResolveShard(const std::string& flag) {
  auto parse = [](const std::string& i, const std::string& n, int base) -> Result<Shard> {
    try {
      Shard s{std::stoi(i) + (1 - base), std::stoi(n)};
      if (s.total >= 1 && s.index >= 1 && s.index <= s.total) return s;
    } catch (const std::exception&) {}
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("shard '{}/{}' is not I/N with 1 <= I <= N", i, n));
  };
  if (!flag.empty()) {
    auto slash = flag.find('/');
    if (slash == std::string::npos) {
      return UsageError(UsageCode::kInvalidArgument,
                        fmt::format("--shard {} is not I/N", QuotedDisplayText(flag)));
    }
    return parse(flag.substr(0, slash), flag.substr(slash + 1), 1);
  }
  if (const char* i = ::getenv("CI_NODE_INDEX"); i && ::getenv("CI_NODE_TOTAL")) {
    return parse(i, ::getenv("CI_NODE_TOTAL"), 1);
  }
  if (const char* i = ::getenv("GTEST_SHARD_INDEX"); i && ::getenv("GTEST_TOTAL_SHARDS")) {
    return parse(i, ::getenv("GTEST_TOTAL_SHARDS"), 0);
  }
  return Shard{};
}

Result<std::vector<Scenario>> Selected(const std::vector<std::string>& suites, Shard shard) {
  auto known = SuiteNames();
  for (const auto& s : suites) {
    if (std::find(known.begin(), known.end(), s) == known.end()) {
      return UsageError(UsageCode::kInvalidArgument, fmt::format("unknown suite '{}'; the suites are: {}",
                                                                 DisplayText(s), fmt::join(known, ", ")));
    }
  }
  std::vector<Scenario> chosen;
  int k = 0;
  for (auto& scenario : AllScenarios()) {
    auto on_request = OnRequestSuites();
    bool wanted = suites.empty()
                      ? std::find(on_request.begin(), on_request.end(), scenario.suite) == on_request.end()
                      : std::find(suites.begin(), suites.end(), scenario.suite) != suites.end();
    if (wanted && (k++ % shard.total) == shard.index - 1) chosen.push_back(std::move(scenario));
  }
  return chosen;
}

int Finish(RunRecord& record, const std::string& report_dir) {
  record.ended = std::chrono::system_clock::now();
  if (auto written = WriteReports(report_dir, record); !written) {
    (void)ReportError(written.error());
    return kExitInfrastructure;
  }
  std::cerr << fmt::format("idevid run: {} - reports in {}\n", OutcomeName(record.outcome), report_dir);
  switch (record.outcome) {
    case Outcome::kPass: return kExitPass;
    case Outcome::kFail: return kExitFail;
    default: return kExitInfrastructure;
  }
}

// Runs the scenarios into the record; after an interrupt, each one left is recorded as not run.
// With `stop_cloud_after` N > 0, the bench's cloud stops once N scenarios have run.
void RunScenarios(const std::vector<Scenario>& scenarios, TestedUnit& unit, RunRecord& record,
                  int stop_cloud_after) {
  RunProgress progress(std::cerr, IsAnsiTerminal(STDERR_FILENO), scenarios.size(),
                       TerminalWidth(STDERR_FILENO));
  for (const auto& scenario : scenarios) {
    if (g_interrupted) {
      record.scenarios.push_back(NotRunScenario(scenario));
      continue;
    }
    if (stop_cloud_after > 0 && record.scenarios.size() == static_cast<std::size_t>(stop_cloud_after)) {
      unit.StopCloud();
    }
    progress.ScenarioStarted(scenario);
    record.scenarios.push_back(
        RunScenario(scenario, unit, [&](const std::string& phase) { progress.PhaseStarted(phase); }));
    progress.ScenarioFinished(record.scenarios.back());
  }
}

// When the identity already in the TPM is tested, the unit the bench (or --serial/--model) names
// must be the one on the bench: what is wrong, or nullopt.
std::optional<std::string> WrongUnit(const RunArgs& args, const TestedUnit& unit) {
  if (!args.no_provision) return std::nullopt;  // provisioned with exactly these
  for (const auto& [what, named, expected, found] :
       {std::tuple{"serial", args.serial_given, args.serial, unit.options().serial},
        std::tuple{"model", args.model_given, args.model, unit.options().model}}) {
    if (named && expected != found) {
      return fmt::format(
          "the TPM holds the idev-id of {} {}, the bench expects {}: is this the right "
          "unit on the bench?",
          what, found, expected);
    }
  }
  return std::nullopt;
}

// What a run checks before it starts anything: the bench file, the flags, the hierarchy auth, the
// shard and the suites. Returns the scenarios to run and fills in the record's shard.
Result<std::vector<Scenario>> PlanRun(const RunArgs& args, const Result<void>& bench, RunRecord& record) {
  IDEVID_TRY(bench);
  if (args.target == "swtpm" && args.no_provision) {
    return UsageError(UsageCode::kConflict,
                      "--no-provision needs a --target whose TPM already holds an "
                      "identity; the embedded swtpm starts empty");
  }
  IDEVID_TRY(LoadHierarchyAuth(args.auth));
  IDEVID_ASSIGN_OR_RETURN(Shard shard, ResolveShard(args.shard));
  if (shard.total > 1) record.shard = fmt::format("{}/{}", shard.index, shard.total);
  return Selected(args.suites, shard);
}

// Why a run ended before its scenarios (an error, or a failed check of the unit), and its exit code.
struct RunFailure {
  std::string message;
  int exit_code;
};

// Prepares the unit in `work`, checks it is the unit expected and runs the scenarios into the
// record. Everything the bench started has stopped when this returns, also after an interrupt.
std::optional<RunFailure> RunOnTheUnit(const RunArgs& args, const std::filesystem::path& work,
                                       const std::vector<Scenario>& scenarios, RunRecord& record) {
  auto unit = TestedUnit::Prepare(
      {.work_dir = work,
       .serial = args.serial,
       .model = args.model,
       .tcti = TargetTcti(args.target),
       .provision = !args.no_provision,
       .factory_ca = args.factory_ca,
       .factory = args.factory,
       .limits = args.limits,
       .inject = args.inject,
       .soak_seconds = args.soak_seconds,
       .cloud_inventory = args.cloud_inventory.empty()
                              ? std::nullopt
                              : std::optional<std::filesystem::path>(args.cloud_inventory),
       .on_identified = [&](const std::string& serial, const std::string& model) {
         record.serial = serial;
         record.model = model;
       }});
  if (!unit) return RunFailure{unit.error().message(), ExitCodeFor(unit.error())};
  if (auto wrong = WrongUnit(args, **unit)) {  // a failed check, not a broken bench
    return RunFailure{*wrong, kExitFail};
  }
  record.tpm_manufacturer = (*unit)->tpm_info().manufacturer;
  record.tpm_firmware = (*unit)->tpm_info().firmware_version;
  record.identity = (*unit)->identity();
  RunScenarios(scenarios, **unit, record, args.stop_cloud_after);
  return std::nullopt;
}

// The unit as the run knows it before it reads the TPM: as --serial/--model or the bench file
// name it, or as the run provisions it (the defaults included); unknown ("") when the identity
// already in the TPM is tested or the bench file did not load, until the TPM is read.
void NameTheUnit(const RunArgs& args, bool bench_loaded, RunRecord& record) {
  bool defaults_apply = bench_loaded && !args.no_provision;
  record.serial = args.serial_given || defaults_apply ? args.serial : "";
  record.model = args.model_given || defaults_apply ? args.model : "";
}

// An interrupted run is ABORTED and says how many of its scenarios ran.
void MarkInterrupted(RunRecord& record) {
  auto ran = std::count_if(record.scenarios.begin(), record.scenarios.end(), [](const ScenarioRecord& s) {
    return s.outcome != Outcome::kAborted || s.message != kNotRunMessage;
  });
  record.outcome = Outcome::kAborted;
  record.message = fmt::format("interrupted after {} of {} scenarios", ran, record.scenarios.size());
}

int Run(const RunArgs& args, const Result<void>& bench) {
  RunRecord record;
  record.started = std::chrono::system_clock::now();
  NameTheUnit(args, bench.has_value(), record);
  record.station = args.station;
  record.operator_name = ::getenv("USER") ? ::getenv("USER") : "";
  record.software_version = IDEVID_VERSION;
  record.target_kind = args.target;
  auto fail = [&](const std::string& message, int code) {
    std::cerr << "idevid: " << message << "\n";
    record.outcome = code == kExitFail ? Outcome::kFail : Outcome::kError;
    record.message = message;
    (void)Finish(record, args.report);
    return code;
  };
  auto scenarios = PlanRun(args, bench, record);
  if (!scenarios) return fail(scenarios.error().message(), ExitCodeFor(scenarios.error()));
  HandleInterrupts(OnInterrupt);
  auto work = WorkDir::Create("idevid-run");
  if (!work) return fail(work.error().message(), kExitInfrastructure);
  if (args.keep_work) work->Keep("idevid run");
  auto failure = RunOnTheUnit(args, work->path(), *scenarios, record);
  if (failure) return fail(failure->message, failure->exit_code);
  record.outcome = OverallOutcome(record.scenarios);
  if (g_interrupted) MarkInterrupted(record);
  return Finish(record, args.report);
}

// --parallel N: N `idevid run` processes of one unit each, serials counted up from --serial.
int RunParallel(const RunArgs& args, const Result<void>& bench) {
  auto usage = [](const std::string& message) {
    return ReportError(UsageError(UsageCode::kConflict, message).value());
  };
  if (!bench) return ReportError(bench.error());
  if (args.target != "swtpm") {
    return usage("--parallel runs units on embedded swtpm instances; a --target TPM is one unit");
  }
  if (args.no_provision) {
    return usage("--parallel provisions each unit's embedded swtpm; --no-provision has no identity to test");
  }
  HandleInterrupts(OnInterrupt);
  ParallelRun run{args.parallel, args.report,
                  [&](int k) {
                    // Explicit, so that a bench file's target or provision setting cannot send a unit
                    // elsewhere.
                    std::vector<std::string> a = {
                        "--target", "swtpm",   "--provision", "--serial", NthSerial(args.serial, k),
                        "--model",  args.model};
                    auto add = [&](const char* flag, const std::string& value) {
                      if (!value.empty()) a.insert(a.end(), {flag, value});
                    };
                    add("--station", args.station);
                    add("--factory", args.factory);
                    add("--bench", args.bench);
                    add("--shard", args.shard);
                    add("--inject", args.inject);
                    add("--soak-seconds", std::to_string(args.soak_seconds));
                    add("--cloud-inventory", args.cloud_inventory);
                    if (args.stop_cloud_after > 0)
                      add("--stop-cloud-after", std::to_string(args.stop_cloud_after));
                    add("--owner-auth-file", args.auth.owner_auth_file);
                    add("--endorsement-auth-file", args.auth.endorsement_auth_file);
                    if (args.keep_work) a.push_back("--keep-work");
                    add("--suite", fmt::format("{}", fmt::join(args.suites, ",")));
                    return a;
                  },
                  [] { return g_interrupted.load(); }};
  return RunUnitsInParallel(run);
}

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* run = app.add_subcommand(
      "run", "The harness: provision the embedded swtpm, run the scenario suites, write reports");
  run->add_option("--target", args->target,
                  "swtpm (the embedded default), abrmd (the system's tpm2-abrmd) or a TCTI such as "
                  "device:/dev/tpmrm0")
      ->capture_default_str();
  auto* no_provision =
      run->add_flag("--no-provision", args->no_provision,
                    "Test the identity already in the TPM (never replaced); needs --factory-ca");
  run->add_flag("--provision", args->provision,
                "Provision the TPM (the default; overrides a bench file's provision: false)")
      ->excludes(no_provision);
  run->add_option("--factory-ca", args->factory_ca, "The unit's factory-ca.pem (with --no-provision)")
      ->check(ExistingFileCheck());
  run->add_option("--factory", args->factory,
                  "Factory to provision with (needed to provision a --target TPM)");
  run->add_option("--suite", args->suites, fmt::format("Suites to run: {}", fmt::join(SuiteNames(), ", ")))
      ->delimiter(',');
  run->add_option("--report", args->report, "Directory for the reports")->capture_default_str();
  run->add_option("--station", args->station, "Station id for the record");
  run->add_option("--serial", args->serial,
                  "Serial number of the unit to provision; with --no-provision, the serial it must have")
      ->capture_default_str();
  run->add_option("--model", args->model, "Model of the unit (as --serial)")->capture_default_str();
  run->add_option("--shard", args->shard, "Run shard I of N (1-based)");
  run->add_option("--bench", args->bench,
                  "Bench file (YAML): target, factory, factory CA, unit, station, suites, report, "
                  "limits; flags given here win")
      ->check(CLI::ExistingFile);
  run->add_option("--inject", args->inject,
                  "Faults in front of every connection to the unit's TPM, through the fault TCTI: "
                  "retry=N,yielded=N,delay-ms=D,drop-after=N,drop-on=CC,corrupt=K");
  AddHierarchyAuthOptions(*run, args->auth);
  run->add_flag("--keep-work", args->keep_work,
                "Keep the bench's directory (TPM state, CA files, device.conf, idevid.pem, logs)");
  run->add_option("--soak-seconds", args->soak_seconds, "Length of the soak suite (--suite soak)")
      ->check(CLI::Range(3, 24 * 3600))
      ->capture_default_str();
  run->add_option("--cloud-inventory", args->cloud_inventory,
                  "The units the bench's cloud accepts (CSV serial,model); a unit it does not list is "
                  "refused, and the scenarios that need the cloud FAIL. Default: every unit whose "
                  "identity verifies")
      ->check(ExistingFileCheck());
  run->add_option("--stop-cloud-after", args->stop_cloud_after,
                  "Fault on the bench: stop its cloud once N scenarios have run; the scenarios that "
                  "need it then end in ERROR (exit 2), never FAIL")
      ->check(CLI::Range(1, 100000));
  run->add_option("--parallel", args->parallel,
                  "Units at once, each on its own embedded swtpm with serials counted up from "
                  "--serial; reports in DIR/unit-K/ and a summary in DIR/units.json")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  run->callback([run, args, exit_code] {
    Result<void> bench = ApplyBenchFile(*run, *args);
    *exit_code = args->parallel > 1 ? RunParallel(*args, bench) : Run(*args, bench);
  });
}

}  // namespace idevid::cli
