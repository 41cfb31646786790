#include "engine/swtpm_instance.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "core/tpm_capability.h"
#include "core/tpm_context.h"
#include "engine/abrmd_instance.h"
#include "engine/ports.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using idevid::testing::IsOk;
using idevid::testing::ResultInDomain;
using idevid::testing::ResultIs;
using idevid::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

SwtpmOptions OptionsIn(const TempDir& temp, bool with_abrmd, const std::string& name = "tpm") {
  return {.state_dir = temp.path() / name, .with_abrmd = with_abrmd};
}

void ExpectAnswersAsIbm(const std::string& tcti) {
  auto tpm = TpmContext::Open(tcti, {.command_timeout = 10s});
  ASSERT_THAT(tpm, IsOk());
  auto info = ReadTpmInfo(*tpm);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->manufacturer, "IBM");
}

bool Alive(pid_t pid) { return ProcessCommandLine(pid).has_value(); }

// Gone and reaped: not even a zombie is left.
void ExpectGone(pid_t pid, const std::string& what) {
  EXPECT_GT(pid, 0) << what;
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid))) << what << " " << pid;
}

// Live processes whose command line mentions `text`.
std::vector<std::string> ProcessesMentioning(const std::string& text) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(name);
    auto line = ProcessCommandLine(pid);
    if (pid != ::getpid() && line && line->find(text) != std::string::npos) found.push_back(*line);
  }
  return found;
}

// The absolute path of `program` in this process's PATH, or empty.
std::filesystem::path FindInPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    auto candidate = std::filesystem::path(dir) / program;
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// Sets PATH for the lifetime of this object; restores the old value.
class ScopedPath {
 public:
  explicit ScopedPath(const std::filesystem::path& dir) {
    const char* old = std::getenv("PATH");
    if (old != nullptr) old_ = old;
    ::setenv("PATH", dir.c_str(), 1);
  }
  ~ScopedPath() {
    if (old_) {
      ::setenv("PATH", old_->c_str(), 1);
    } else {
      ::unsetenv("PATH");
    }
  }
  ScopedPath(const ScopedPath&) = delete;
  ScopedPath& operator=(const ScopedPath&) = delete;

 private:
  std::optional<std::string> old_;
};

// --- swtpm alone ---------------------------------------------------------------------------------

TEST(SwtpmInstanceTest, StartsAndAnswersATpmCommand) {
  TempDir temp;
  auto tpm = SwtpmInstance::Start(OptionsIn(temp, false));
  ASSERT_THAT(tpm, IsOk());
  auto command_line = ProcessCommandLine(tpm->swtpm_pid());
  ASSERT_TRUE(command_line) << "swtpm is not running";
  EXPECT_THAT(*command_line, HasSubstr(tpm->state_dir().string()));
  EXPECT_TRUE(tpm->state_dir().is_absolute());
  EXPECT_EQ(tpm->tcti(), "swtpm:host=127.0.0.1,port=" + std::to_string(tpm->port()));
  EXPECT_EQ(tpm->tcti(), tpm->swtpm_tcti());
  EXPECT_FALSE(tpm->abrmd().has_value());
  EXPECT_EQ(tpm->ClientEnvironment(), (std::map<std::string, std::string>{{"TPM2TOOLS_TCTI", tpm->tcti()}}));
  ExpectAnswersAsIbm(tpm->tcti());
}

TEST(SwtpmInstanceTest, TwoInstancesAtOnceGetDifferentPorts) {
  TempDir temp;
  auto first = SwtpmInstance::Start(OptionsIn(temp, false, "first"));
  auto second = SwtpmInstance::Start(OptionsIn(temp, false, "second"));
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  // Each uses P (commands) and P+1 (control): the pairs must not overlap.
  std::set<int> ports = {first->port(), first->port() + 1, second->port(), second->port() + 1};
  EXPECT_EQ(ports.size(), 4u);
  EXPECT_NE(first->swtpm_pid(), second->swtpm_pid());
  ExpectAnswersAsIbm(first->tcti());
  ExpectAnswersAsIbm(second->tcti());
}

