// `idevid bench` as a user runs it: idevid hands the arguments to idevid-bench, which refuses bad
// ones before it starts anything.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/process.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;

CommandOutput Bench(std::vector<std::string> args) {
  args.insert(args.begin(), {IDEVID_BINARY, "bench"});
  auto run = RunCommand(args, {}, std::chrono::seconds(30));
  EXPECT_TRUE(run) << run.error().ToString();
  return run ? *run : CommandOutput{};
}

TEST(BenchCommandTest, HelpComesFromTheBenchProgram) {
  auto run = Bench({"--help"});
  EXPECT_EQ(run.exit_status, 0);
  EXPECT_THAT(run.out, HasSubstr("--check-targets"));
  EXPECT_THAT(run.out, HasSubstr("--factory-ca"));
}

TEST(BenchCommandTest, ATargetTpmNeedsItsFactoryCa) {
  auto run = Bench({"--target", "device:/dev/tpmrm0"});
  EXPECT_EQ(run.exit_status, 4);
  EXPECT_THAT(run.err, HasSubstr("--target device:/dev/tpmrm0 needs --factory-ca"));
}

TEST(BenchCommandTest, AFilterThatIsNoRegularExpressionIsAUsageError) {
  auto run = Bench({"--filter", "handshake(", "--no-run"});
  EXPECT_EQ(run.exit_status, 4);
  EXPECT_THAT(run.err, HasSubstr("--filter 'handshake(' is not a regular expression"));
}

TEST(BenchCommandTest, AnUnknownOptionIsAUsageError) {
  auto run = Bench({"--clients", "8"});
  EXPECT_EQ(run.exit_status, 4);
  EXPECT_THAT(run.err, HasSubstr("--clients"));
}

}  // namespace
}  // namespace idevid
