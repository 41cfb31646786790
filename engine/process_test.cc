#include "engine/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;
using idevid::testing::IsOk;
using idevid::testing::ResultIs;
using idevid::testing::TempDir;

constexpr char kMissingProgram[] = "idevid-test-no-such-program";

bool Alive(pid_t pid) { return ProcessCommandLine(pid).has_value(); }

bool ProcEntryExists(pid_t pid) { return std::filesystem::exists("/proc/" + std::to_string(pid)); }

// Spawns `argv` logging into `log`; fails the test when it cannot be spawned.
ChildProcess SpawnOrDie(const std::vector<std::string>& argv, const std::filesystem::path& log,
                        std::map<std::string, std::string> env = {}) {
  auto child = ChildProcess::Spawn({.argv = argv, .log = log, .env = std::move(env)});
  EXPECT_THAT(child, IsOk());
  return child ? std::move(*child) : ChildProcess();
}

// Spawns `sleep <seconds>` and waits until it runs: right after fork the child still shows this
// process's command line.
ChildProcess SpawnSleep(const std::filesystem::path& dir, int seconds = 30) {
  std::string expected = "sleep " + std::to_string(seconds);
  ChildProcess child = SpawnOrDie({"sleep", std::to_string(seconds)}, dir / "sleep.log");
  EXPECT_TRUE(PollUntil(
      [&] {
        auto line = ProcessCommandLine(child.pid());
        return line && line->find(expected) != std::string::npos;
      },
      10s));
  return child;
}

// Kills and reaps a child of this process that no ChildProcess manages any more.
class ReapGuard {
 public:
  explicit ReapGuard(pid_t pid) : pid_(pid) {}
  ~ReapGuard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  ReapGuard(const ReapGuard&) = delete;
  ReapGuard& operator=(const ReapGuard&) = delete;

 private:
  pid_t pid_;
};

// Waits until the child ended by itself and returns how.
std::string AwaitEnd(ChildProcess& child) {
  EXPECT_TRUE(PollUntil([&] { return child.Ended().has_value(); }, 10s));
  return child.Ended().value_or("still running");
}

bool LogContains(const std::filesystem::path& log, const std::string& text) {
  return LogTail(log).find(text) != std::string::npos;
}

// --- RunCommand ----------------------------------------------------------------------------------

// Runs RunCommand on its own thread; nullopt when it has not returned 5 s after its deadline (the
// thread is then abandoned, so that a hang fails this test instead of blocking the suite).
std::optional<Result<CommandOutput>> RunBounded(const std::vector<std::string>& argv,
                                                const std::map<std::string, std::string>& env,
                                                std::chrono::milliseconds timeout,
                                                const std::string& stdin_data = {}) {
  auto promise = std::make_shared<std::promise<Result<CommandOutput>>>();
  auto future = promise->get_future();
  std::thread([=] { promise->set_value(RunCommand(argv, env, timeout, stdin_data)); }).detach();
  if (future.wait_for(timeout + 5s) != std::future_status::ready) return std::nullopt;
  return future.get();
}

struct RunCase {
  std::string name;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string stdin_data;
  int exit_status;
  std::string out;
  std::string err;
};
void PrintTo(const RunCase& c, std::ostream* os) { *os << c.name; }

class ProcessRunCommandTest : public ::testing::TestWithParam<RunCase> {};

TEST_P(ProcessRunCommandTest, CapturesOutputAndExitStatus) {
  const RunCase& c = GetParam();
  auto result = RunBounded(c.argv, c.env, 10s, c.stdin_data);
  ASSERT_TRUE(result) << "RunCommand did not return within its deadline";
  ASSERT_THAT(*result, IsOk());
  const CommandOutput& output = **result;
  EXPECT_EQ(output.exit_status, c.exit_status);
  EXPECT_EQ(output.out, c.out);
  EXPECT_EQ(output.err, c.err);
}

const std::string kBigInput = [] {
  std::string s;
  for (int i = 0; s.size() < (1u << 20); ++i) s += std::to_string(i) + "\n";
  return s;
}();

