#include "device/pkid/operational_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"

namespace idevid {
namespace {

using Kind = OperationalCommand::Kind;
using Detail = OperationalCommand::Detail;

struct GoodCase {
  const char* line;
  Kind kind;
  std::optional<std::string> id;
  Detail detail;
};

class GoodCommandTest : public ::testing::TestWithParam<GoodCase> {};

TEST_P(GoodCommandTest, Parses) {
  auto c = ParseOperationalCommand(GetParam().line);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->kind, GetParam().kind);
  EXPECT_EQ(c->certificate_id, GetParam().id);
  EXPECT_EQ(c->detail, GetParam().detail);
}

INSTANTIATE_TEST_SUITE_P(
    Forms, GoodCommandTest,
    ::testing::Values(
        GoodCase{"show security pki node-local local-certificate", Kind::kShow, std::nullopt,
                 Detail::kNormal},
        GoodCase{"  show  security pki node-local local-certificate   detail ", Kind::kShow, std::nullopt,
                 Detail::kDetail},
        GoodCase{"show security pki node-local local-certificate certificate-id idev-id brief", Kind::kShow,
                 "idev-id", Detail::kBrief},
        GoodCase{"request security pki node-local local-certificate verify certificate-id fs-cert",
                 Kind::kVerify, "fs-cert", Detail::kNormal},
        GoodCase{"request security pki node-local local-certificate export certificate-id idev-id",
                 Kind::kExport, "idev-id", Detail::kNormal},
        GoodCase{"request security pki node-local reload", Kind::kReload, std::nullopt, Detail::kNormal}));

struct BadCase {
  const char* name;
  std::string line;
  const char* message;
};

class BadCommandTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadCommandTest, IsRefusedSayingWhy) {
  EXPECT_THAT(ParseOperationalCommand(GetParam().line),
              testing::ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                                ::testing::HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(
    Lines, BadCommandTest,
    ::testing::Values(
        BadCase{"Empty", "", "known commands:\n  show security pki"},
        BadCase{"Unknown", "show version", "unknown command 'show version'; known commands:"},
        BadCase{"VerifyWithoutId", "request security pki node-local local-certificate verify",
                "known commands"},
        BadCase{"TrailingWord", "show security pki node-local local-certificate detail now",
                "known commands"},
        BadCase{"DetailTwice", "show security pki node-local local-certificate brief detail",
                "known commands"},
        BadCase{"Oversize", "show " + std::string(2000, 'x'),
                "command of 2005 bytes refused: at most 1024 bytes"},
        BadCase{"ControlCharacter", "show security\x1b[2J pki", "byte 0x1b is not printable ASCII"},
        BadCase{"NotUtf8", "show \xff", "byte 0xff is not printable ASCII"},
        // The line is echoed escaped and cut, whatever printable bytes a client sent.
        BadCase{"LongUnknownLineIsCut", "show " + std::string(1000, 'x'), "unknown command 'show xxxxxxxxxx"},
        BadCase{"BackslashIsEscaped", "show \\x1b[2J", "unknown command 'show \\\\x1b[2J';"}),
    [](const auto& test) { return std::string(test.param.name); });

TEST(BadCommandEchoTest, ALongLineIsEchoedCutWithItsLength) {
  EXPECT_THAT(ParseOperationalCommand("show " + std::string(1000, 'x')),
              testing::ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                                ::testing::StartsWith("unknown command 'show " + std::string(115, 'x') +
                                                      "...(1005 bytes)';")));
}

TEST(KnownCommandsTest, ListsEveryForm) { EXPECT_EQ(KnownCommands().size(), 4u); }

}  // namespace
}  // namespace idevid
