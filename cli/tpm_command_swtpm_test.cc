// `idevid tpm start|info|stop`, run as the built binary against real swtpm / tpm2-abrmd processes.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/tpm_state_file.h"
#include "core/event_log.h"
#include "core/file_io.h"
#include "core/tpm_pcr.h"
#include "engine/exit_codes.h"
#include "engine/ports.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"

namespace idevid::cli {
namespace {

using idevid::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

// Runs the idevid binary with `args`; a command that cannot be run fails the test.
CommandOutput Idevid(const std::vector<std::string>& args,
                     const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv = {IDEVID_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  auto output = RunCommand(argv, env, 90s);
  EXPECT_TRUE(output) << output.error().ToString();
  return output.value_or(CommandOutput{});
}

std::string Describe(const CommandOutput& output) {
  return "exit " + std::to_string(output.exit_status) + "\nstdout: " + output.out + "\nstderr: " + output.err;
}

// The processes a record names, with what each one's command line contains.
struct RecordedProcess {
  std::string name;
  pid_t pid;
  std::string must_contain;
};

std::vector<RecordedProcess> ProcessesOf(const TpmStateRecord& record) {
  std::vector<RecordedProcess> processes = {{"swtpm", record.swtpm_pid, record.state_dir}};
  if (record.abrmd) {
    processes.push_back({"tpm2-abrmd", record.abrmd->abrmd_pid, record.abrmd->bus_name});
    processes.push_back({"dbus-daemon", record.abrmd->dbus_pid, record.abrmd->bus_address});
  }
  return processes;
}

// Each test gets its own state directory; whatever `idevid tpm start` left running is stopped
// by pid at the end, also when the test failed half-way.
class TpmCommandTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (std::filesystem::exists(StateFilePath(state_))) Idevid({"tpm", "stop", "--state", state_});
    for (const auto& process : started_processes_) {
      (void)StopProcessByPid(process.pid, process.must_contain);
    }
  }

  // `idevid tpm start --state D --json [--abrmd] [extra...]`: asserts success, keeps the printed
  // record.
  void StartTpm(bool abrmd, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"tpm", "start", "--state", state_, "--json"};
    if (abrmd) args.push_back("--abrmd");
    args.insert(args.end(), extra.begin(), extra.end());
    CommandOutput output = Idevid(args);
    ASSERT_EQ(output.exit_status, kExitPass) << Describe(output);
    ASSERT_NO_FATAL_FAILURE(RememberStartedProcesses());
    started_ = nlohmann::json::parse(output.out, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(started_.is_object()) << Describe(output);
  }

  // Notes what the state file says was started, for TearDown.
  void RememberStartedProcesses() {
    auto record = ReadStateRecord(state_);
    ASSERT_TRUE(record) << record.error().ToString();
    started_processes_ = ProcessesOf(*record);
  }

  // The environment a client of the started TPM needs (the private bus when there is one).
  std::map<std::string, std::string> ClientEnvironment() const {
    if (!started_.contains("abrmd")) return {};
    return {{"DBUS_SESSION_BUS_ADDRESS", started_["abrmd"]["bus_address"].get<std::string>()}};
  }

  TpmStateRecord Record() const {
    auto record = ReadStateRecord(state_);
    EXPECT_TRUE(record) << record.error().ToString();
    return record.value_or(TpmStateRecord{});
  }

  TempDir temp_;
  const std::string state_ = (temp_.path() / "state").string();
  nlohmann::json started_;
  std::vector<RecordedProcess> started_processes_;
};

// --- start, info, stop, directly and through tpm2-abrmd ------------------------------------------

class TpmCommandSwtpmTest : public TpmCommandTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartTpm(abrmd())); }
  bool abrmd() const { return GetParam(); }
};

TEST_P(TpmCommandSwtpmTest, StartPrintsTheRecordAndLeavesTheProcessesRunning) {
  EXPECT_THAT(started_.value("tcti", ""), StartsWith(abrmd() ? "tabrmd:" : "swtpm:"));
  EXPECT_EQ(started_.contains("abrmd"), abrmd());
  EXPECT_EQ(started_["state_dir"], std::filesystem::absolute(state_).string());
  TpmStateRecord record = Record();
  EXPECT_EQ(ToJson(record), started_) << "stdout and the state file must agree";
  for (const auto& process : ProcessesOf(record)) {
    EXPECT_THAT(ProcessCommandLine(process.pid).value_or("gone"), HasSubstr(process.must_contain))
        << process.name << " " << process.pid;
  }
}

TEST_P(TpmCommandSwtpmTest, InfoByTctiReportsTheIbmSimulator) {
  CommandOutput output =
      Idevid({"tpm", "info", "--tcti", started_["tcti"].get<std::string>(), "--json"}, ClientEnvironment());
  ASSERT_EQ(output.exit_status, kExitPass) << Describe(output);
  auto info = nlohmann::json::parse(output.out);
  EXPECT_EQ(info["manufacturer"], "IBM");
  EXPECT_GT(info["nv_buffer_max"].get<int>(), 0);
}

