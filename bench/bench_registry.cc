#include "bench/bench_registry.h"

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
  auto* b = benchmark::RegisterBenchmark(name.c_str(),
                                         [fn = std::move(fn)](benchmark::State& state) {
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

std::string PairedRateCounter(const std::string& figure) { return std::string(kRateCounter) + ":" + figure; }

std::optional<std::string> PairedFigureName(const std::string& counter) {
  std::string prefix = PairedRateCounter("");
  if (counter.size() <= prefix.size() || counter.rfind(prefix, 0) != 0) return std::nullopt;
  return counter.substr(prefix.size());
}

void MarkFailed(benchmark::State& state, const Error& error) {
  state.SkipWithError(BenchInterrupted() ? "interrupted" : error.ToString().c_str());
}

std::pair<std::string, std::string> SplitFailure(const std::string& message) {
  auto space = message.find(' ');
  auto end = message.find("] ");
  if (message.empty() || message[0] != '[' || space == std::string::npos || end == std::string::npos ||
      space > end) {
    return {"", message};
  }
  return {message.substr(1, space - 1), message.substr(end + 2)};
}

bool BenchInterrupted() { return g_interrupted.load(); }
void InterruptBench() { g_interrupted = true; }

}  // namespace idevid
