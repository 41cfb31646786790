// Provisioning on disposable swtpm stations (never on the target): one unit and one line check,
// ECC and RSA; and the line: units (provisioned and checked) per minute with N stations at once,
// one benchmark thread each, to show how the line scales with cores; the same with every unit
// recorded in a ledger on SQLite or PostgreSQL, and with the issuing CA's key in a SoftHSM2 token.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <memory>
#include <optional>

#include "bench/bench_registry.h"
#include "bench/bench_units.h"
#include "provisioning/line_check.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

constexpr const char* kModel = "SRX4300";

Result<void> Provision(BenchContext& context, Station& station, KeyAlgorithm alg, int index) {
  std::string serial = fmt::format("BENCH{:04}", index);
  IDEVID_TRY(ProvisionUnit(station.tpm, context.unit().issuer(),
                           {.serial = serial, .model = kModel, .algorithm = alg, .force = true}),
             "provisioning {} on station {}", serial, index);
  return {};
}

Result<void> LineCheck(const TpmContext& tpm, const TrustBundle& factory_ca, const std::string& serial) {
  IDEVID_ASSIGN_OR_RETURN(CheckReport report, CheckUnit(tpm, factory_ca, {.expect_serial = serial}),
                          "the line check of {}", serial);
  if (!report.passed()) {
    // The unit's identity was refused: an application's verification failure, as OpenSSL names it.
    return Fail(ErrorDomain::kVerify, X509_V_ERR_APPLICATION_VERIFICATION,
                fmt::format("the line check of {} failed: {}", serial, fmt::join(report.failures(), ", ")));
  }
  return {};
}

void ProvisionOne(benchmark::State& state, BenchContext& context, KeyAlgorithm alg) {
  auto station = context.StartStations(1).and_then([&] { return context.StationAt(0); });
  Usable(state, station);  // on failure the loop below runs no iteration
  for (auto _ : state) {
    if (!Continue(state, Provision(context, **station, alg, 0))) break;
  }
  CountRate(state);
}

void CheckOne(benchmark::State& state, BenchContext& context, KeyAlgorithm alg) {
  auto station = context.StartStations(1).and_then([&] { return context.StationAt(0); });
  if (Usable(state, station)) Usable(state, Provision(context, **station, alg, 0));
  for (auto _ : state) {
    if (!Continue(state, LineCheck((*station)->tpm, context.factory_bundle(), "BENCH0000"))) break;
  }
  CountRate(state);
}

enum class LineLedger { kNone, kSqlite, kPostgresql };

const char* LineLedgerName(LineLedger ledger) {
  switch (ledger) {
    case LineLedger::kNone: return "none";
    case LineLedger::kSqlite: return "sqlite";
    case LineLedger::kPostgresql: return "postgresql";
  }
  return "?";
}

// How a line is set up: where its units are recorded, where the issuing CA's key is.
struct LineSetup {
  LineLedger ledger = LineLedger::kNone;
  bool token_key = false;  // in a SoftHSM2 token, else the unit's factory with its key file
};

// One station of a line: its TPM, the factory that issues its units, the trust of its line check
// and its own connection to the ledger (null: none).
struct LineStation {
  Station* station = nullptr;
  const Factory* factory = nullptr;
  TrustBundle factory_ca;
  std::unique_ptr<Ledger> ledger;
  std::string name;
};

Result<std::unique_ptr<Ledger>> OpenLineLedger(BenchContext& context, LineLedger kind) {
  if (kind == LineLedger::kNone) return nullptr;
  if (kind == LineLedger::kSqlite)
    return OpenLedger("sqlite:" + (context.options().work_dir / "line.sqlite").string());
  IDEVID_ASSIGN_OR_RETURN(std::string spec, context.PostgresLedger());
  return OpenLedger(spec);
}

