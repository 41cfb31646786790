#include "device/pkid/tpm_reachability.h"

#include <gtest/gtest.h>
#include <tss2/tss2_common.h>
#include <tss2/tss2_tpm2_types.h>

namespace idevid {
namespace {

using std::chrono::milliseconds;

TEST(TpmBackoffTest, DoublesFromTheFirstPauseUpToTheLongest) {
  TpmBackoff backoff{milliseconds(100), milliseconds(5000)};
  std::vector<long> pauses;
  for (auto d = backoff.first_delay; pauses.size() < 9; d = backoff.After(d)) pauses.push_back(d.count());
  EXPECT_EQ(pauses, (std::vector<long>{100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000}));
  EXPECT_EQ(backoff.After(milliseconds(0)), milliseconds(100));
}

TEST(TpmBackoffTest, RetryingEverySaysThePauseInSeconds) {
  EXPECT_EQ(RetryingEvery(milliseconds(100)), "; retrying every 0.1 s");
  EXPECT_EQ(RetryingEvery(milliseconds(5000)), "; retrying every 5 s");
}

struct Case {
  const char* name;
  ErrorDomain domain;
  std::uint64_t code;
  bool unreachable;
};

class TpmUnreachableTest : public ::testing::TestWithParam<Case> {};

TEST_P(TpmUnreachableTest, TellsSilenceFromAnAnswer) {
  EXPECT_EQ(IsTpmUnreachable(Error(GetParam().domain, GetParam().code, "x")), GetParam().unreachable);
}

INSTANTIATE_TEST_SUITE_P(
    Codes, TpmUnreachableTest,
    ::testing::Values(
        Case{"TctiIoError", ErrorDomain::kTss, TSS2_TCTI_RC_IO_ERROR, true},
        Case{"TctiNoConnection", ErrorDomain::kTss, TSS2_TCTI_RC_NO_CONNECTION, true},
        Case{"TctiTimeout", ErrorDomain::kTss, TSS2_TCTI_RC_TRY_AGAIN, true},
        Case{"EsysIoError", ErrorDomain::kTss, TSS2_ESYS_RC_IO_ERROR, true},
        Case{"ResourceManagerNoConnection", ErrorDomain::kTss,
             TSS2_RESMGR_RC_LAYER | TSS2_BASE_RC_NO_CONNECTION, true},
        Case{"TpmNoSuchHandle", ErrorDomain::kTss, TPM2_RC_HANDLE | TPM2_RC_1, false},
        Case{"TpmNvUninitialized", ErrorDomain::kTss, TPM2_RC_NV_UNINITIALIZED, false},
        Case{"RelayedTpmAnswer", ErrorDomain::kTss, TSS2_RESMGR_TPM_RC_LAYER | TPM2_RC_RETRY, false},
        Case{"EsysBadReference", ErrorDomain::kTss, TSS2_ESYS_RC_BAD_REFERENCE, false},
        Case{"NotTss", ErrorDomain::kIo, TSS2_TCTI_RC_IO_ERROR, false}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace idevid