INSTANTIATE_TEST_SUITE_P(
    ProcessCases, ProcessRunCommandTest,
    ::testing::Values(
        RunCase{
            "SeparatesStreams", {"sh", "-c", "echo out; echo err >&2; exit 3"}, {}, "", 3, "out\n", "err\n"},
        RunCase{"FeedsStdin", {"cat"}, {}, "line 1\nline 2", 0, "line 1\nline 2", ""},
        RunCase{"FeedsMoreThanAPipeHolds",
                {"sh", "-c", "wc -c | tr -d ' '"},
                {},
                kBigInput,
                0,
                std::to_string(kBigInput.size()) + "\n",
                ""},
        RunCase{"FeedsAndDrainsMoreThanAPipeHolds", {"cat"}, {}, kBigInput, 0, kBigInput, ""},
        RunCase{"StdinIsClosedWhenEmpty", {"cat"}, {}, "", 0, "", ""},
        RunCase{"AddsEnvironment",
                {"sh", "-c", "printf %s \"$IDEVID_TEST_VALUE\""},
                {{"IDEVID_TEST_VALUE", "from the caller"}},
                "",
                0,
                "from the caller",
                ""},
        RunCase{"ReplacesEnvironment",
                {"sh", "-c", "printf %s \"$HOME\""},
                {{"HOME", "/replaced"}},
                "",
                0,
                "/replaced",
                ""},
        RunCase{"MissingProgramExits127", {kMissingProgram}, {}, "", 127, "", ""},
        RunCase{"SignalEndIsMinusOne", {"sh", "-c", "kill -9 $$"}, {}, "", -1, "", ""}),
    [](const auto& instance) { return instance.param.name; });

TEST(ProcessRunCommandLimitsTest, KillsTheCommandAtTheDeadline) {
  auto result = RunBounded({"sleep", "30"}, {}, 200ms);
  ASSERT_TRUE(result) << "RunCommand did not return within its deadline";
  EXPECT_THAT(*result, ResultIs(ErrorDomain::kProcess, kProcessDeadline,
                                StartsWith("sleep did not finish within 200 ms")));
}

TEST(ProcessRunCommandLimitsTest, StatusCodeIsTheExitStatusOrTheSignalAsAShellReportsIt) {
  auto exited = RunCommand({"sh", "-c", "exit 3"});
  ASSERT_THAT(exited, IsOk());
  EXPECT_EQ(exited->status_code, 3u);
  auto killed = RunCommand({"sh", "-c", "kill -9 $$"});
  ASSERT_THAT(killed, IsOk());
  EXPECT_EQ(killed->status_code, 128u + SIGKILL);
}

TEST(ProcessRunCommandLimitsTest, EmptyCommandIsAUsageError) {
  EXPECT_THAT(RunCommand({}),
              ResultIs(ErrorDomain::kUsage, UsageCode::kMissingArgument, StartsWith("no command to run")));
}

// A command that ends without reading its input must not take the caller down with SIGPIPE.
// Runs in a death-test child so that a signal fails only this test.
TEST(ProcessRunCommandDeathTest, CommandThatIgnoresStdinStillReportsItsStatus) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        auto result = RunCommand({"sh", "-c", "exit 7"}, {}, 10s, kBigInput);
        std::_Exit(result ? result->exit_status : 100);
      },
      ::testing::ExitedWithCode(7), "");
}

// Gives each test its own directory for the logs of the processes it starts.
class WithLogDir {
 protected:
  TempDir temp_;
  const std::filesystem::path dir_ = temp_.path();
};

class ProcessChildTest : public WithLogDir, public ::testing::Test {};
class ProcessStopByPidTest : public WithLogDir, public ::testing::Test {};

// --- ChildProcess --------------------------------------------------------------------------------

TEST_F(ProcessChildTest, MissingProgramEndsWith127AndLogsExecFailed) {
  auto log = dir_ / "missing.log";
  ChildProcess child = SpawnOrDie({kMissingProgram, "--flag"}, log);
  EXPECT_EQ(child.name(), kMissingProgram);
  EXPECT_EQ(AwaitEnd(child), "exited with status 127");
  EXPECT_THAT(LogTail(log), HasSubstr("exec failed"));
}

TEST_F(ProcessChildTest, StopTerminatesWithSigterm) {
  ChildProcess child = SpawnSleep(dir_);
  pid_t pid = child.pid();
  ASSERT_TRUE(Alive(pid));
  EXPECT_EQ(child.Stop(), "killed by signal 15");
  EXPECT_FALSE(ProcEntryExists(pid)) << "stopped process was not reaped";
  EXPECT_EQ(child.pid(), -1);
}

TEST_F(ProcessChildTest, StopEscalatesToSigkillAfterTheGraceTime) {
  auto log = dir_ / "stubborn.log";
  ChildProcess child = SpawnOrDie({"sh", "-c", "trap '' TERM; echo ready; exec sleep 30"}, log);
  ASSERT_TRUE(PollUntil([&] { return LogContains(log, "ready"); }, 10s));
  EXPECT_EQ(child.Stop(200ms), "killed by signal 9");
}

TEST_F(ProcessChildTest, ReportsHowAProcessEndedByItself) {
  ChildProcess child = SpawnOrDie({"sh", "-c", "exit 5"}, dir_ / "exit.log");
  EXPECT_EQ(AwaitEnd(child), "exited with status 5");
  EXPECT_EQ(child.Stop(), "exited with status 5");
}

