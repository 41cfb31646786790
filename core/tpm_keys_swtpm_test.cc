// IDevID keys on a real swtpm: create, persist, read back, sign; checked against tpm2-tools and
// OpenSSL.
#include "core/tpm_keys.h"

#include <openssl/rsa.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/openssl_error.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_capability.h"
#include "core/tpm_sign.h"
#include "core/tss_error.h"
#include "core/x509.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultInDomain;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using testing::TpmTest;

constexpr TPM2_HANDLE kHandle = 0x81020000;

void ExpectTpmRc(const Error& error, TSS2_RC expected) {
  EXPECT_TRUE(IsTpmRc(error, expected)) << error.ToString();
}

// OpenSSL's verdict on `signature` over `message` (SHA-256) with `key`.
bool Verifies(EVP_PKEY& key, std::string_view message, const Bytes& signature, int rsa_padding = 0) {
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, &key) != 1) return false;
  if (rsa_padding != 0) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, rsa_padding);
    if (rsa_padding == RSA_PKCS1_PSS_PADDING) {
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO);
    }
  }
  bool ok = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                             reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  ClearOpenSslErrors();
  return ok;
}

class KeyTest : public TpmTest {
 protected:
  // Creates the IDevID key, persists it at kHandle and drops the transient.
  void ProvisionKey(KeyAlgorithm alg) {
    auto key = CreatePrimary(tpm(), ESYS_TR_RH_ENDORSEMENT, IdevidKeyTemplate(alg));
    ASSERT_TRUE(key) << key.error().ToString();
    auto persisted = PersistKey(tpm(), key->object, kHandle);
    ASSERT_TRUE(persisted) << persisted.error().ToString();
  }
  ossl::PKey PersistedPublicKey() {
    auto pub = ReadPersistentPublic(tpm(), kHandle);
    EXPECT_TRUE(pub) << pub.error().ToString();
    auto key = PublicKeyFromTpm(pub->publicArea);
    EXPECT_TRUE(key) << key.error().ToString();
    return std::move(*key);
  }
  Bytes Sign(SignatureScheme scheme, std::string_view message) {
    auto key = ReferenceTpmHandle(tpm(), kHandle);
    EXPECT_TRUE(key) << key.error().ToString();
    auto sig = SignMessage(tpm(), key->handle(), {.scheme = scheme},
                           std::span(reinterpret_cast<const std::uint8_t*>(message.data()), message.size()));
    EXPECT_TRUE(sig) << sig.error().ToString();
    return sig.value_or(Bytes{});
  }
};

TEST_P(KeyTest, PersistedEccKeyEqualsWhatTpm2ReadpublicPrints) {
  ProvisionKey(KeyAlgorithm::kEccP256);
  ossl::PKey ours = PersistedPublicKey();
  auto pem = dir() / "idevid.pub.pem";
  auto tool = RunTool({"tpm2_readpublic", "-c", "0x81020000", "-f", "pem", "-o", pem.string()});
  ASSERT_EQ(tool.exit_status, 0) << tool.err;
  auto theirs = ParsePublicKeyPem(*ReadFileText(pem));
  ASSERT_TRUE(theirs) << theirs.error().ToString();
  EXPECT_EQ(*PublicKeyDer(*ours), *PublicKeyDer(**theirs));
  EXPECT_NE(tool.out.find("fixedtpm|fixedparent|sensitivedataorigin|userwithauth|adminwithpolicy|sign"),
            std::string::npos)
      << tool.out;
  Reconnect();
  ASSERT_TRUE(UnpersistKey(tpm(), kHandle));
}

TEST_P(KeyTest, EcdsaSignatureFromTheTpmVerifiesWithOpenSsl) {
  ProvisionKey(KeyAlgorithm::kEccP256);
  ossl::PKey pub = PersistedPublicKey();
  Bytes sig = Sign(SignatureScheme::kEcdsa, "challenge 1");
  EXPECT_TRUE(Verifies(*pub, "challenge 1", sig));
  EXPECT_FALSE(Verifies(*pub, "challenge 2", sig));
  ASSERT_TRUE(UnpersistKey(tpm(), kHandle));
}

TEST_P(KeyTest, RsaPkcs1AndPssSignaturesVerifyWithOpenSsl) {
  ProvisionKey(KeyAlgorithm::kRsa2048);
  ossl::PKey pub = PersistedPublicKey();
  EXPECT_EQ(EVP_PKEY_get_bits(pub.get()), 2048);
  Bytes pkcs1 = Sign(SignatureScheme::kRsaPkcs1, "hello");
  EXPECT_TRUE(Verifies(*pub, "hello", pkcs1, RSA_PKCS1_PADDING));
  Bytes pss = Sign(SignatureScheme::kRsaPss, "hello");
  EXPECT_TRUE(Verifies(*pub, "hello", pss, RSA_PKCS1_PSS_PADDING));
  EXPECT_FALSE(Verifies(*pub, "hello", pss, RSA_PKCS1_PADDING));
  ASSERT_TRUE(UnpersistKey(tpm(), kHandle));
}

