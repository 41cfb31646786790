// Runs the benchmarks of `idevid bench` on a prepared context and turns Google Benchmark's runs
// into a bench record: figures, comparisons with their ratios and targets, target and host.
#pragma once

#include <functional>
#include <string>

#include "bench/bench_context.h"
#include "bench/bench_record.h"
#include "core/result.h"

namespace idevid {

// `filter` is Google Benchmark's regular expression over the figure names (".": all).
// `on_figure` is called as each benchmark finishes. Fails with kUsage when the filter selects
// no benchmark (check it with ValidFilter first).
Result<BenchRecord> RunBenchSuite(BenchContext& context, const std::string& filter,
                                  const std::function<void(const BenchFigure&)>& on_figure);

// Whether `filter` is a regular expression as Google Benchmark reads it (POSIX extended);
// kUsage naming the problem otherwise.
Result<void> ValidFilter(const std::string& filter);

}  // namespace idevid
