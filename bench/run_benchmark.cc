// The whole `idevid run` (every default suite) on the embedded default, as a user runs it: one
// timed run of the idevid binary, which must pass.
#include <fmt/format.h>

#include "bench/bench_registry.h"
#include "engine/process.h"

namespace idevid {
namespace {

Result<void> IdevidRun(const BenchContext& context) {
  const auto& dir = context.options().work_dir;
  IDEVID_ASSIGN_OR_RETURN(
      ChildProcess run,
      ChildProcess::Spawn({.argv = {IdevidExecutable(), "run", "--report", (dir / "idevid-run").string()},
                           .log = dir / "idevid-run.log"}));
  bool ended =
      PollUntil([&] { return run.Ended().has_value() || BenchInterrupted(); }, std::chrono::minutes(5));
  std::string how = run.Ended().value_or("");
  std::uint64_t code = run.status_code().value_or(kProcessDeadline);  // before Stop
  if (!ended || BenchInterrupted()) run.Stop();  // idevid run stops what it started on SIGTERM
  if (how != "exited with status 0") {
    return Fail(ErrorDomain::kProcess, code,
                fmt::format("idevid run {}; its log ends with:\n{}", how.empty() ? "was stopped" : how,
                            LogTail(dir / "idevid-run.log")));
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
