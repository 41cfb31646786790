// The fault TCTI's configuration: what parses, and the error for what does not.
#include "core/fault_tcti/fault_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <tss2/tss2_tpm2_types.h>

#include "core/testing/result_matchers.h"

namespace idevid {
namespace {

using idevid::testing::IsOk;
using idevid::testing::ResultIs;
using ::testing::StartsWith;

TEST(FaultSpecTest, EveryFaultIsRead) {
  auto spec = ParseFaultSpec("retry=3,yielded=2,delay-ms=5,drop-after=40,drop-on=sign,corrupt=7");
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->retry, 3);
  EXPECT_EQ(spec->yielded, 2);
  EXPECT_EQ(spec->delay_ms, 5);
  EXPECT_EQ(spec->drop_after, 40);
  EXPECT_EQ(spec->drop_on, TPM2_CC_Sign);
  EXPECT_EQ(spec->corrupt, 7);
  EXPECT_EQ(ParseFaultSpec("drop-on=0x176")->drop_on, TPM2_CC_StartAuthSession);
}

TEST(FaultSpecTest, NothingMeansNoFault) {
  auto spec = ParseFaultSpec("");
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->retry, 0);
  EXPECT_EQ(spec->drop_after, -1);
  EXPECT_EQ(spec->drop_on, 0u);
}

TEST(FaultSpecTest, TheConfigSplitsAtTheFirstAt) {
  auto config = ParseFaultTctiConfig("retry=1@swtpm:host=127.0.0.1,port=2321");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->first.retry, 1);
  EXPECT_EQ(config->second, "swtpm:host=127.0.0.1,port=2321");
  EXPECT_EQ(*FaultTctiString("/lib/f.so", "retry=1", "device:/dev/tpmrm0"),
            "/lib/f.so:retry=1@device:/dev/tpmrm0");
}

struct BadFaults {
  std::string name;
  std::string text;
  std::string error;
};

class BadFaultSpecTest : public ::testing::TestWithParam<BadFaults> {};

TEST_P(BadFaultSpecTest, IsAUsageErrorSayingWhatIsWrong) {
  EXPECT_THAT(ParseFaultTctiConfig(GetParam().text),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, StartsWith(GetParam().error)));
}

TEST(FaultSpecTest, AFaultTctiWithoutAnInnerTctiIsAUsageError) {
  EXPECT_THAT(
      FaultTctiString("/lib/f.so", "retry=1", ""),
      ResultIs(ErrorDomain::kUsage, UsageCode::kMissingArgument, StartsWith("the fault TCTI needs a TCTI")));
  EXPECT_THAT(FaultTctiString("/lib/f.so", "retry=x", "device:/dev/tpmrm0"),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, StartsWith("fault 'retry=x'")));
}

INSTANTIATE_TEST_SUITE_P(
    Catalogue, BadFaultSpecTest,
    ::testing::Values(
        BadFaults{"NoInner", "retry=1", "fault TCTI config 'retry=1' is not FAULTS@TCTI"},
        BadFaults{"EmptyInner", "retry=1@", "fault TCTI config 'retry=1@' is not FAULTS@TCTI"},
        BadFaults{"UnknownFault", "retry=1,explode=1@x", "unknown fault 'explode'; the keys are: retry"},
        BadFaults{"NotKeyValue", "retry@x", "fault 'retry' is not KEY=VALUE"},
        BadFaults{"NegativeCount", "retry=-1@x", "fault 'retry=-1': the value must be a whole number"},
        BadFaults{"NotANumber", "delay-ms=5ms@x", "fault 'delay-ms=5ms': the value must be a whole number"},
        BadFaults{"UnknownCommand", "drop-on=explode@x", "fault 'drop-on=explode': name a command"},
        BadFaults{"ZeroCommand", "drop-on=0x0@x", "fault 'drop-on=0x0': name a command"}),
    [](const ::testing::TestParamInfo<BadFaults>& instance) { return instance.param.name; });

}  // namespace
}  // namespace idevid