TEST_F(ProcessChildTest, StatusCodeIsTheExitStatusOrTheSignalAsAShellReportsIt) {
  ChildProcess exited = SpawnOrDie({"sh", "-c", "exit 5"}, dir_ / "exit.log");
  EXPECT_EQ(exited.status_code(), std::nullopt);
  AwaitEnd(exited);
  EXPECT_EQ(exited.status_code(), 5u);
  ChildProcess stopped = SpawnSleep(dir_);
  stopped.Stop();
  EXPECT_EQ(stopped.status_code(), 128u + SIGTERM);
}

TEST_F(ProcessChildTest, PassesEnvironmentAndAppendsToTheLog) {
  auto log = dir_ / "env.log";
  std::ofstream(log) << "earlier line\n";
  ChildProcess child =
      SpawnOrDie({"sh", "-c", "echo \"value=$IDEVID_TEST_VALUE\" >&2"}, log, {{"IDEVID_TEST_VALUE", "42"}});
  AwaitEnd(child);
  EXPECT_EQ(LogTail(log), "earlier line\nvalue=42\n");
}

TEST_F(ProcessChildTest, DestructorStopsAndReapsTheProcess) {
  pid_t pid = -1;
  {
    ChildProcess child = SpawnSleep(dir_);
    pid = child.pid();
    ASSERT_TRUE(Alive(pid));
  }
  EXPECT_FALSE(ProcEntryExists(pid));
}

TEST_F(ProcessChildTest, MoveTransfersOwnership) {
  ChildProcess first = SpawnSleep(dir_);
  pid_t pid = first.pid();
  ChildProcess second = std::move(first);
  EXPECT_EQ(first.pid(), -1);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(second.pid(), pid);
  EXPECT_EQ(first.Stop(), "not running");
  EXPECT_TRUE(Alive(pid)) << "stopping the moved-from object must not touch the process";
  EXPECT_EQ(second.Stop(), "killed by signal 15");
}

TEST_F(ProcessChildTest, ReleaseLeavesTheProcessRunning) {
  pid_t pid = -1;
  {
    ChildProcess child = SpawnSleep(dir_);
    pid = child.Release();
    EXPECT_EQ(child.pid(), -1);
  }
  ReapGuard reap(pid);  // still this process's child
  EXPECT_TRUE(Alive(pid));
  auto stopped = StopProcessByPid(pid, "sleep 30");
  EXPECT_THAT(stopped, IsOk());
  EXPECT_FALSE(Alive(pid));
}

struct SpawnFailureCase {
  std::string name;
  std::vector<std::string> argv;
  std::string log;
  ErrorDomain domain;
  std::uint64_t code;
  std::string fragment;  // the start of the message
};
void PrintTo(const SpawnFailureCase& c, std::ostream* os) { *os << c.name; }

class ProcessSpawnFailureTest : public WithLogDir, public ::testing::TestWithParam<SpawnFailureCase> {};

TEST_P(ProcessSpawnFailureTest, NamesTheProblem) {
  const SpawnFailureCase& c = GetParam();
  EXPECT_THAT(ChildProcess::Spawn({.argv = c.argv, .log = dir_ / c.log}),
              ResultIs(c.domain, c.code, StartsWith(c.fragment)));
}

INSTANTIATE_TEST_SUITE_P(
    ProcessCases, ProcessSpawnFailureTest,
    ::testing::Values(SpawnFailureCase{"NoProgram",
                                       {},
                                       "x.log",
                                       ErrorDomain::kUsage,
                                       static_cast<std::uint64_t>(UsageCode::kMissingArgument),
                                       "no program to start"},
                      SpawnFailureCase{"LogDirectoryMissing",
                                       {"true"},
                                       "no-such-dir/x.log",
                                       ErrorDomain::kIo,
                                       ENOENT,
                                       "cannot open log"}),
    [](const auto& instance) { return instance.param.name; });

// --- StopProcessByPid, ProcessCommandLine --------------------------------------------------------

TEST_F(ProcessStopByPidTest, LeavesAProcessWithAnotherCommandLineAlone) {
  ChildProcess child = SpawnSleep(dir_);
  EXPECT_THAT(
      StopProcessByPid(child.pid(), "swtpm --tpm2", 200ms),
      ResultIs(ErrorDomain::kIo, ESRCH,
               AllOf(StartsWith("pid " + std::to_string(child.pid()) + " is not the expected process"),
                     HasSubstr("expected it to contain 'swtpm --tpm2'"), HasSubstr("leaving it alone"))));
  EXPECT_FALSE(child.Ended().has_value()) << "the process must not have been signalled";
}

TEST_F(ProcessStopByPidTest, StopsAMatchingProcess) {
  ChildProcess child = SpawnSleep(dir_, 31);
  pid_t pid = child.pid();
  auto stopped = StopProcessByPid(pid, "sleep 31");
  ASSERT_THAT(stopped, IsOk());
  EXPECT_FALSE(Alive(pid));
  EXPECT_EQ(child.Stop(), "killed by signal 15");
}

