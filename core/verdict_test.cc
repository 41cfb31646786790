#include "core/verdict.h"

#include <gtest/gtest.h>

namespace idevid {
namespace {

TEST(VerdictTest, AnEmptyVerdictPasses) {
  Verdict v;
  EXPECT_TRUE(v.passed());
  EXPECT_EQ(v.first_failure(), nullptr);
  EXPECT_EQ(v.FailureText(), "");
}

TEST(VerdictTest, WarningsAloneStillPass) {
  Verdict v;
  v.Add("certificate-expires-soon", "notAfter in 3 days", Severity::kWarning);
  EXPECT_TRUE(v.passed());
  EXPECT_EQ(v.findings().size(), 1u);
}

TEST(VerdictTest, EveryFailureIsKeptInOrderNotOnlyTheFirst) {
  Verdict v;
  v.Add("serial-missing", "no serialNumber in the subject");
  v.Add("certificate-expires-soon", "notAfter in 3 days", Severity::kWarning);
  v.Add("model-not-in-inventory", "model 'X' is not listed");
  EXPECT_FALSE(v.passed());
  ASSERT_NE(v.first_failure(), nullptr);
  EXPECT_EQ(v.first_failure()->id, "serial-missing");
  EXPECT_EQ(
      v.FailureText(),
      "serial-missing: no serialNumber in the subject; model-not-in-inventory: model 'X' is not listed");
}

TEST(VerdictTest, MergeKeepsTheFindingsOfBoth) {
  Verdict a, b;
  a.Add("one", "1");
  b.Add("two", "2");
  a.Merge(b);
  ASSERT_EQ(a.findings().size(), 2u);
  EXPECT_EQ(a.findings()[1].id, "two");
}

}  // namespace
}  // namespace idevid