TEST_P(TpmCommandSwtpmTest, InfoByStateFindsTheTpmAndItsBus) {
  CommandOutput output = Idevid({"tpm", "info", "--state", state_, "--json"});
  ASSERT_EQ(output.exit_status, kExitPass) << Describe(output);
  EXPECT_EQ(nlohmann::json::parse(output.out)["manufacturer"], "IBM");
}

TEST_P(TpmCommandSwtpmTest, StartingAgainWhileRunningIsRefused) {
  CommandOutput again = Idevid({"tpm", "start", "--state", state_, "--json"});
  EXPECT_EQ(again.exit_status, kExitUsage) << Describe(again);
  EXPECT_THAT(again.err, HasSubstr("still running"));
  EXPECT_EQ(ToJson(Record()), started_) << "the record of the running TPM must stay";
  EXPECT_TRUE(ProcessCommandLine(started_["swtpm_pid"].get<pid_t>()).has_value());
}

TEST_P(TpmCommandSwtpmTest, StopEndsEveryProcessOnce) {
  CommandOutput stop = Idevid({"tpm", "stop", "--state", state_});
  ASSERT_EQ(stop.exit_status, kExitPass) << Describe(stop);
  for (const auto& process : started_processes_) {
    EXPECT_FALSE(ProcessCommandLine(process.pid).has_value()) << process.name << " still runs";
  }
  EXPECT_FALSE(std::filesystem::exists(StateFilePath(state_)));
  CommandOutput again = Idevid({"tpm", "stop", "--state", state_});
  EXPECT_EQ(again.exit_status, kExitUsage) << Describe(again);
  EXPECT_THAT(again.err, HasSubstr("no TPM was started"));
}

INSTANTIATE_TEST_SUITE_P(TpmCommand, TpmCommandSwtpmTest, ::testing::Bool(),
                         [](const auto& instance) { return instance.param ? "Abrmd" : "Direct"; });

TEST_F(TpmCommandTest, StartWithoutJsonPrintsTheTctiAndTheBusToExport) {
  CommandOutput output = Idevid({"tpm", "start", "--state", state_, "--abrmd"});
  ASSERT_EQ(output.exit_status, kExitPass) << Describe(output);
  ASSERT_NO_FATAL_FAILURE(RememberStartedProcesses());
  TpmStateRecord record = Record();
  ASSERT_TRUE(record.abrmd);
  EXPECT_EQ(output.out, record.tcti + "\n");
  EXPECT_THAT(output.err, HasSubstr("export DBUS_SESSION_BUS_ADDRESS=" + record.abrmd->bus_address));
}

// --- the measured boot of a started TPM -------------------------------------------------------------

// The PCR values the event log that `idevid tpm start` named predicts, checked against the TPM's.
PcrValues ReplayOfTheStartedLog(const nlohmann::json& started) {
  EXPECT_EQ(started["event_log"].value("pcrs", ""), "sha256:0,1,2,3,4,5,6,7,8,9");
  auto bytes = ReadFileBytes(started["event_log"].value("path", ""));
  EXPECT_TRUE(bytes) << bytes.error().ToString();
  auto log = ParseEventLog(bytes.value_or(Bytes{}));
  EXPECT_TRUE(log) << log.error().ToString();
  auto replay = ReplayEventLog(log.value_or(EventLog{}));
  EXPECT_TRUE(replay) << replay.error().ToString();
  auto tpm = TpmContext::Open(started["tcti"].get<std::string>());
  EXPECT_TRUE(tpm) << tpm.error().ToString();
  if (!tpm || !replay) return {};
  auto values = ReadPcrs(*tpm, {TPM2_ALG_SHA256, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}});
  EXPECT_TRUE(values) << values.error().ToString();
  EXPECT_EQ(values.value_or(PcrValues{}), *replay) << "the TPM's PCRs must be the log's replay";
  return *replay;
}

TEST_F(TpmCommandTest, ManufactureBootsTheUnitAndNamesItsEventLog) {
  ASSERT_NO_FATAL_FAILURE(StartTpm(false, {"--manufacture"}));
  EXPECT_EQ(started_["event_log"]["path"], (std::filesystem::absolute(state_) / "boot-log.bin").string());
  EXPECT_EQ(ReplayOfTheStartedLog(started_).size(), 10u);
}