// Station `index` of a line of `stations`; thread 0 starts the stations and the database.
Result<LineStation> JoinLine(BenchContext& context, const LineSetup& setup, int index, int stations) {
  if (index == 0) {
    (void)context.StartStations(stations);  // a failure reaches every StationAt
    if (setup.ledger == LineLedger::kPostgresql) (void)context.StartPostgres();  // and PostgresLedger
  }
  LineStation line{.name = fmt::format("bench-station-{}", index)};
  IDEVID_ASSIGN_OR_RETURN(line.station, context.StationAt(index));
  if (setup.token_key) {
    IDEVID_ASSIGN_OR_RETURN(line.factory, context.TokenFactory());
  } else {
    line.factory = &context.unit().issuer();
  }
  IDEVID_ASSIGN_OR_RETURN(line.factory_ca, LoadTrustBundle(FactoryFiles::Chain(line.factory->dir)));
  IDEVID_ASSIGN_OR_RETURN(line.ledger, OpenLineLedger(context, setup.ledger), "the {} ledger of {}",
                          LineLedgerName(setup.ledger), line.name);
  return line;
}

// One unit as a line station makes it: reserved in the ledger, provisioned, line-checked and
// committed with its record. Returns its serial.
Result<std::string> LineUnit(LineStation& line) {
  std::string serial = NextBenchSerial("BENCH-L");
  IDEVID_ASSIGN_OR_RETURN(
      ProvisionResult result,
      ProvisionUnit(line.station->tpm, *line.factory,
                    {.serial = serial, .model = kModel, .force = true, .station = line.name},
                    line.ledger.get()),
      "provisioning {} on {}", serial, line.name);
  if (result.refusal) return Fail(RefusalError(serial, result.refusal->reason, result.refusal->detail));
  IDEVID_TRY(LineCheck(line.station->tpm, line.factory_ca, serial));
  if (!line.ledger) return serial;
  nlohmann::json record = {{"serial", serial}, {"model", kModel}, {"timings_ms", result.timings_ms}};
  IDEVID_ASSIGN_OR_RETURN(auto committed,
                          line.ledger->Commit({.serial = serial,
                                               .ek_sha256 = result.ek_sha256,
                                               .station = line.name,
                                               .line_check = "PASS",
                                               .record = std::move(record)}),
                          "committing {}", serial);
  if (auto* refused = std::get_if<LedgerRefusal>(&committed)) {
    return Fail(RefusalError(serial, refused->reason, refused->detail));
  }
  return serial;
}

// One thread per station, unit after unit, no ledger.
void UnitsInParallel(benchmark::State& state, BenchContext& context) {
  auto line = JoinLine(context, {}, state.thread_index(), state.threads());
  Usable(state, line);  // on failure the loop below runs no iteration
  for (auto _ : state) {
    if (!Continue(state, LineUnit(*line))) break;
  }
  CountRate(state);
}

// Two lines on the same stations, measured in one run: each benchmark iteration is a phase in
// which every station makes one unit of one line, the lines alternating phase by phase so that
// whatever else the machine does weighs on both alike. The stations start and end a phase
// together; its wall time is its line's, so each line's rate is a throughput of all the stations.
// A ledger's unit is retired after its phase (a TPM takes the next serial only then).
class PairedLines {
 public:
  PairedLines(int stations, LineSetup ours, LineSetup comparator, std::string comparator_figure)
      : stations_(stations), setups_{ours, comparator}, comparator_figure_(std::move(comparator_figure)) {
    Reset();
  }

  void Run(benchmark::State& state, BenchContext& context) {
    int index = state.thread_index();
    auto ours = JoinLine(context, setups_[0], index, stations_);
    auto theirs = JoinLine(context, setups_[1], index, stations_);
    // Google Benchmark starts the loop on every thread at once: a set-up failure is seen by all.
    if (!Usable(state, ours) || !Usable(state, theirs)) set_up_failed_ = true;
    std::int64_t phase = 0;
    for (auto _ : state) {
      if (set_up_failed_) {
        MarkFailed(state, Error(ErrorDomain::kProcess, 1, "another station of the line failed to start"));
        break;
      }
      // Lines 0 1 1 0 0 1 1 0 ...: each pair of phases starts with the other line.
      int line = static_cast<int>((phase % 2) ^ ((phase / 2) % 2));
      ++phase;
      if (!Continue(state, Phase(state, line == 0 ? *ours : *theirs, line))) {
        barrier_->arrive_and_drop();
        break;
      }
    }
    // Thread 0 reports and resets once every thread has left its loop: one that broke out early
    // (a failure, an interrupt) skips Google Benchmark's barrier at the loop's end.
    int left = left_.fetch_add(1) + 1;
    left_.notify_all();
    if (index != 0) return;
    for (; left < stations_; left = left_.load()) left_.wait(left);
    Report(state);
    Reset();
  }

