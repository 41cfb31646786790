// The bounded back-off on TPM_RC_RETRY / YIELDED / TESTING, against a scripted TCTI.
#include <deque>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <tss2/tss2_tpm2_types.h>

#include "core/testing/fake_tcti.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_capability.h"
#include "core/tpm_context.h"
#include "core/tss_error.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultInDomain;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;

using std::chrono::milliseconds;

struct RetryCase {
  const char* name;
  TSS2_RC rc;
};

class RetryTest : public ::testing::TestWithParam<RetryCase> {
 protected:
  // A context on a fake TPM that first answers `script`, with recorded (not slept) pauses.
  TpmContext Open(testing::FakeTcti& fake, int max_attempts) {
    RetryPolicy policy{.max_attempts = max_attempts,
                       .first_delay = milliseconds(2),
                       .max_delay = milliseconds(8),
                       .sleep = [this](milliseconds d) { pauses_.push_back(d); }};
    auto tpm = TpmContext::FromTcti(fake.Handle(), "fake", {.retry = policy});
    EXPECT_TRUE(tpm) << tpm.error().ToString();
    return std::move(*tpm);
  }
  std::vector<milliseconds> pauses_;
};

TEST_P(RetryTest, TwelveTryAgainAnswersAreRetriedUntilTheCommandSucceeds) {
  testing::FakeTcti fake(std::deque<TSS2_RC>(12, GetParam().rc));
  TpmContext tpm = Open(fake, 8);
  auto bytes = GetRandom(tpm, 32);
  ASSERT_TRUE(bytes) << bytes.error().ToString();
  EXPECT_EQ(*bytes, std::vector<std::uint8_t>(32, 0xA5));
  // Every scripted answer was consumed by a re-sent GetRandom, then one success.
  EXPECT_EQ(fake.commands(), std::vector<TPM2_CC>(13, TPM2_CC_GetRandom));
  ASSERT_FALSE(pauses_.empty()) << "the harness must pause between its own retries";
  EXPECT_EQ(pauses_.front(), milliseconds(2));
  for (std::size_t i = 1; i < pauses_.size(); ++i) {
    EXPECT_EQ(pauses_[i], std::min(pauses_[i - 1] * 2, milliseconds(8)));
  }
}

TEST_P(RetryTest, RetriesAreBoundedAndTheLastAnswerIsReported) {
  testing::FakeTcti fake(std::deque<TSS2_RC>(1000, GetParam().rc));
  TpmContext tpm = Open(fake, 3);
  auto bytes = GetRandom(tpm, 8);
  ASSERT_THAT(bytes, ResultInDomain(ErrorDomain::kTss, HasSubstr("TPM2_GetRandom failed")));
  EXPECT_EQ(BaseTpmRc(static_cast<TSS2_RC>(bytes.error().code())), GetParam().rc);
  EXPECT_EQ(pauses_, (std::vector<milliseconds>{milliseconds(2), milliseconds(4)}));
  EXPECT_LT(fake.commands().size(), 1000u);
}

INSTANTIATE_TEST_SUITE_P(TryAgainCodes, RetryTest,
                         ::testing::Values(RetryCase{"Retry", TPM2_RC_RETRY},
                                           RetryCase{"Yielded", TPM2_RC_YIELDED},
                                           RetryCase{"Testing", TPM2_RC_TESTING}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(RetryPolicyTest, OtherErrorsAreNotRetried) {
  testing::FakeTcti fake({TPM2_RC_FAILURE});
  std::vector<milliseconds> pauses;
  RetryPolicy policy{.sleep = [&](milliseconds d) { pauses.push_back(d); }};
  auto tpm = TpmContext::FromTcti(fake.Handle(), "fake", {.retry = policy});
  ASSERT_TRUE(tpm);
  auto bytes = GetRandom(*tpm, 8);
  EXPECT_THAT(bytes, ResultIs(ErrorDomain::kTss, TPM2_RC_FAILURE, HasSubstr("TPM2_GetRandom failed")));
  EXPECT_EQ(fake.commands().size(), 1u);
  EXPECT_TRUE(pauses.empty());
}

}  // namespace
}  // namespace idevid
