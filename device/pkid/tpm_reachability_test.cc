#include "device/pkid/tpm_reachability.h"

#include <vector>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace idevid
