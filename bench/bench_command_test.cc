// `idevid bench` as a user runs it: idevid hands the arguments to idevid-bench, which refuses bad
// ones before it starts anything.
#include <gtest/gtest.h>

#include "engine/process.h"

namespace idevid {
namespace {

CommandOutput Bench(std::vector<std::string> args) {
  args.insert(args.begin(), {IDEVID_BINARY, "bench"});
  auto run = RunCommand(args, {}, std::chrono::seconds(30));
  EXPECT_TRUE(run) << run.error().ToString();
  return run ? *run : CommandOutput{};
}

TEST(BenchCommandTest, HelpComesFromTheBenchProgram) {
  auto run = Bench({"--help"});
  EXPECT_EQ(run.exit_status, 0);
  EXPECT_NE(run.out.find("--check-targets"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("--factory-ca"), std::string::npos) << run.out;
}

TEST(BenchCommandTest, ATargetTpmNeedsItsFactoryCa) {
  auto run = Bench({"--target", "device:/dev/tpmrm0"});
  EXPECT_EQ(run.exit_status, 4);
  EXPECT_NE(run.err.find("--target device:/dev/tpmrm0 needs --factory-ca"), std::string::npos) << run.err;
}

TEST(BenchCommandTest, AFilterThatIsNoRegularExpressionIsAUsageError) {
  auto run = Bench({"--filter", "handshake(", "--no-run"});
  EXPECT_EQ(run.exit_status, 4);
  EXPECT_NE(run.err.find("--filter 'handshake(' is not a regular expression"), std::string::npos) << run.err;
}

TEST(BenchCommandTest, AnUnknownOptionIsAUsageError) {
  auto run = Bench({"--clients", "8"});
  EXPECT_EQ(run.exit_status, 4);
  EXPECT_NE(run.err.find("--clients"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace idevid
