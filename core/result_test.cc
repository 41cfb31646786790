#include "core/result.h"

#include <cerrno>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"

namespace idevid {
namespace {

TEST(ErrorTest, ToStringNamesDomainCodeAndMessage) {
  Error e(ErrorDomain::kTss, 0x18b, "no key at 0x81020000");
  EXPECT_EQ(e.ToString(), "[tss 0x18b] no key at 0x81020000");
}

TEST(ErrorTest, WithContextPrefixesTheMessageAndKeepsDomainAndCode) {
  Error e = Error(ErrorDomain::kIo, ENOENT, "cannot open x").WithContext("loading the factory CA");
  EXPECT_EQ(e.domain(), ErrorDomain::kIo);
  EXPECT_EQ(e.code(), static_cast<std::uint64_t>(ENOENT));
  EXPECT_EQ(e.message(), "loading the factory CA: cannot open x");
  EXPECT_EQ(e.root_message(), "cannot open x");
}

TEST(ErrorTest, ContextReadsAsAChainOuterFirstRootCauseLast) {
  Error e = Error(ErrorDomain::kTss, 0x18b, "handle not found")
                .WithContext("reading the public area of 0x81020000")
                .WithContext("loading idev-id");
  EXPECT_EQ(e.message(), "loading idev-id: reading the public area of 0x81020000: handle not found");
  EXPECT_THAT(e.context(),
              ::testing::ElementsAre("loading idev-id", "reading the public area of 0x81020000"));
  EXPECT_EQ(e.ToString(), "[tss 0x18b] " + e.message());
}

TEST(ErrorTest, OurOwnDomainsHaveStableCodeNames) {
  Result<void> r = ConfigError(ConfigCode::kReference, "profile 'x' is not defined");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), 6u);
  EXPECT_TRUE(r.error().Is(ErrorDomain::kConfig, ConfigCode::kReference));
  EXPECT_EQ(r.error().ToString(), "[config 6 reference] profile 'x' is not defined");
  EXPECT_EQ(CodeName(ErrorDomain::kPeer, static_cast<std::uint64_t>(PeerCode::kTimeout)), "timeout");
  EXPECT_EQ(CodeName(ErrorDomain::kUsage, static_cast<std::uint64_t>(UsageCode::kConflict)), "conflict");
  EXPECT_EQ(CodeName(ErrorDomain::kTss, 0x18b), "");
}

Result<int> Parse(int value) {
  if (value < 0) return ConfigError(ConfigCode::kBadValue, "negative");
  return value * 2;
}

Result<int> Doubled(int value) {
  IDEVID_ASSIGN_OR_RETURN(int parsed, Parse(value), "parsing {}", value);
  return parsed;
}

Result<void> Check(int value) {
  IDEVID_TRY(Parse(value));
  IDEVID_TRY(Doubled(value), "checking");
  return {};
}

TEST(ResultMacrosTest, AssignOrReturnGivesTheValueOnSuccess) {
  EXPECT_EQ(Doubled(21).value(), 42);
  EXPECT_THAT(Check(1), testing::IsOk());
}

TEST(ResultMacrosTest, AssignOrReturnAddsItsFormattedContext) {
  EXPECT_THAT(Doubled(-1), testing::ResultIs(ErrorDomain::kConfig, ConfigCode::kBadValue,
                                             ::testing::StrEq("parsing -1: negative")));
}

TEST(ResultMacrosTest, TryWithoutContextPassesTheErrorUnchanged) {
  Result<void> r = Check(-1);
  EXPECT_THAT(r,
              testing::ResultIs(ErrorDomain::kConfig, ConfigCode::kBadValue, ::testing::StrEq("negative")));
}

Result<void> CheckTwice(int value) {
  IDEVID_TRY(Doubled(value), "checking");
  return {};
}

TEST(ResultMacrosTest, TryAddsContextOutsideTheInnerContext) {
  EXPECT_THAT(CheckTwice(-2), testing::ResultIs(ErrorDomain::kConfig, ConfigCode::kBadValue,
                                                ::testing::StrEq("checking: parsing -2: negative")));
}

TEST(ResultMatchersTest, ResultIsExplainsTheErrorItGotInstead) {
  ::testing::StringMatchResultListener listener;
  Result<int> r = PeerError(PeerCode::kTimeout, "the cloud said nothing for 30 s");
  auto matcher = testing::ResultIs(ErrorDomain::kPeer, PeerCode::kClosed, ::testing::_);
  EXPECT_FALSE(::testing::ExplainMatchResult(matcher, r, &listener));
  EXPECT_THAT(listener.str(), ::testing::HasSubstr("[peer 3 timeout] the cloud said nothing for 30 s"));
  EXPECT_FALSE(::testing::Matches(testing::ResultIs(ErrorDomain::kPeer, PeerCode::kTimeout, ::testing::_))(
      Result<int>(5)));
}

TEST(ErrorTest, ErrnoErrorCarriesTheSystemMessage) {
  Result<int> r = ErrnoError(ENOENT, "cannot open /nonexistent");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().domain(), ErrorDomain::kIo);
  EXPECT_EQ(r.error().message(), "cannot open /nonexistent: No such file or directory");
}

TEST(ErrorTest, EveryDomainHasItsOwnName) {
  const ErrorDomain all[] = {ErrorDomain::kOpenSsl, ErrorDomain::kTss,     ErrorDomain::kIo,
                             ErrorDomain::kUsage,   ErrorDomain::kConfig,  ErrorDomain::kTls,
                             ErrorDomain::kVerify,  ErrorDomain::kProcess, ErrorDomain::kPeer};
  std::set<std::string_view> names;
  for (ErrorDomain d : all) names.insert(DomainName(d));
  EXPECT_EQ(names.size(), std::size(all));
  EXPECT_EQ(DomainName(ErrorDomain::kOpenSsl), "openssl");
}

}  // namespace
}  // namespace idevid
