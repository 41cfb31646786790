#include "engine/postgres_instance.h"

#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "engine/process.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultIs;
using ::testing::_;
using ::testing::HasSubstr;

// duplicate_database as a kDatabase code (the SQLSTATE in base 36).
const std::uint64_t kDuplicateDatabase = std::strtoull("42P04", nullptr, 36);

TEST(PostgresInstanceTest, TheServerRunsAsPostgresOnAPrivateSocketAndLeavesNothingBehind) {
  pid_t pid = -1;
  std::filesystem::path dir;
  {
    auto instance = PostgresInstance::Start();
    ASSERT_TRUE(instance) << instance.error().ToString();
    pid = instance->pid();
    dir = instance->socket_dir();
    // The child is the server itself (setpriv execs), owned by postgres.
    EXPECT_THAT(ProcessCommandLine(pid).value_or(""), HasSubstr("postgres -D " + (dir / "data").string()));
    struct stat status {};
    ASSERT_EQ(::stat(("/proc/" + std::to_string(pid)).c_str(), &status), 0);
    EXPECT_EQ(status.st_uid, ::getpwnam("postgres")->pw_uid);
    EXPECT_TRUE(std::filesystem::exists(dir / ".s.PGSQL.5432"));
    auto spec = instance->CreateDatabase("line");
    ASSERT_TRUE(spec) << spec.error().ToString();
    EXPECT_EQ(*spec, instance->ConnectionSpec("line"));
    EXPECT_THAT(*spec, HasSubstr("host=" + dir.string()));
    EXPECT_THAT(instance->CreateDatabase("line\"; DROP"),
                ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, _));
    EXPECT_THAT(instance->CreateDatabase("line"),
                ResultIs(ErrorDomain::kDatabase, kDuplicateDatabase, HasSubstr("line")));
  }
  EXPECT_FALSE(ProcessCommandLine(pid).has_value());
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(PostgresInstanceTest, RestartsOnTheSameDataDirectory) {
  auto instance = PostgresInstance::Start();
  ASSERT_TRUE(instance) << instance.error().ToString();
  ASSERT_TRUE(instance->CreateDatabase("kept"));
  pid_t first = instance->pid();
  ASSERT_TRUE(instance->StopServer());
  EXPECT_FALSE(instance->running());
  EXPECT_FALSE(ProcessCommandLine(first).has_value());
  EXPECT_THAT(instance->CreateDatabase("other"),
              ResultIs(ErrorDomain::kDatabase, 0u, HasSubstr("cannot connect")));
  ASSERT_TRUE(instance->Restart());
  EXPECT_TRUE(instance->running());
  EXPECT_THAT(instance->CreateDatabase("kept"), ResultIs(ErrorDomain::kDatabase, kDuplicateDatabase, _));
}

TEST(PostgresInstanceTest, AServerWhoseOwnerDiesShutsDown) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    // Starts a cluster and dies without stopping it (as a crashed test would).
    auto instance = PostgresInstance::Start();
    std::string said =
        instance ? std::to_string(instance->pid()) + " " + instance->socket_dir().string() : "0 -";
    (void)!::write(pipe_fds[1], said.data(), said.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string said(4096, '\0');
  said.resize(static_cast<std::size_t>(std::max<ssize_t>(0, ::read(pipe_fds[0], said.data(), said.size()))));
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  pid_t server = std::atoi(said.c_str());
  std::filesystem::path dir = said.substr(said.find(' ') + 1);
  ASSERT_GT(server, 0) << "the owner could not start a cluster";
  EXPECT_TRUE(PollUntil([&] { return !ProcessCommandLine(server).has_value(); }, std::chrono::seconds(30)));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace idevid