TEST_F(ProcessStopByPidTest, StopsAProcessThatIgnoresSigterm) {
  auto log = dir_ / "stubborn.log";
  ChildProcess child = SpawnOrDie({"sh", "-c", "trap '' TERM; echo ready; exec sleep 32"}, log);
  ASSERT_TRUE(PollUntil([&] { return LogContains(log, "ready"); }, 10s));
  auto stopped = StopProcessByPid(child.pid(), "sleep 32", 200ms);
  ASSERT_THAT(stopped, IsOk());
  EXPECT_EQ(child.Stop(), "killed by signal 9");
}

TEST_F(ProcessStopByPidTest, APidThatIsGoneIsSuccess) {
  ChildProcess child = SpawnOrDie({"true"}, dir_ / "true.log");
  pid_t pid = child.pid();
  AwaitEnd(child);
  child.Stop();  // reaps it
  ASSERT_FALSE(ProcEntryExists(pid));
  auto stopped = StopProcessByPid(pid, "true");
  EXPECT_THAT(stopped, IsOk());
}

TEST_F(ProcessStopByPidTest, CommandLineJoinsArgumentsWithBlanks) {
  ChildProcess child = SpawnSleep(dir_, 33);
  auto line = ProcessCommandLine(child.pid());
  ASSERT_TRUE(line);
  EXPECT_THAT(*line, HasSubstr("sleep 33"));
  child.Stop();
  EXPECT_EQ(ProcessCommandLine(child.pid()), std::nullopt);
}

// --- PollUntil -----------------------------------------------------------------------------------

TEST(ProcessPollTest, ReturnsAsSoonAsReady) {
  int calls = 0;
  EXPECT_TRUE(PollUntil([&] { return ++calls == 3; }, 10s, 1ms));
  EXPECT_EQ(calls, 3);
}

TEST(ProcessPollTest, GivesUpAtTheDeadline) {
  int calls = 0;
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(PollUntil([&] { return ++calls < 0; }, 50ms, 5ms));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 50ms);
  EXPECT_LT(elapsed, 5s);
  EXPECT_GE(calls, 2) << "must ask again after the first answer";
}

// --- LogTail, environment helpers ----------------------------------------------------------------

struct TailCase {
  std::string name;
  std::string content;
  std::size_t max_bytes;
  std::string expected;
};
void PrintTo(const TailCase& c, std::ostream* os) { *os << c.name; }

class ProcessLogTailTest : public WithLogDir, public ::testing::TestWithParam<TailCase> {};

TEST_P(ProcessLogTailTest, ReturnsTheEndOfTheLog) {
  const TailCase& c = GetParam();
  std::ofstream(dir_ / "log", std::ios::binary) << c.content;
  EXPECT_EQ(LogTail(dir_ / "log", c.max_bytes), c.expected);
}

INSTANTIATE_TEST_SUITE_P(ProcessCases, ProcessLogTailTest,
                         ::testing::Values(TailCase{"Short", "abc\n", 10, "abc\n"},
                                           TailCase{"Exact", "0123456789", 10, "0123456789"},
                                           TailCase{"Long", "0123456789", 4, "...6789"},
                                           TailCase{"Empty", "", 10, ""}),
                         [](const auto& instance) { return instance.param.name; });

TEST(ProcessLogTailMissingTest, UnreadableLogIsEmpty) { EXPECT_EQ(LogTail("/nonexistent/idevid/log"), ""); }

TEST(ProcessEnvironmentTest, MergedEnvironmentAddsAndReplaces) {
  auto merged = MergedEnvironment({{"HOME", "/replaced"}, {"IDEVID_TEST_ADDED", "yes"}});
  auto count_prefix = [&](const std::string& prefix) {
    return std::count_if(merged.begin(), merged.end(),
                         [&](const std::string& e) { return e.starts_with(prefix); });
  };
  EXPECT_EQ(count_prefix("HOME="), 1);
  EXPECT_THAT(merged, ::testing::Contains("HOME=/replaced"));
  EXPECT_THAT(merged, ::testing::Contains("IDEVID_TEST_ADDED=yes"));
  EXPECT_EQ(count_prefix("PATH="), ::getenv("PATH") != nullptr ? 1 : 0);
}

TEST(ProcessEnvironmentTest, CStringArrayPointsIntoTheStringsAndEndsWithNull) {
  std::vector<std::string> strings = {"a=1", "b=2"};
  auto array = CStringArray(strings);
  ASSERT_EQ(array.size(), 3u);
  EXPECT_EQ(array[0], strings[0].data());
  EXPECT_EQ(array[1], strings[1].data());
  EXPECT_EQ(array[2], nullptr);
}

}  // namespace
}  // namespace idevid