TEST(SwtpmInstanceTest, StopEndsSwtpm) {
  TempDir temp;
  auto tpm = SwtpmInstance::Start(OptionsIn(temp, false));
  ASSERT_THAT(tpm, IsOk());
  pid_t pid = tpm->swtpm_pid();
  tpm->Stop();
  ExpectGone(pid, "swtpm");
  EXPECT_FALSE(PortAcceptsConnections(tpm->port()));
}

TEST(SwtpmInstanceTest, DestructionEndsSwtpm) {
  TempDir temp;
  pid_t pid = -1;
  {
    auto tpm = SwtpmInstance::Start(OptionsIn(temp, false));
    ASSERT_THAT(tpm, IsOk());
    pid = tpm->swtpm_pid();
  }
  ExpectGone(pid, "swtpm");
}

TEST(SwtpmInstanceTest, ReleaseLeavesSwtpmForStopByPid) {
  TempDir temp;
  auto tpm = SwtpmInstance::Start(OptionsIn(temp, false));
  ASSERT_THAT(tpm, IsOk());
  pid_t pid = tpm->swtpm_pid();
  tpm->Release();
  EXPECT_TRUE(Alive(pid));
  auto stopped = StopProcessByPid(pid, tpm->state_dir().string());
  ::waitpid(pid, nullptr, 0);  // still this process's child
  ASSERT_THAT(stopped, IsOk());
  ExpectGone(pid, "swtpm");
}

TEST(SwtpmInstanceTest, AGivenPortHeldByAnotherSwtpmIsRefusedAndItsTpmIsNotTakenForOurs) {
  TempDir temp;
  auto other = SwtpmInstance::Start(OptionsIn(temp, false, "other"));
  ASSERT_THAT(other, IsOk());
  // The other swtpm answers on both ports, as when it took them between a pick and our bind.
  auto ours = SwtpmInstance::Start({.state_dir = temp.path() / "ours", .port = other->port()});
  ASSERT_FALSE(ours) << "a swtpm that could not bind was taken for started, pid " << ours->swtpm_pid()
                     << " on port " << ours->port();
  EXPECT_THAT(ours,
              ResultIs(ErrorDomain::kProcess, 1, StartsWith("swtpm did not start (exited with status 1)")));
  ExpectAnswersAsIbm(other->tcti());
}

TEST(SwtpmInstanceTest, StateDirThatIsAFileIsAnIoError) {
  TempDir temp;
  auto file = temp.path() / "not-a-dir";
  std::ofstream(file) << "x";
  EXPECT_THAT(SwtpmInstance::Start({.state_dir = file}),
              ResultIs(ErrorDomain::kIo, ENOTDIR, StartsWith("cannot create " + (file / "tpm").string())));
}

struct StartupCase {
  std::string name;
  bool startup_clear;
  StartupState expected;
};
void PrintTo(const StartupCase& c, std::ostream* os) { *os << c.name; }

class SwtpmStartupTest : public ::testing::TestWithParam<StartupCase> {};

