// How long one unit's provisioning and one line check take on swtpm, ECC and RSA.
#include <benchmark/benchmark.h>

#include <memory>
#include <stdexcept>

#include "core/tpm_context.h"
#include "fixtures/tpm_fixture.h"
#include "harness/swtpm_instance.h"
#include "provisioning/factory.h"
#include "provisioning/line_check.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

// One manufactured swtpm and one factory per key algorithm, shared by the benchmarks.
struct Bench {
  testing::TempDir dir;
  std::optional<SwtpmInstance> swtpm;
  std::optional<TpmContext> tpm;
  std::optional<Factory> factory;
  std::optional<TrustBundle> bundle;

  explicit Bench(KeyAlgorithm alg) {
    auto started = SwtpmInstance::Start({.state_dir = dir.path() / "tpm", .manufacture = true});
    if (!started) throw std::runtime_error(started.error().ToString());
    swtpm = std::move(*started);
    auto opened = TpmContext::Open(swtpm->tcti());
    if (!opened) throw std::runtime_error(opened.error().ToString());
    tpm = std::move(*opened);
    auto made = InitFactory({.dir = dir.path() / "factory", .algorithm = alg});
    if (!made) throw std::runtime_error(made.error().ToString());
    factory = std::move(*made);
    auto loaded = LoadTrustBundle(FactoryFiles::Chain(factory->dir));
    if (!loaded) throw std::runtime_error(loaded.error().ToString());
    bundle = std::move(*loaded);
  }
  void Provision(KeyAlgorithm alg, benchmark::State& state) {
    auto r = ProvisionUnit(*tpm, *factory,
                           {.serial = "CW1", .model = "SRX4300", .algorithm = alg, .force = true});
    if (!r) state.SkipWithError(r.error().ToString().c_str());
  }
};

Bench& For(KeyAlgorithm alg) {
  static std::unique_ptr<Bench> ecc, rsa;
  auto& slot = alg == KeyAlgorithm::kEccP256 ? ecc : rsa;
  if (!slot) slot = std::make_unique<Bench>(alg);
  return *slot;
}

void BM_ProvisionUnit(benchmark::State& state) {
  auto alg = static_cast<KeyAlgorithm>(state.range(0));
  Bench& bench = For(alg);
  for (auto _ : state) bench.Provision(alg, state);
  state.SetLabel(std::string(KeyAlgorithmName(alg)));
}

void BM_LineCheck(benchmark::State& state) {
  auto alg = static_cast<KeyAlgorithm>(state.range(0));
  Bench& bench = For(alg);
  bench.Provision(alg, state);
  for (auto _ : state) {
    auto report = CheckUnit(*bench.tpm, *bench.bundle, {.expect_serial = "CW1"});
    if (!report || !report->passed()) state.SkipWithError("the line check did not pass");
  }
  state.SetLabel(std::string(KeyAlgorithmName(alg)));
}

constexpr auto kEcc = static_cast<int64_t>(KeyAlgorithm::kEccP256);
constexpr auto kRsa = static_cast<int64_t>(KeyAlgorithm::kRsa2048);

BENCHMARK(BM_ProvisionUnit)->Arg(kEcc)->Arg(kRsa)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LineCheck)->Arg(kEcc)->Arg(kRsa)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace idevid

BENCHMARK_MAIN();
