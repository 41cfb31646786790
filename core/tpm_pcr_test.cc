// PCR selections and the composite digest a quote signs, without a TPM.
#include "core/tpm_pcr.h"

#include <openssl/evp.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(PcrSelection, ParsesSortsAndPrints) {
  auto selection = ParsePcrSelection("sha256:7,0,23,2");
  ASSERT_THAT(selection, IsOk());
  EXPECT_EQ(selection->hash, TPM2_ALG_SHA256);
  EXPECT_EQ(selection->pcrs, (std::vector<std::uint32_t>{0, 2, 7, 23}));
  EXPECT_EQ(selection->ToString(), "sha256:0,2,7,23");
  EXPECT_THAT(ParsePcrSelection(selection->ToString()), ::testing::Optional(*selection));
}

TEST(PcrSelection, RefusesWhatIsNotASelection) {
  auto refused = [](std::string_view text, std::string_view why) {
    EXPECT_THAT(ParsePcrSelection(text), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr(why)))
        << text;
  };
  refused("0,1,2", "not BANK:PCR");
  refused("sha1:0,1", "the bank must be sha256");
  refused("sha256:", "\"\" is not a PCR from 0 to 23");
  refused("sha256:0,24", "\"24\" is not a PCR");
  refused("sha256:0,,1", "\"\" is not a PCR");
  refused("sha256:1,-1", "\"-1\" is not a PCR");
  refused("sha256:0,1,0", "PCR 0 is named twice");
  refused("sha256:4294967296", "is not a PCR");
  EXPECT_THAT(ParsePcrSelection("sha256:\x1b[2J"), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                                                            StartsWith("PCR selection \"sha256:\\x1b[2J\"")));
}

TEST(PcrSelection, CoversOnlyItsOwnBankAndPcrs) {
  PcrSelection wide{TPM2_ALG_SHA256, {0, 1, 2, 3, 4, 5, 6, 7}};
  EXPECT_TRUE(wide.Covers({TPM2_ALG_SHA256, {0, 7}}));
  EXPECT_TRUE(wide.Covers(wide));
  EXPECT_FALSE(wide.Covers({TPM2_ALG_SHA256, {0, 8}}));
  EXPECT_FALSE(wide.Covers({TPM2_ALG_SHA1, {0}}));
  EXPECT_FALSE((PcrSelection{TPM2_ALG_SHA256, {0, 7}}).Covers(wide));
}

TEST(PcrSelection, TpmlRoundTrip) {
  PcrSelection selection{TPM2_ALG_SHA256, {0, 7, 8, 23}};
  TPML_PCR_SELECTION tpml = selection.ToTpml();
  ASSERT_EQ(tpml.count, 1u);
  EXPECT_EQ(tpml.pcrSelections[0].sizeofSelect, 3);
  EXPECT_EQ(tpml.pcrSelections[0].pcrSelect[0], 0x81);
  EXPECT_EQ(tpml.pcrSelections[0].pcrSelect[1], 0x01);
  EXPECT_EQ(tpml.pcrSelections[0].pcrSelect[2], 0x80);
  EXPECT_THAT(PcrSelectionFromTpml(tpml), ::testing::Optional(selection));
}

TEST(PcrSelection, RefusesTpmlItCannotSpeakOf) {
  TPML_PCR_SELECTION tpml = PcrSelection{TPM2_ALG_SHA256, {0}}.ToTpml();
  TPML_PCR_SELECTION two = tpml;
  two.count = 2;
  two.pcrSelections[1] = two.pcrSelections[0];
  EXPECT_THAT(PcrSelectionFromTpml(two),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, StartsWith("a PCR selection of 2 banks")));
  TPML_PCR_SELECTION sha1 = tpml;
  sha1.pcrSelections[0].hash = TPM2_ALG_SHA1;
  EXPECT_THAT(PcrSelectionFromTpml(sha1), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                                                   StartsWith("a PCR selection of bank 0x0004")));
  TPML_PCR_SELECTION wide = tpml;
  wide.pcrSelections[0].sizeofSelect = 4;
  EXPECT_THAT(PcrSelectionFromTpml(wide),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, StartsWith("a PCR bitmap of 4 bytes")));
}

// Part 3 §18.4.1: pcrDigest = SHA-256(PCR[0] || PCR[7]) in the selection's order.
TEST(PcrCompositeDigest, IsTheDigestOfTheSelectedValuesInOrder) {
  PcrValues values{{0, Bytes(32, 0x00)}, {7, Bytes(32, 0x77)}, {9, Bytes(32, 0x99)}};
  Bytes concatenated(32, 0x00);
  concatenated.insert(concatenated.end(), 32, 0x77);
  Bytes expected(32);
  unsigned int length = 0;
  EVP_Digest(concatenated.data(), concatenated.size(), expected.data(), &length, EVP_sha256(), nullptr);
  EXPECT_THAT(PcrCompositeDigest({TPM2_ALG_SHA256, {0, 7}}, values), ::testing::Optional(expected));
  EXPECT_THAT(
      PcrCompositeDigest({TPM2_ALG_SHA256, {0, 8}}, values),
      ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, StartsWith("PCR 8 is selected but has no value")));
  values[7].pop_back();
  EXPECT_THAT(
      PcrCompositeDigest({TPM2_ALG_SHA256, {0, 7}}, values),
      ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, StartsWith("PCR 7 has a value of 31 bytes")));
}

}  // namespace
}  // namespace idevid