TEST_P(SwtpmStartupTest, TpmIsStartedOnlyWhenAsked) {
  TempDir temp;
  auto tpm =
      SwtpmInstance::Start({.state_dir = temp.path() / "tpm", .startup_clear = GetParam().startup_clear});
  ASSERT_THAT(tpm, IsOk());
  auto context = TpmContext::Open(tpm->tcti(), {.command_timeout = 10s});
  ASSERT_THAT(context, IsOk());
  auto started = EnsureStarted(*context);
  ASSERT_THAT(started, IsOk());
  EXPECT_EQ(*started, GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(SwtpmCases, SwtpmStartupTest,
                         ::testing::Values(StartupCase{"StartupClear", true, StartupState::kWasStarted},
                                           StartupCase{"WaitsForStartup", false, StartupState::kStartedNow}),
                         [](const auto& instance) { return instance.param.name; });

// TCG EK Credential Profile 2.3: the RSA 2048 EK certificate's NV index.
constexpr TPM2_HANDLE kRsaEkCertificateIndex = 0x01c00002;

class SwtpmManufactureTest : public ::testing::TestWithParam<bool> {};

TEST_P(SwtpmManufactureTest, EkCertificateExistsOnlyWhenManufactured) {
  TempDir temp;
  auto tpm = SwtpmInstance::Start({.state_dir = temp.path() / "tpm", .manufacture = GetParam()});
  ASSERT_THAT(tpm, IsOk());
  auto context = TpmContext::Open(tpm->tcti(), {.command_timeout = 10s});
  ASSERT_THAT(context, IsOk());
  auto indices = ListHandles(*context, TPM2_HT_NV_INDEX);
  ASSERT_THAT(indices, IsOk());
  EXPECT_EQ(std::ranges::count(*indices, kRsaEkCertificateIndex), GetParam() ? 1 : 0);
}

INSTANTIATE_TEST_SUITE_P(SwtpmCases, SwtpmManufactureTest, ::testing::Bool(),
                         [](const auto& instance) { return instance.param ? "Manufactured" : "Blank"; });

// A program that cannot be executed: the error names it and shows its log.
struct StartFailureCase {
  std::string name;
  std::vector<std::string> available;  // the only programs on PATH
  bool with_abrmd;
  std::string failing;
};
void PrintTo(const StartFailureCase& c, std::ostream* os) { *os << c.name; }

class SwtpmStartFailureTest : public ::testing::TestWithParam<StartFailureCase> {};

TEST_P(SwtpmStartFailureTest, NamesTheProgramAndShowsItsLog) {
  const StartFailureCase& c = GetParam();
  TempDir temp;
  auto bin = temp.path() / "bin";
  std::filesystem::create_directory(bin);
  for (const auto& program : c.available) {
    auto target = FindInPath(program);
    ASSERT_FALSE(target.empty()) << program << " is not installed";
    std::filesystem::create_symlink(target, bin / program);
  }
  Result<SwtpmInstance> tpm = [&] {
    ScopedPath path(bin);
    return SwtpmInstance::Start(OptionsIn(temp, c.with_abrmd));
  }();
  EXPECT_THAT(tpm, ResultIs(ErrorDomain::kProcess, 127,
                            AllOf(StartsWith(c.failing + " did not start"),
                                  HasSubstr("exited with status 127"), HasSubstr("exec failed"))));
  EXPECT_THAT(ProcessesMentioning(temp.path().string()), ::testing::IsEmpty())
      << "what was started before the failure must be stopped";
}

INSTANTIATE_TEST_SUITE_P(
    SwtpmCases, SwtpmStartFailureTest,
    ::testing::Values(StartFailureCase{"NoSwtpm", {}, false, "swtpm"},
                      StartFailureCase{"NoDbusDaemon", {"swtpm"}, true, "dbus-daemon"},
                      StartFailureCase{"NoAbrmd", {"swtpm", "dbus-daemon", "dbus-send"}, true, "tpm2-abrmd"}),
    [](const auto& instance) { return instance.param.name; });

// --- with tpm2-abrmd -----------------------------------------------------------------------------

class AbrmdInstanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = SwtpmInstance::Start(OptionsIn(temp_, true));
    ASSERT_THAT(started, IsOk());
    tpm_ = std::move(*started);
    ASSERT_TRUE(tpm_->abrmd());
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const char* log : {"swtpm.log", "tpm2-abrmd.log", "dbus.log"}) {
        std::cerr << "---- " << log << " ----\n" << LogTail(temp_.path() / "tpm" / log) << "\n";
      }
    }
  }

  const AbrmdInstance& abrmd() const { return *tpm_->abrmd(); }

  TempDir temp_;
  std::optional<SwtpmInstance> tpm_;  // declared after temp_: stopped before it is removed
};

