// The whole `idevid run` (every default suite) on the embedded default, as a user runs it: one
// timed run of the idevid binary, which must pass.
#include <fmt/format.h>

#include "harness/bench/benchmarks.h"
#include "harness/process.h"

namespace idevid {
namespace {

Result<void> IdevidRun(const BenchContext& context) {
  auto report = context.options().work_dir / "idevid-run";
  auto run =
      RunCommand({IdevidExecutable(), "run", "--report", report.string()}, {}, std::chrono::minutes(5));
  if (!run) return Fail(run.error());
  if (run->exit_status != 0) {
    return Fail(ErrorDomain::kProcess, run->exit_status,
                fmt::format("idevid run exited with {}: {}", run->exit_status, run->err.substr(0, 2000)));
  }
  return {};
}

}  // namespace

void RegisterRunBenchmark(BenchContext& context) {
  AddBenchmark(
      context, "idevid_run/embedded", "runs",
      [&context](benchmark::State& state) {
        for (auto _ : state) {
          if (!Continue(state, IdevidRun(context))) break;
        }
        CountRate(state);
      },
      1);
}

}  // namespace idevid
