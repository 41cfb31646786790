#include "cli/bench_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "engine/exit_codes.h"
#include "engine/process.h"
#include "engine/tested_unit.h"

namespace idevid::cli {
namespace {

// Replaces this process with idevid-bench; returns only when it cannot be started.
int ExecBench(const std::vector<std::string>& args) {
  auto program = std::filesystem::path(IdevidExecutable()).parent_path() / "idevid-bench";
  std::vector<std::string> argv = {program.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv = CStringArray(argv);
  ::execv(program.c_str(), c_argv.data());
  int exec_errno = errno;
  return ReportError(
      Error(ErrorDomain::kIo, static_cast<std::uint64_t>(exec_errno),
            fmt::format("cannot run {}; it is built beside idevid (cmake --build)", program.string())));
}

}  // namespace

void AddBenchCommand(CLI::App& app, int* exit_code) {
  CLI::App* bench = app.add_subcommand(
      "bench", "The performance suite: every figure beside its comparator as a ratio (idevid bench --help)");
  bench->prefix_command();
  bench->set_help_flag();  // --help goes to idevid-bench
  bench->callback([bench, exit_code] { *exit_code = ExecBench(bench->remaining()); });
}

}  // namespace idevid::cli
