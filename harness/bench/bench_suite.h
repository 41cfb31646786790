// Runs the benchmarks of `idevid bench` on a prepared context and turns Google Benchmark's runs
// into a bench record: figures, comparisons with their ratios and targets, target and host.
#pragma once

#include <functional>
#include <string>

#include "harness/bench/bench_context.h"
#include "harness/bench/bench_record.h"

namespace idevid {

// `filter` is Google Benchmark's regular expression over the figure names (".": all).
// `on_figure` is called as each benchmark finishes. Fails only when the provisioning stations
// the selected benchmarks need cannot be started.
Result<BenchRecord> RunBenchSuite(BenchContext& context, const std::string& filter,
                                  const std::function<void(const BenchFigure&)>& on_figure);

}  // namespace idevid
