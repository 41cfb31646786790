// Certificates and requests built with core/x509_build, checked with OpenSSL's own verifier.
#include "core/x509_build.h"

#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/openssl_error.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_sign.h"
#include "core/x509_verify.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultInDomain;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Ca {
  ossl::PKey key;
  ossl::Cert cert;
};

Ca MakeRoot(KeyAlgorithm alg, const std::string& cn) {
  auto key = GenerateKey(alg);
  EXPECT_TRUE(key);
  auto cert = IssueCertificate({.subject = {{"O", "Example"}, {"CN", cn}},
                                .not_after = "20991231235959Z",
                                .extensions = {{"basicConstraints", "critical,CA:TRUE,pathlen:1"},
                                               {"keyUsage", "critical,keyCertSign,cRLSign"},
                                               {"subjectKeyIdentifier", "hash"}}},
                               **key, nullptr, **key);
  EXPECT_TRUE(cert) << cert.error().ToString();
  return {std::move(*key), std::move(*cert)};
}

ossl::Cert MakeLeaf(const Ca& issuer, EVP_PKEY& key, const std::string& not_after) {
  auto cert = IssueCertificate(
      {.subject = {{"CN", "leaf"}},
       .not_after = not_after,
       .extensions = {{"basicConstraints", "critical,CA:FALSE"}, {"authorityKeyIdentifier", "keyid"}}},
      key, issuer.cert.get(), *issuer.key);
  EXPECT_TRUE(cert) << cert.error().ToString();
  return std::move(*cert);
}

class X509BuildTest : public ::testing::TestWithParam<KeyAlgorithm> {};

TEST_P(X509BuildTest, IssuedChainVerifiesAgainstItsRootOnly) {
  Ca root = MakeRoot(GetParam(), "Root");
  Ca other = MakeRoot(GetParam(), "Other Root");
  auto leaf_key = GenerateKey(KeyAlgorithm::kEccP256);
  ossl::Cert leaf = MakeLeaf(root, **leaf_key, "99991231235959Z");
  auto good = VerifyChain(*leaf, {}, {root.cert.get()});
  ASSERT_TRUE(good);
  EXPECT_TRUE(good->valid) << good->error;
  EXPECT_EQ(good->chain_subjects.size(), 2u);
  auto bad = VerifyChain(*leaf, {}, {other.cert.get()});
  ASSERT_TRUE(bad);
  EXPECT_FALSE(bad->valid);
  EXPECT_EQ(bad->error_code, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(bad->error_depth, 0);
}

TEST_P(X509BuildTest, FarNotAfterIsAGeneralizedTimeAndSerialIsPositive) {
  Ca root = MakeRoot(GetParam(), "Root");
  auto leaf_key = GenerateKey(KeyAlgorithm::kEccP256);
  ossl::Cert leaf = MakeLeaf(root, **leaf_key, "99991231235959Z");
  const ASN1_TIME* not_after = X509_get0_notAfter(leaf.get());
  EXPECT_EQ(ASN1_STRING_type(not_after), V_ASN1_GENERALIZEDTIME);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(not_after))), "99991231235959Z");
  EXPECT_EQ(ASN1_STRING_type(X509_get0_notBefore(leaf.get())), V_ASN1_UTCTIME);
  ossl::Bignum serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf.get()), nullptr));
  EXPECT_FALSE(BN_is_negative(serial.get()));
  EXPECT_LE(BN_num_bytes(serial.get()), 16);
}

TEST_P(X509BuildTest, RequestSignedByTheKeyHolderVerifies) {
  auto key = GenerateKey(GetParam());
  ASSERT_TRUE(key);
  auto sign = [&](std::span<const std::uint8_t> tbs) -> Result<Bytes> {
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    std::size_t length = 0;
    if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key->get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &length, tbs.data(), tbs.size()) != 1) {
      return FailOpenSsl("test signer");
    }
    Bytes sig(length);
    EVP_DigestSign(ctx.get(), sig.data(), &length, tbs.data(), tbs.size());
    sig.resize(length);
    return sig;
  };
  auto req = MakeSignedRequest({{"CN", "unit"}}, **key, sign);
  ASSERT_TRUE(req) << req.error().ToString();
  EXPECT_EQ(X509_REQ_verify(req->get(), key->get()), 1);
}

TEST_P(X509BuildTest, RequestSignedByAnotherKeyIsRefusedAsVerifyError) {
  auto key = GenerateKey(GetParam());
  auto impostor = GenerateKey(GetParam());
  auto sign = [&](std::span<const std::uint8_t> tbs) -> Result<Bytes> {
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    std::size_t length = 512;
    Bytes sig(length);
    EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impostor->get());
    EVP_DigestSign(ctx.get(), sig.data(), &length, tbs.data(), tbs.size());
    sig.resize(length);
    return sig;
  };
  auto req = MakeSignedRequest({{"CN", "unit"}}, **key, sign);
  EXPECT_THAT(req, ResultIs(ErrorDomain::kVerify, X509_V_ERR_CERT_SIGNATURE_FAILURE,
                            HasSubstr("does not hold the private key")));
}

INSTANTIATE_TEST_SUITE_P(Keys, X509BuildTest,
                         ::testing::Values(KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048),
                         [](const auto& param_info) {
                           return param_info.param == KeyAlgorithm::kEccP256 ? "Ecc" : "Rsa";
                         });

TEST(X509BuildErrorsTest, InvalidTimeAndExtensionAreNamed) {
  auto key = GenerateKey(KeyAlgorithm::kEccP256);
  auto bad_time = IssueCertificate({.not_after = "tomorrow"}, **key, nullptr, **key);
  EXPECT_THAT(bad_time, ResultInDomain(ErrorDomain::kOpenSsl,
                                       StartsWith("notAfter: 'tomorrow' is not a valid certificate time")));
  auto bad_ext =
      IssueCertificate({.not_after = "20991231235959Z", .extensions = {{"basicConstraints", "CA:MAYBE"}}},
                       **key, nullptr, **key);
  EXPECT_THAT(bad_ext, ResultInDomain(ErrorDomain::kOpenSsl, HasSubstr("basicConstraints = CA:MAYBE")));
}

}  // namespace
}  // namespace idevid
