// PCR extend, read and quote on a swtpm, checked against SHA-256 computed here, our signature
// check and tpm2_checkquote (tpm2-tools) as an independent verifier.
#include "core/tpm_pcr.h"

#include <openssl/evp.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_keys.h"
#include "core/tpm_wire.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr TPM2_HANDLE kIakHandle = 0x81020011;

Bytes Sha256(std::span<const std::uint8_t> data) {
  Bytes digest(32);
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

Bytes ToBytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

class PcrSwtpmTest : public testing::SwtpmTest {};

class PcrTest : public testing::TpmTestBase, public ::testing::TestWithParam<KeyAlgorithm> {
 protected:
  void SetUp() override { StartTpm(testing::TpmAccess::kDirect); }
  void TearDown() override { StopTpm(); }

  PrimaryKey Iak() {
    auto key = CreatePrimary(tpm(), ESYS_TR_RH_ENDORSEMENT, IakKeyTemplate(GetParam()));
    EXPECT_THAT(key, IsOk());
    return std::move(*key);
  }
  std::string Path(std::string_view file) { return (dir() / file).string(); }
  void Write(std::string_view file, std::span<const std::uint8_t> bytes) {
    ASSERT_THAT(WriteFileAtomic(dir() / file, bytes), IsOk());
  }
  // A quote of `selection` by the IAK, persisted so that tpm2_readpublic can give its PEM.
  Attestation PersistedIakQuote(const PcrSelection& selection, const Bytes& nonce, PcrValues& values) {
    PrimaryKey iak = Iak();
    EXPECT_THAT(PersistKey(tpm(), iak.object, kIakHandle), IsOk());
    auto quote = Quote(tpm(), iak.object.handle(), selection, nonce);
    EXPECT_THAT(quote, IsOk());
    auto read = ReadPcrs(tpm(), selection);
    EXPECT_THAT(read, IsOk());
    values = read.value_or(PcrValues{});
    return quote.value_or(Attestation{});
  }
};

// Part 3 §22.2: PCR := SHA-256(PCR || digest), from 32 zero bytes after a reset.
TEST_F(PcrSwtpmTest, ExtendThenReadMatchesTheExtendedHash) {
  Bytes digest = Sha256(ToBytes("measured component"));
  ASSERT_THAT(ExtendPcr(tpm(), 10, digest), IsOk());
  auto values = ReadPcrs(tpm(), {TPM2_ALG_SHA256, {10}});
  ASSERT_THAT(values, IsOk());
  Bytes expected(32, 0);
  expected.insert(expected.end(), digest.begin(), digest.end());
  EXPECT_EQ(values->at(10), Sha256(expected));
}

TEST_F(PcrSwtpmTest, ReadsEveryPcrOfALargeSelection) {
  PcrSelection all{TPM2_ALG_SHA256, {}};
  for (std::uint32_t pcr = 0; pcr < 24; ++pcr) all.pcrs.push_back(pcr);
  auto values = ReadPcrs(tpm(), all);  // TPM2_PCR_Read returns at most 8 digests per call
  ASSERT_THAT(values, IsOk());
  ASSERT_EQ(values->size(), 24u);
  for (const auto& [pcr, value] : *values) EXPECT_EQ(value.size(), 32u) << pcr;
  EXPECT_EQ(values->at(0), Bytes(32, 0));
}

TEST_F(PcrSwtpmTest, ExtendRefusesWhatIsNotASha256DigestOfAPcr) {
  EXPECT_THAT(ExtendPcr(tpm(), 10, Bytes(20, 1)), ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                                                           StartsWith("cannot extend PCR 10 with 20")));
  EXPECT_THAT(ExtendPcr(tpm(), 24, Bytes(32, 1)),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, StartsWith("cannot extend PCR 24")));
}

