#include "core/byte_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "core/x509.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;
using testing::ResultIs;

TEST(Base64, IsStrictAndRoundTrips) {
  Bytes all(256);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(255 - i);
  for (std::size_t n = 0; n < 8; ++n) {
    Bytes bytes(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    auto decoded = DecodeBase64(EncodeBase64(bytes));
    ASSERT_THAT(decoded, IsOk());
    EXPECT_EQ(*decoded, bytes);
  }
  EXPECT_EQ(EncodeBase64(Bytes{'f', 'o', 'o', 'b'}), "Zm9vYg==");  // RFC 4648 §10
  EXPECT_THAT(DecodeBase64("Zm9vYg"),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("multiple of 4")));
  EXPECT_THAT(DecodeBase64("Zm9v Yg="),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("character 4")));
  EXPECT_THAT(DecodeBase64("Zm9=Yg=="),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("character 3")));
  EXPECT_THAT(DecodeBase64("Z==="),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("character 1")));
}

TEST(Hex, IsStrictAndRoundTrips) {
  const Bytes bytes = {0x00, 0x3f, 0x1a, 0xff};
  EXPECT_THAT(DecodeHex(Hex(bytes)), ::testing::Optional(bytes));
  EXPECT_THAT(DecodeHex("3F1A"), ::testing::Optional(Bytes{0x3f, 0x1a}));
  EXPECT_THAT(DecodeHex(""), ::testing::Optional(Bytes{}));
  EXPECT_THAT(DecodeHex("3f1"), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("3 digits")));
  EXPECT_THAT(DecodeHex("3g"), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                                        ::testing::StartsWith("is not hex: character 1 is \"g\"")));
}

}  // namespace
}  // namespace idevid