TEST_F(TpmCommandTest, ABootProfileBootsAnotherKernel) {
  auto profile = temp_.path() / "other-kernel.yaml";
  ASSERT_TRUE(
      WriteFileAtomic(profile, std::string_view("kernel: {name: /boot/vmlinuz-other, text: other}\n")));
  ASSERT_NO_FATAL_FAILURE(StartTpm(false, {"--boot-profile", profile.string()}));
  PcrValues other = ReplayOfTheStartedLog(started_);
  ASSERT_EQ(other.size(), 10u);
  ASSERT_EQ(Idevid({"tpm", "stop", "--state", state_}).exit_status, kExitPass);
  ASSERT_NO_FATAL_FAILURE(StartTpm(false, {"--boot-profile", profile.string()}));
  EXPECT_EQ(ReplayOfTheStartedLog(started_), other) << "a restart boots the same chain again";
  auto plain_state = (temp_.path() / "plain").string();
  CommandOutput plain = Idevid({"tpm", "start", "--state", plain_state, "--json"});
  ASSERT_EQ(plain.exit_status, kExitPass) << Describe(plain);
  EXPECT_FALSE(nlohmann::json::parse(plain.out).contains("event_log")) << "a plain TPM does not boot";
  EXPECT_EQ(Idevid({"tpm", "stop", "--state", plain_state}).exit_status, kExitPass);
}

TEST_F(TpmCommandTest, ABadBootProfileIsRefusedBeforeAnythingStarts) {
  auto profile = temp_.path() / "bad.yaml";
  ASSERT_TRUE(WriteFileAtomic(profile, std::string_view("kernel:\n  name: k\n  digest: abc\n")));
  CommandOutput output = Idevid({"tpm", "start", "--state", state_, "--boot-profile", profile.string()});
  EXPECT_EQ(output.exit_status, kExitUsage) << Describe(output);
  EXPECT_THAT(output.err, HasSubstr(profile.string() + ":3:11: 'kernel.digest' must be a SHA-256"));
  EXPECT_FALSE(std::filesystem::exists(StateFilePath(state_)));
}

// --- errors --------------------------------------------------------------------------------------

// {dir}: an empty directory of this test; {port}: a port where nothing listens.
struct CliErrorCase {
  std::string name;
  std::vector<std::string> args;
  int exit_status;
  std::string stderr_fragment;
};
void PrintTo(const CliErrorCase& c, std::ostream* os) { *os << c.name; }

class CliErrorTest : public ::testing::TestWithParam<CliErrorCase> {};

std::string Substitute(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at)) {
      text.replace(at, key.size(), value);
      at += value.size();
    }
  }
  return text;
}

TEST_P(CliErrorTest, ExitsWithTheRightCodeAndSaysWhy) {
  const CliErrorCase& c = GetParam();
  TempDir temp;
  auto port = FindFreePort();
  ASSERT_TRUE(port) << port.error().ToString();
  std::map<std::string, std::string> values = {{"{dir}", temp.path().string()},
                                               {"{port}", std::to_string(*port)}};
  std::vector<std::string> args;
  for (const auto& arg : c.args) args.push_back(Substitute(arg, values));
  CommandOutput output = Idevid(args);
  EXPECT_EQ(output.exit_status, c.exit_status) << Describe(output);
  EXPECT_THAT(output.err, HasSubstr(Substitute(c.stderr_fragment, values)));
  EXPECT_EQ(output.out, "");
}

INSTANTIATE_TEST_SUITE_P(
    CliCases, CliErrorTest,
    ::testing::Values(
        CliErrorCase{"UnknownOption",
                     {"tpm", "start", "--state", "{dir}", "--bogus"},
                     kExitUsage,
                     "not expected: --bogus"},
        CliErrorCase{"UnknownSubcommand",
                     {"tpm", "frobnicate"},
                     kExitUsage,
                     "unknown command 'tpm frobnicate'; tpm commands: start, stop"},
        CliErrorCase{"StopWithoutState", {"tpm", "stop"}, kExitUsage, "--state is required"},
        CliErrorCase{
            "InfoWithoutTpm", {"tpm", "info"}, kExitUsage, "name the TPM with --tcti TCTI or --state DIR"},
        CliErrorCase{"InfoWithTctiAndState",
                     {"tpm", "info", "--tcti", "swtpm:port={port}", "--state", "{dir}"},
                     kExitUsage,
                     "--tcti excludes --state"},
        CliErrorCase{"StopWhatWasNotStarted",
                     {"tpm", "stop", "--state", "{dir}"},
                     kExitUsage,
                     "no TPM was started with --state {dir}"},
        CliErrorCase{"InfoOnWhatWasNotStarted",
                     {"tpm", "info", "--state", "{dir}"},
                     kExitUsage,
                     "no TPM was started with --state {dir}"},
        CliErrorCase{"InfoOnNothingListening",
                     {"tpm", "info", "--tcti", "swtpm:host=127.0.0.1,port={port}"},
                     kExitInfrastructure,
                     "cannot connect to the TPM through TCTI 'swtpm:host=127.0.0.1,port={port}'"},
        CliErrorCase{"InfoOnUnknownTcti",
                     {"tpm", "info", "--tcti", "idevid-no-such-tcti"},
                     kExitInfrastructure,
                     "TCTI 'idevid-no-such-tcti'"}),
    [](const auto& instance) { return instance.param.name; });

}  // namespace
}  // namespace idevid::cli
