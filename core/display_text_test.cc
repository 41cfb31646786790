#include "core/display_text.h"

#include <string>

#include <gtest/gtest.h>

namespace idevid {
namespace {

struct DisplayCase {
  const char* name;
  std::string raw;
  std::string shown;
};

class DisplayTextTest : public testing::TestWithParam<DisplayCase> {};

TEST_P(DisplayTextTest, ShowsInputAsPrintableText) {
  EXPECT_EQ(DisplayText(GetParam().raw), GetParam().shown);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DisplayTextTest,
    testing::Values(DisplayCase{"plain", "CW9876543210", "CW9876543210"}, DisplayCase{"empty", "", ""},
                    DisplayCase{"newline_and_tab", "a\nb\tc\r", "a\\nb\\tc\\r"},
                    DisplayCase{"terminal_escape", "\x1b[2Jwiped", "\\x1b[2Jwiped"},
                    DisplayCase{"nul_and_del", std::string("a\0b\x7f", 4), "a\\x00b\\x7f"},
                    DisplayCase{"backslash", "a\\b", "a\\\\b"},
                    DisplayCase{"utf8_kept", "M\xc3\xbcnchen \xe2\x82\xac", "M\xc3\xbcnchen \xe2\x82\xac"},
                    DisplayCase{"c1_csi",
                                "\xc2\x9b"
                                "2J",
                                "\\u009b2J"},
                    DisplayCase{"invalid_utf8", "\xff\xc3(", "\\xff\\xc3("},
                    DisplayCase{"bidi_override", "abc\xe2\x80\xaetxt.exe", "abc\\u202etxt.exe"},
                    DisplayCase{"zero_width_space",
                                "a\xe2\x80\x8b"
                                "b",
                                "a\\u200bb"},
                    DisplayCase{"bom_inside",
                                "a\xef\xbb\xbf"
                                "b",
                                "a\\ufeffb"},
                    DisplayCase{"emoji_kept", "\xf0\x9f\x94\x91", "\xf0\x9f\x94\x91"},
                    DisplayCase{"overlong", "\xc0\xaf", "\\xc0\\xaf"},
                    DisplayCase{"surrogate", "\xed\xa0\x80", "\\xed\\xa0\\x80"}),
    [](const testing::TestParamInfo<DisplayCase>& param_info) { return param_info.param.name; });

TEST(DisplayTextLimitTest, LongInputIsCutAndSaysItsLength) {
  const std::string raw(100 * 1024, 'A');
  const std::string shown = DisplayText(raw);
  EXPECT_EQ(shown, std::string(kDisplayTextMaxBytes, 'A') + "...(102400 bytes)");
}

TEST(DisplayTextLimitTest, CutsAtACharacterBoundary) {
  // Three two-byte characters with a limit of 5 bytes: two characters fit, the third is cut whole.
  EXPECT_EQ(DisplayText("\xc3\xa4\xc3\xb6\xc3\xbc", 5), "\xc3\xa4\xc3\xb6...(6 bytes)");
}

TEST(DisplayTextLimitTest, InputOfExactlyTheLimitIsNotCut) { EXPECT_EQ(DisplayText("abcde", 5), "abcde"); }

TEST(QuotedDisplayTextTest, QuotesAndEscapesInnerQuotes) {
  EXPECT_EQ(QuotedDisplayText("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
}

}  // namespace
}  // namespace idevid
