// The IDevID templates and the TPM-to-OpenSSL public key conversion, without a TPM.
#include "core/tpm_keys.h"

#include <openssl/core_names.h>

#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "core/testing/test_certs.h"
#include "core/x509.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultInDomain;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;

constexpr TPMA_OBJECT kRequired = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                  TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                  TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_SIGN_ENCRYPT;

std::string Unique(const std::uint8_t* buffer, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(buffer), size);
}

TEST(IdevidTemplateTest, EccTemplateIsH2) {
  TPMT_PUBLIC t = IdevidKeyTemplate(KeyAlgorithm::kEccP256).publicArea;
  EXPECT_EQ(t.type, TPM2_ALG_ECC);
  EXPECT_EQ(t.nameAlg, TPM2_ALG_SHA256);
  EXPECT_EQ(t.objectAttributes, kRequired);
  EXPECT_EQ(t.parameters.eccDetail.curveID, TPM2_ECC_NIST_P256);
  EXPECT_EQ(t.parameters.eccDetail.scheme.scheme, TPM2_ALG_ECDSA);
  EXPECT_EQ(t.parameters.eccDetail.scheme.details.ecdsa.hashAlg, TPM2_ALG_SHA256);
  EXPECT_EQ(t.authPolicy.size, 32);
  EXPECT_EQ(Unique(t.unique.ecc.x.buffer, t.unique.ecc.x.size), "IDEVID");
}

TEST(IdevidTemplateTest, RsaTemplateIsH1WithTheSchemeLeftToEachSignature) {
  TPMT_PUBLIC t = IdevidKeyTemplate(KeyAlgorithm::kRsa2048).publicArea;
  EXPECT_EQ(t.type, TPM2_ALG_RSA);
  EXPECT_EQ(t.objectAttributes, kRequired);
  EXPECT_EQ(t.parameters.rsaDetail.keyBits, 2048);
  EXPECT_EQ(t.parameters.rsaDetail.scheme.scheme, TPM2_ALG_NULL);
  EXPECT_EQ(Unique(t.unique.rsa.buffer, t.unique.rsa.size), "IDEVID");
  EXPECT_EQ(0, std::memcmp(t.authPolicy.buffer,
                           IdevidKeyTemplate(KeyAlgorithm::kEccP256).publicArea.authPolicy.buffer, 32));
}

TEST(KeyAlgorithmTest, ParsesItsOwnNamesAndRefusesOthers) {
  for (KeyAlgorithm alg : {KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048}) {
    EXPECT_EQ(*ParseKeyAlgorithm(KeyAlgorithmName(alg)), alg);
  }
  auto bad = ParseKeyAlgorithm("ecc-p521");
  EXPECT_THAT(bad,
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("ecc-p256 or rsa-2048")));
}

// The TPM public area of an OpenSSL EC key: the coordinates as TPMS_ECC_POINT.
TPMT_PUBLIC TpmAreaOf(EVP_PKEY& key) {
  unsigned char point[65];
  std::size_t length = 0;
  EXPECT_EQ(EVP_PKEY_get_octet_string_param(&key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &length), 1);
  TPMT_PUBLIC pub = IdevidKeyTemplate(KeyAlgorithm::kEccP256).publicArea;
  pub.unique.ecc.x.size = 32;
  pub.unique.ecc.y.size = 32;
  std::memcpy(pub.unique.ecc.x.buffer, point + 1, 32);
  std::memcpy(pub.unique.ecc.y.buffer, point + 33, 32);
  return pub;
}

TEST(PublicKeyFromTpmTest, EccPointBecomesTheSameOpenSslKey) {
  ossl::PKey key = testing::GenerateEcKey();
  auto converted = PublicKeyFromTpm(TpmAreaOf(*key));
  ASSERT_TRUE(converted) << converted.error().ToString();
  EXPECT_EQ(*PublicKeyDer(**converted), *PublicKeyDer(*key));
}

TEST(PublicKeyFromTpmTest, UnsupportedCurveAndTypeAreUsageErrors) {
  ossl::PKey key = testing::GenerateEcKey();
  TPMT_PUBLIC pub = TpmAreaOf(*key);
  pub.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
  auto curve = PublicKeyFromTpm(pub);
  EXPECT_THAT(curve, ResultIs(ErrorDomain::kUsage, UsageCode::kUnsupported, HasSubstr("curve")));
  pub.type = TPM2_ALG_KEYEDHASH;
  auto type = PublicKeyFromTpm(pub);
  EXPECT_THAT(type, ResultIs(ErrorDomain::kUsage, UsageCode::kUnsupported, HasSubstr("neither ECC nor RSA")));
}

TEST(PublicKeyFromTpmTest, PointNotOnTheCurveIsRefusedByOpenSsl) {
  ossl::PKey key = testing::GenerateEcKey();
  TPMT_PUBLIC pub = TpmAreaOf(*key);
  pub.unique.ecc.y.buffer[31] ^= 0x01;
  auto r = PublicKeyFromTpm(pub);
  EXPECT_THAT(r, ResultInDomain(ErrorDomain::kOpenSsl, HasSubstr("cannot build an OpenSSL EC public key")));
}

}  // namespace
}  // namespace idevid
