#include "core/result.h"

#include <cerrno>
#include <set>

#include <gtest/gtest.h>

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
}

TEST(ErrorTest, ErrnoErrorCarriesTheSystemMessage) {
  Result<int> r = ErrnoError(ENOENT, "cannot open /nonexistent");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().domain(), ErrorDomain::kIo);
  EXPECT_EQ(r.error().message(), "cannot open /nonexistent: No such file or directory");
}

TEST(ErrorTest, EveryDomainHasItsOwnName) {
  const ErrorDomain all[] = {ErrorDomain::kOpenSsl, ErrorDomain::kTss,    ErrorDomain::kIo,
                             ErrorDomain::kUsage,   ErrorDomain::kConfig, ErrorDomain::kTls,
                             ErrorDomain::kVerify,  ErrorDomain::kProcess};
  std::set<std::string_view> names;
  for (ErrorDomain d : all) names.insert(DomainName(d));
  EXPECT_EQ(names.size(), std::size(all));
  EXPECT_EQ(DomainName(ErrorDomain::kOpenSsl), "openssl");
}

}  // namespace
}  // namespace idevid