TEST_P(PcrTest, QuoteByTheIakVerifiesAndSignsThePcrValues) {
  ASSERT_THAT(ExtendPcr(tpm(), 7, Sha256(ToBytes("secure boot"))), IsOk());
  PrimaryKey iak = Iak();
  auto selection = ParsePcrSelection("sha256:0,1,2,3,4,5,6,7,8,9");
  ASSERT_THAT(selection, IsOk());
  Bytes nonce = ToBytes("the verifier's nonce bound to a session");
  auto quote = Quote(tpm(), iak.object.handle(), *selection, nonce);
  ASSERT_THAT(quote, IsOk());
  auto signature = UnmarshalSignature(quote->signature);
  ASSERT_THAT(signature, IsOk());
  EXPECT_THAT(VerifyTpmSignature(iak.public_area.publicArea, quote->attest, *signature), IsOk());
  auto attest = UnmarshalAttest(quote->attest);
  ASSERT_THAT(attest, IsOk());
  EXPECT_EQ(attest->magic, TPM2_GENERATED_VALUE);
  EXPECT_EQ(attest->type, TPM2_ST_ATTEST_QUOTE);
  EXPECT_EQ(Bytes(attest->extraData.buffer, attest->extraData.buffer + attest->extraData.size), nonce);
  EXPECT_THAT(PcrSelectionFromTpml(attest->attested.quote.pcrSelect), ::testing::Optional(*selection));
  auto values = ReadPcrs(tpm(), *selection);
  ASSERT_THAT(values, IsOk());
  const TPM2B_DIGEST& signed_digest = attest->attested.quote.pcrDigest;
  EXPECT_THAT(PcrCompositeDigest(*selection, *values),
              ::testing::Optional(Bytes(signed_digest.buffer, signed_digest.buffer + signed_digest.size)));
}

TEST_P(PcrTest, QuoteRefusesOversizeQualifyingData) {
  PrimaryKey iak = Iak();
  EXPECT_THAT(Quote(tpm(), iak.object.handle(), {TPM2_ALG_SHA256, {0}}, Bytes(65, 1)),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                       StartsWith("qualifying data of 65 bytes: TPM2_Quote takes at most 64")));
}

// tpm2_checkquote: the IAK's public key as tpm2_readpublic writes it (PEM), the TPMS_ATTEST, the
// TPMT_SIGNATURE, the PCR values as tpm2_pcrread writes them (concatenated) and the nonce.
TEST_P(PcrTest, TpmCheckquoteVerifiesOurQuote) {
  ASSERT_THAT(ExtendPcr(tpm(), 4, Sha256(ToBytes("kernel"))), IsOk());
  PcrSelection selection{TPM2_ALG_SHA256, {0, 4, 7, 9}};
  Bytes nonce = Sha256(ToBytes("nonce"));
  PcrValues values;
  Attestation quote = PersistedIakQuote(selection, nonce, values);
  Bytes concatenated;
  for (std::uint32_t pcr : selection.pcrs)
    concatenated.insert(concatenated.end(), values[pcr].begin(), values[pcr].end());
  Write("attest.bin", quote.attest);
  Write("signature.bin", quote.signature);
  Write("pcrs.bin", concatenated);
  auto pem = RunTool(
      {"tpm2_readpublic", "-c", fmt::format("{:#x}", kIakHandle), "-f", "pem", "-o", Path("iak.pem")});
  ASSERT_EQ(pem.exit_status, 0) << pem.err;
  auto check = [&](const Bytes& qualifying) {
    return RunTool({"tpm2_checkquote", "-u", Path("iak.pem"), "-m", Path("attest.bin"), "-s",
                    Path("signature.bin"), "-f", Path("pcrs.bin"), "-l", selection.ToString(), "-g", "sha256",
                    "-q", Hex(qualifying)});
  };
  auto good = check(nonce);
  EXPECT_EQ(good.exit_status, 0) << good.out << good.err;
  Bytes flipped = nonce;
  flipped[0] ^= 1;
  auto bad = check(flipped);
  EXPECT_NE(bad.exit_status, 0) << bad.out;
  EXPECT_THAT(bad.err, HasSubstr("Error validating nonce"));
  concatenated[40] ^= 1;  // PCR 4's value as sent differs from the one the TPM signed
  Write("pcrs.bin", concatenated);
  auto other_pcrs = check(nonce);
  EXPECT_NE(other_pcrs.exit_status, 0) << other_pcrs.out;
  EXPECT_THAT(other_pcrs.err, HasSubstr("PCR"));
  Reconnect();
}

INSTANTIATE_TEST_SUITE_P(Iak, PcrTest, ::testing::Values(KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048),
                         [](const ::testing::TestParamInfo<KeyAlgorithm>& param) {
                           return param.param == KeyAlgorithm::kRsa2048 ? std::string("Rsa")
                                                                        : std::string("Ecc");
                         });

}  // namespace
}  // namespace idevid