 private:
  void Reset() {
    barrier_.emplace(stations_);
    set_up_failed_ = false;
    left_ = 0;
    for (int line : {0, 1}) {
      time_[line] = std::chrono::duration<double>(0);
      units_[line] = 0;
    }
  }
  // One phase of `line` at every station, then the retirement of this station's unit.
  Result<void> Phase(benchmark::State& state, LineStation& station, int line) {
    barrier_->arrive_and_wait();
    auto start = std::chrono::steady_clock::now();
    auto serial = LineUnit(station);
    if (!serial) return Fail(serial.error());
    barrier_->arrive_and_wait();
    if (state.thread_index() == 0) {
      time_[line] += std::chrono::steady_clock::now() - start;
      units_[line] += stations_;
    }
    if (!station.ledger) return {};
    return RetireUnit(state, *station.ledger, *serial);
  }
  void Report(benchmark::State& state) {
    if (state.error_occurred() || time_[0].count() <= 0 || time_[1].count() <= 0) return;
    state.counters[kRateCounter] = static_cast<double>(units_[0]) / time_[0].count();
    state.counters[PairedRateCounter(comparator_figure_)] = static_cast<double>(units_[1]) / time_[1].count();
  }

  int stations_;
  LineSetup setups_[2];
  std::string comparator_figure_;
  std::optional<std::barrier<>> barrier_;
  std::atomic<bool> set_up_failed_{false};
  std::atomic<int> left_{0};  // threads that have left the loop of this run
  std::chrono::duration<double> time_[2];
  std::int64_t units_[2] = {0, 0};
};

}  // namespace

void RegisterProvisioningBenchmarks(BenchContext& context) {
  for (KeyAlgorithm alg : {KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048}) {
    AddBenchmark(context, fmt::format("provision/{}", KeyAlgorithmName(alg)), "units",
                 [&context, alg](benchmark::State& s) { ProvisionOne(s, context, alg); });
    AddBenchmark(context, fmt::format("line_check/{}", KeyAlgorithmName(alg)), "checks",
                 [&context, alg](benchmark::State& s) { CheckOne(s, context, alg); });
  }
  std::vector<int> instances = context.options().quick ? std::vector<int>{1, 2} : std::vector<int>{1, 2, 4};
  for (int n : instances) {
    AddBenchmark(context, fmt::format("provision_parallel/n{}", n), "units", [&context](benchmark::State& s) {
      UnitsInParallel(s, context);
    })->Threads(n);
  }
  // A ledger or a token against the same line without, paired: a few percent to tell apart, so at
  // least a second each, even in a quick run; 4 stations too, where the target is.
  double min_time = std::max(1.0, context.options().min_time_seconds);
  auto add_paired = [&](const std::string& name, int stations, LineSetup ours) {
    auto paired = std::make_shared<PairedLines>(
        stations, ours, LineSetup{},
        name.substr(0, name.find('/')) + "_paired" + name.substr(name.find('/')));
    AddBenchmark(context, name, "units", [&context, paired](benchmark::State& s) { paired->Run(s, context); })
        ->Threads(stations)
        ->MinTime(min_time);
  };
  for (LineLedger ledger : {LineLedger::kSqlite, LineLedger::kPostgresql}) {
    for (int n : {1, 4})
      add_paired(fmt::format("ledger/{}/n{}", LineLedgerName(ledger), n), n, {.ledger = ledger});
  }
  add_paired("hsm_key/n1", 1, {.token_key = true});
}

}  // namespace idevid
