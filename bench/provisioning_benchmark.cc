// Provisioning on disposable swtpm stations (never on the target): one unit and one line check,
// ECC and RSA; and units (provisioned and checked) per minute with N stations at once, one
// benchmark thread each, to show how the line scales with cores.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/x509_vfy.h>

#include "bench/bench_registry.h"
#include "provisioning/line_check.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

Result<void> Provision(BenchContext& context, Station& station, KeyAlgorithm alg, int index) {
  std::string serial = fmt::format("BENCH{:04}", index);
  IDEVID_TRY(ProvisionUnit(station.tpm, context.unit().issuer(),
                           {.serial = serial, .model = "SRX4300", .algorithm = alg, .force = true}),
             "provisioning {} on station {}", serial, index);
  return {};
}

Result<void> LineCheck(BenchContext& context, Station& station, int index) {
  std::string serial = fmt::format("BENCH{:04}", index);
  IDEVID_ASSIGN_OR_RETURN(CheckReport report,
                          CheckUnit(station.tpm, context.factory_bundle(), {.expect_serial = serial}),
                          "the line check of {} on station {}", serial, index);
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
    if (!Continue(state, LineCheck(context, **station, 0))) break;
  }
  CountRate(state);
}

// One thread per station: provision a unit, then its line check.
void UnitsInParallel(benchmark::State& state, BenchContext& context) {
  int index = state.thread_index();
  if (index == 0) (void)context.StartStations(state.threads());  // a failure reaches every StationAt
  auto station = context.StationAt(index);
  Usable(state, station);
  for (auto _ : state) {
    Result<void> unit = Provision(context, **station, KeyAlgorithm::kEccP256, index);
    if (unit) unit = LineCheck(context, **station, index);
    if (!Continue(state, unit)) break;
  }
  CountRate(state);
}

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
}

}  // namespace idevid