TEST_F(AbrmdInstanceTest, ClientsUseTheResourceManager) {
  EXPECT_THAT(tpm_->tcti(), StartsWith("tabrmd:"));
  EXPECT_EQ(tpm_->tcti(), "tabrmd:bus_type=session,bus_name=" + abrmd().bus_name());
  EXPECT_THAT(tpm_->swtpm_tcti(), StartsWith("swtpm:"));
  EXPECT_EQ(tpm_->ClientEnvironment(),
            (std::map<std::string, std::string>{{"DBUS_SESSION_BUS_ADDRESS", abrmd().bus_address()},
                                                {"TPM2TOOLS_TCTI", tpm_->tcti()}}));
  EXPECT_THAT(ProcessCommandLine(abrmd().abrmd_pid()).value_or("gone"), HasSubstr(abrmd().bus_name()));
  EXPECT_THAT(ProcessCommandLine(abrmd().dbus_pid()).value_or("gone"), HasSubstr(abrmd().bus_address()));
  ExpectAnswersAsIbm(tpm_->tcti());
}

TEST_F(AbrmdInstanceTest, SeveralProcessesShareTheTpm) {
  auto held = TpmContext::Open(tpm_->tcti(), {.command_timeout = 10s});
  ASSERT_THAT(held, IsOk());
  auto get_random = [env = tpm_->ClientEnvironment()] {
    return RunCommand({"tpm2_getrandom", "--hex", "8"}, env, 30s);
  };
  auto first = std::async(std::launch::async, get_random);
  auto second = std::async(std::launch::async, get_random);
  for (auto* future : {&first, &second}) {
    auto output = future->get();
    ASSERT_THAT(output, IsOk());
    EXPECT_EQ(output->exit_status, 0) << output->err;
    EXPECT_TRUE(std::regex_match(output->out, std::regex("[0-9a-f]{16}\n?"))) << output->out;
  }
  auto info = ReadTpmInfo(*held);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->manufacturer, "IBM");
}

TEST_F(AbrmdInstanceTest, StopEndsSwtpmAbrmdAndTheBus) {
  std::map<std::string, pid_t> pids = {
      {"swtpm", tpm_->swtpm_pid()}, {"tpm2-abrmd", abrmd().abrmd_pid()}, {"dbus-daemon", abrmd().dbus_pid()}};
  tpm_->Stop();
  for (const auto& [name, pid] : pids) ExpectGone(pid, name);
}

TEST(AbrmdStartFailureTest, UnreachableTpmNamesAbrmdAndStopsTheBus) {
  TempDir temp;
  auto port = FindFreePortPair();
  ASSERT_THAT(port, IsOk());
  std::string tpm_tcti = "swtpm:host=127.0.0.1,port=" + std::to_string(*port);
  // tpm2-abrmd usually exits when its TCTI fails, but now and then it hangs instead: then the
  // deadline ends the wait.
  auto abrmd = AbrmdInstance::Start({.dir = temp.path(), .tpm_tcti = tpm_tcti, .start_timeout = 3s});
  // Its exit status, or kProcessDeadline when it hung.
  ASSERT_THAT(abrmd, ResultInDomain(ErrorDomain::kProcess, StartsWith("tpm2-abrmd did not start")));
  EXPECT_TRUE(abrmd.error().code() == kProcessDeadline || abrmd.error().code() < 128)
      << abrmd.error().ToString();
  auto log = temp.path() / "tpm2-abrmd.log";
  EXPECT_THAT(abrmd.error().message(), HasSubstr(log.string()));
  std::string tail = LogTail(log);
  EXPECT_FALSE(tail.empty());
  EXPECT_THAT(abrmd.error().message(), HasSubstr(tail)) << "the error shows the log";
  EXPECT_THAT(ProcessesMentioning(temp.path().string()), ::testing::IsEmpty()) << "dbus-daemon";
  EXPECT_THAT(ProcessesMentioning("--tcti=" + tpm_tcti), ::testing::IsEmpty()) << "tpm2-abrmd";
}

}  // namespace
}  // namespace idevid
