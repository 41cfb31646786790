// `idevid attest policy` as a user runs it: the policy it writes from an event log reads back as
// the policy of that log; a bad command line exits 4, a bad or unreadable log 2 with the parser's
// message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloud/attest_policy.h"
#include "core/event_log.h"
#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;

CommandOutput Idevid(std::vector<std::string> args) {
  args.insert(args.begin(), IDEVID_BINARY);
  auto out = RunCommand(args, {{"TSS2_LOG", "all+NONE"}}, std::chrono::seconds(60));
  EXPECT_TRUE(out) << out.error().ToString();
  return out.value_or(CommandOutput{});
}

LogEvent Event(std::uint32_t pcr, std::uint32_t type, std::uint8_t fill) {
  return LogEvent{pcr, type, {{kAlgSha256, Bytes(32, fill)}}, Bytes{'x'}};
}

class AttestPolicyCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_bytes_ = EncodeEventLog({Event(0, kEvSCrtmVersion, 1), Event(4, kEvEfiBootServicesApplication, 4),
                                 Event(4, kEvSeparator, 2), Event(7, kEvSeparator, 2)});
    ASSERT_THAT(WriteFileAtomic(log_, log_bytes_), IsOk());
  }

  testing::TempDir temp_;
  std::string log_ = (temp_.path() / "binary_bios_measurements").string();
  std::string out_ = (temp_.path() / "srx4300-golden.yaml").string();
  Bytes log_bytes_;
};

TEST_F(AttestPolicyCommandTest, WritesThePolicyOfTheLog) {
  auto out = Idevid({"attest", "policy", "--from-log", log_, "--out", out_, "--pcrs", "sha256:0,4"});
  ASSERT_EQ(out.exit_status, 0) << out.err;
  EXPECT_THAT(out.out, HasSubstr("wrote policy \"srx4300-golden\""));
  auto written = LoadAttestPolicy(out_);
  ASSERT_THAT(written, IsOk());
  auto log = ParseEventLog(log_bytes_);
  ASSERT_THAT(log, IsOk());
  AttestPolicy expected = PolicyFromLog(*log, "srx4300-golden", *ParsePcrSelection("sha256:0,4"));
  EXPECT_EQ(written->name, expected.name);
  EXPECT_EQ(written->pcrs, expected.pcrs);
  EXPECT_EQ(written->allowed, expected.allowed);
  EXPECT_EQ(written->allowed.size(), 3u);  // nothing of PCR 7
}

TEST_F(AttestPolicyCommandTest, ByDefaultCoversEveryPcrTheLogMeasuresUnderTheGivenName) {
  auto out = Idevid({"attest", "policy", "--from-log", log_, "--out", out_, "--name", "lab"});
  ASSERT_EQ(out.exit_status, 0) << out.err;
  auto written = LoadAttestPolicy(out_);
  ASSERT_THAT(written, IsOk());
  EXPECT_EQ(written->name, "lab");
  EXPECT_EQ(written->pcrs.ToString(), "sha256:0,4,7");
}

TEST_F(AttestPolicyCommandTest, ABadSelectionIsAUsageError) {
  auto out = Idevid({"attest", "policy", "--from-log", log_, "--out", out_, "--pcrs", "sha1:0"});
  EXPECT_EQ(out.exit_status, 4) << out.err;
  EXPECT_THAT(out.err, HasSubstr("idevid: --pcrs: "));
  EXPECT_FALSE(std::filesystem::exists(out_));
  EXPECT_EQ(Idevid({"attest", "policy", "--out", out_}).exit_status, 4);
}

TEST_F(AttestPolicyCommandTest, AnUnreadableOrMalformedLogExits2WithTheParsersMessage) {
  auto missing = Idevid({"attest", "policy", "--from-log", log_ + ".absent", "--out", out_});
  EXPECT_EQ(missing.exit_status, 2) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("--from-log"));
  Bytes truncated(log_bytes_.begin(), log_bytes_.end() - 7);
  ASSERT_THAT(WriteFileAtomic(log_, truncated), IsOk());
  auto malformed = Idevid({"attest", "policy", "--from-log", log_, "--out", out_});
  EXPECT_EQ(malformed.exit_status, 2) << malformed.err;
  auto parsed = ParseEventLog(truncated);
  ASSERT_FALSE(parsed);
  EXPECT_THAT(malformed.err, HasSubstr(parsed.error().root_message()));
  EXPECT_FALSE(std::filesystem::exists(out_));
}

}  // namespace
}  // namespace idevid
