// The benchmarks of `idevid bench`, registered with Google Benchmark. Each counts its operations
// in the counter "per_second" (a rate over all its threads, real time) and names what it counts.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "bench/bench_context.h"

namespace idevid {

// Counter that holds a benchmark's rate.
inline constexpr const char* kRateCounter = "per_second";

// Counter for the rate of another figure measured in the same loop (a comparator run alongside):
// "per_second:<figure name>", reported as that figure with the benchmark's unit.
std::string PairedRateCounter(const std::string& figure);
std::optional<std::string> PairedFigureName(const std::string& counter);

// What each registered benchmark counts, by name ("handshakes").
std::map<std::string, std::string>& BenchUnits();

// Registers `fn` as benchmark `name` counting `unit`, measured in real time for the context's
// minimum time (or for exactly `iterations`, when given), and records its unit.
benchmark::internal::Benchmark* AddBenchmark(const BenchContext& context, const std::string& name,
                                             const std::string& unit,
                                             std::function<void(benchmark::State&)> fn, int iterations = 0);

// Sets the rate counter from the iterations run (call after the loop).
void CountRate(benchmark::State& state);

// Set by SIGINT/SIGTERM: benchmarks not yet started are skipped, running ones stop.
bool BenchInterrupted();
void InterruptBench();

// Marks the benchmark failed with `error`, as "[domain 0x..] message" (Error::ToString), so that
// the figure keeps the error's domain; or as "interrupted" after an interrupt.
void MarkFailed(benchmark::State& state, const Error& error);

// Whether a benchmark's set-up succeeded; if not, marks it failed with the error (its loop then
// runs no iteration, which every thread must still enter).
template <typename T>
bool Usable(benchmark::State& state, const Result<T>& ready) {
  if (!ready && !state.error_occurred()) MarkFailed(state, ready.error());
  return !state.error_occurred();
}

// Whether the loop goes on after one operation: false, with the benchmark marked failed, when
// `step` failed or the bench was interrupted.
template <typename T>
bool Continue(benchmark::State& state, const Result<T>& step) {
  if (step && !BenchInterrupted()) return true;
  // Interrupted by a signal: 128 + SIGINT, as a shell reports it (MarkFailed shows "interrupted").
  MarkFailed(state, step ? Error(ErrorDomain::kProcess, 128 + SIGINT, "interrupted") : step.error());
  return false;
}

// Times one call, adding its wall time to `total`: for a benchmark that measures two things in
// one loop (ours and a comparator, alternating) and reports the second as a paired figure.
template <typename F>
auto Timed(std::chrono::duration<double>& total, F&& call) {
  auto start = std::chrono::steady_clock::now();
  auto result = call();
  total += std::chrono::steady_clock::now() - start;
  return result;
}

// Splits a failed figure's message into the error's domain ("tls") and its text; the domain is
// empty when the message did not come from MarkFailed.
std::pair<std::string, std::string> SplitFailure(const std::string& message);

void RegisterSignBenchmarks(BenchContext& context);
void RegisterHandshakeBenchmarks(BenchContext& context);
void RegisterBootBenchmarks(BenchContext& context);
void RegisterProvisioningBenchmarks(BenchContext& context);
void RegisterEnrolmentBenchmarks(BenchContext& context);
void RegisterAttestationBenchmarks(BenchContext& context);
void RegisterRunBenchmark(BenchContext& context);

}  // namespace idevid