TEST_P(KeyTest, EccKeyRefusesAnRsaScheme) {
  ProvisionKey(KeyAlgorithm::kEccP256);
  auto key = ReferenceTpmHandle(tpm(), kHandle);
  ASSERT_TRUE(key);
  Bytes digest(32, 0x11);
  auto sig = SignDigest(tpm(), key->handle(), {.scheme = SignatureScheme::kRsaPss}, digest);
  EXPECT_THAT(sig, ResultInDomain(ErrorDomain::kTss, HasSubstr("TPM2_Sign failed")));
  auto short_digest = SignDigest(tpm(), key->handle(), {}, Bytes(20, 0x11));
  EXPECT_THAT(short_digest, ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                                     HasSubstr("must be 32 bytes, got 20")));
  ASSERT_TRUE(UnpersistKey(tpm(), kHandle));
}

TEST_P(KeyTest, SamePrimaryTemplateGivesTheSameKey) {
  auto first = CreatePrimary(tpm(), ESYS_TR_RH_ENDORSEMENT, IdevidKeyTemplate(KeyAlgorithm::kEccP256));
  ASSERT_TRUE(first);
  auto first_key = PublicKeyFromTpm(first->public_area.publicArea);
  first->object.Reset();
  auto second = CreatePrimary(tpm(), ESYS_TR_RH_ENDORSEMENT, IdevidKeyTemplate(KeyAlgorithm::kEccP256));
  ASSERT_TRUE(second);
  auto second_key = PublicKeyFromTpm(second->public_area.publicArea);
  EXPECT_EQ(*PublicKeyDer(**first_key), *PublicKeyDer(**second_key));
}

TEST_P(KeyTest, PersistingOnATakenHandleFailsWithNvDefined) {
  ProvisionKey(KeyAlgorithm::kEccP256);
  auto key = CreatePrimary(tpm(), ESYS_TR_RH_ENDORSEMENT, IdevidKeyTemplate(KeyAlgorithm::kEccP256));
  ASSERT_TRUE(key);
  auto again = PersistKey(tpm(), key->object, kHandle);
  ASSERT_THAT(again, ResultInDomain(ErrorDomain::kTss, HasSubstr("0x81020000")));
  ExpectTpmRc(again.error(), TPM2_RC_NV_DEFINED);
  ASSERT_TRUE(UnpersistKey(tpm(), kHandle));
}

TEST_P(KeyTest, AbsentPersistentHandleFailsWithTpmRcHandle) {
  auto pub = ReadPersistentPublic(tpm(), 0x81020001);
  ASSERT_THAT(pub, ResultInDomain(ErrorDomain::kTss, StartsWith("no key at 0x81020001")));
  ExpectTpmRc(pub.error(), TPM2_RC_HANDLE);
  auto unpersist = UnpersistKey(tpm(), 0x81020001);
  ASSERT_THAT(unpersist,
              ResultInDomain(ErrorDomain::kTss,
                             StartsWith("cannot remove the persistent key: no key at 0x81020001")));
  ExpectTpmRc(unpersist.error(), TPM2_RC_HANDLE);
}

TEST_P(KeyTest, PersistentHandleIsListedUntilRemoved) {
  ProvisionKey(KeyAlgorithm::kEccP256);
  auto listed = ListHandles(tpm(), TPM2_HT_PERSISTENT);
  ASSERT_TRUE(listed);
  EXPECT_EQ(*listed, std::vector<TPM2_HANDLE>{kHandle});
  ASSERT_TRUE(UnpersistKey(tpm(), kHandle));
  EXPECT_TRUE(ListHandles(tpm(), TPM2_HT_PERSISTENT)->empty());
}

TEST_P(KeyTest, AKeyPersistedAgainAtTheSameHandleIsSeenInTheSameContext) {
  ProvisionKey(KeyAlgorithm::kEccP256);
  auto first = PersistedPublicKey();
  ASSERT_TRUE(UnpersistKey(tpm(), kHandle));
  ProvisionKey(KeyAlgorithm::kRsa2048);
  auto second = PersistedPublicKey();
  EXPECT_EQ(EVP_PKEY_get_base_id(first.get()), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_base_id(second.get()), EVP_PKEY_RSA);
  ASSERT_TRUE(UnpersistKey(tpm(), kHandle));
}

INSTANTIATE_TEST_SUITE_P(Swtpm, KeyTest, testing::AllTpmAccess(), testing::AccessName);

}  // namespace
}  // namespace idevid
