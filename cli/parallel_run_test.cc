// The serials of a batch of units run in parallel.
#include "cli/parallel_run.h"

#include <gtest/gtest.h>

namespace idevid::cli {
namespace {

TEST(NthSerialTest, TrailingDigitsCountUpKeepingTheirWidth) {
  EXPECT_EQ(NthSerial("CW0000000001", 0), "CW0000000001");
  EXPECT_EQ(NthSerial("CW0000000001", 3), "CW0000000004");
  EXPECT_EQ(NthSerial("CW0009", 1), "CW0010");
  EXPECT_EQ(NthSerial("99", 1), "100") << "a carry past the width widens the number";
  EXPECT_EQ(NthSerial("CW99999999999999999999", 2), "CW100000000000000000001") << "longer than 64 bits";
  EXPECT_EQ(NthSerial("A0", 63), "A63");
}

TEST(NthSerialTest, WithoutTrailingDigitsTheUnitNumberIsAppended) {
  EXPECT_EQ(NthSerial("LAB-UNIT", 0), "LAB-UNIT-1");
  EXPECT_EQ(NthSerial("LAB-UNIT", 2), "LAB-UNIT-3");
}

}  // namespace
}  // namespace idevid::cli
