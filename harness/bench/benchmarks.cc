#include "harness/bench/benchmarks.h"

#include <atomic>

namespace idevid {
namespace {

std::atomic<bool> g_interrupted{false};

}  // namespace

std::map<std::string, std::string>& BenchUnits() {
  static std::map<std::string, std::string> units;
  return units;
}

benchmark::internal::Benchmark* AddBenchmark(const BenchContext& context, const std::string& name,
                                             const std::string& unit,
                                             std::function<void(benchmark::State&)> fn, int iterations) {
  BenchUnits()[name] = unit;
  auto* b = benchmark::RegisterBenchmark(name.c_str(), [fn = std::move(fn)](benchmark::State& state) {
              if (BenchInterrupted()) state.SkipWithError("interrupted");
              fn(state);
            })
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
  return iterations > 0 ? b->Iterations(iterations) : b->MinTime(context.options().min_time_seconds);
}

void CountRate(benchmark::State& state) {
  state.counters[kRateCounter] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

bool BenchInterrupted() { return g_interrupted.load(); }
void InterruptBench() { g_interrupted = true; }

}  // namespace idevid
