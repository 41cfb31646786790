// PKCS#11 keys against a private SoftHSM2 token: URIs parsed by p11-kit, the PIN from a file or
// the environment, keys generated inside the token, and signatures made there through the signer
// provider (ECDSA, RSA PKCS#1 v1.5 and PSS) that OpenSSL verifies; a failed one names C_Sign.
#include <openssl/err.h>
#include <openssl/rsa.h>

#include <cstdlib>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/openssl_error.h"
#include "core/pkcs11_error.h"
#include "core/pkcs11_key_signer.h"
#include "core/signer_provider.h"
#include "core/testing/result_matchers.h"
#include "engine/softhsm_token.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;

TEST(Pkcs11UriTest, NamesTheTokenAndTheKey) {
  auto uri = Pkcs11Uri::Parse("pkcs11:token=Line%207;object=issuing-ca;id=%01%02");
  ASSERT_TRUE(uri) << uri.error().ToString();
  EXPECT_EQ(uri->object(), "issuing-ca");
  EXPECT_EQ(uri->id(), (Bytes{0x01, 0x02}));
  EXPECT_EQ(uri->TokenDescription(), "token \"Line 7\"");
  EXPECT_THAT(Pkcs11Uri::Parse("pkcs11:object=ca"),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("names no token")));
  EXPECT_THAT(Pkcs11Uri::Parse("pkcs11:serial=1234?pin-source=file:/etc/pin"),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("carries a PIN")));
  EXPECT_THAT(Pkcs11Uri::Parse("token=x;object=y"),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("is not a PKCS#11 URI")));
}

TEST(Pkcs11ErrorTest, NamesTheReturnValueAndSaysWhatToDo) {
  EXPECT_EQ(CkrName(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED");
  EXPECT_EQ(CkrName(0x80001234), "CKR_0x80001234");
  Error error = Pkcs11Error(CKR_SESSION_HANDLE_INVALID, "C_Sign");
  EXPECT_EQ(error.domain(), ErrorDomain::kPkcs11);
  EXPECT_EQ(error.code(), CKR_SESSION_HANDLE_INVALID);
  EXPECT_THAT(error.message(), HasSubstr("CKR_SESSION_HANDLE_INVALID: the token went away"));
  EXPECT_TRUE(TokenWentAway(CKR_TOKEN_NOT_PRESENT));
  EXPECT_FALSE(TokenWentAway(CKR_PIN_INCORRECT));
}

TEST(Pkcs11PinTest, ComesFromTheFilesFirstLineElseTheEnvironment) {
  testing::TempDir temp;
  ASSERT_TRUE(WriteFileAtomic(temp.path() / "pin", "1234\r\nignored\n", 0600));
  auto pin = ReadPkcs11Pin(temp.path() / "pin");
  ASSERT_TRUE(pin) << pin.error().ToString();
  EXPECT_EQ(pin->value(), "1234");
  unsetenv(kPkcs11PinVariable);
  EXPECT_THAT(ReadPkcs11Pin({}), ResultIs(ErrorDomain::kUsage, UsageCode::kMissingArgument,
                                          HasSubstr("set IDEVID_PKCS11_PIN or give --pkcs11-pin-file")));
  setenv(kPkcs11PinVariable, "5678", 1);
  EXPECT_EQ(ReadPkcs11Pin({})->value(), "5678");
  unsetenv(kPkcs11PinVariable);
  EXPECT_THAT(ReadPkcs11Pin(temp.path() / "none"), ResultIs(ErrorDomain::kIo, ENOENT, HasSubstr("PIN file")));
}

class Pkcs11SignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto token = SoftHsmToken::Create({.dir = temp_.path() / "hsm", .label = "signer"});
    ASSERT_TRUE(token) << token.error().ToString();
    token->UseInThisProcess();
    auto uri = Pkcs11Uri::Parse(token->Uri("k"));
    ASSERT_TRUE(uri);
    auto opened = Pkcs11Token::Open(SoftHsmToken::ModulePath().string(), *uri, Pkcs11Pin(token->pin()));
    ASSERT_TRUE(opened) << opened.error().ToString();
    token_ = *opened;
    auto library = SignerProviderLibrary::Create();
    ASSERT_TRUE(library);
    library_.emplace(std::move(*library));
  }
  void TearDown() override { token_.reset(); }

  // Signs `message` through the provider with `padding` (RSA) and verifies with the public key.
  void SignAndVerify(KeySigner& signer, std::shared_ptr<KeySigner> shared, int padding) {
    auto key = MakeSignerPrivateKey(library_->get(), std::move(shared));
    ASSERT_TRUE(key) << key.error().ToString();
    const std::string message = "to be signed";
    EVP_PKEY_CTX* pctx = nullptr;
    ossl::MdCtx sign(EVP_MD_CTX_new());
    ASSERT_EQ(
        EVP_DigestSignInit_ex(sign.get(), &pctx, "SHA256", library_->get(), nullptr, key->get(), nullptr), 1);
    if (signer.is_rsa()) {
      ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, padding), 1);
      if (padding == RSA_PKCS1_PSS_PADDING) {
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
      }
    }
    std::size_t length = 0;
    auto data = reinterpret_cast<const unsigned char*>(message.data());
    ASSERT_EQ(EVP_DigestSign(sign.get(), nullptr, &length, data, message.size()), 1);
    Bytes signature(length);
    ASSERT_EQ(EVP_DigestSign(sign.get(), signature.data(), &length, data, message.size()), 1)
        << OpenSslError("sign").message();
    signature.resize(length);
    EVP_PKEY_CTX* vctx = nullptr;
    ossl::MdCtx verify(EVP_MD_CTX_new());
    ASSERT_EQ(EVP_DigestVerifyInit(verify.get(), &vctx, EVP_sha256(), nullptr,
                                   const_cast<EVP_PKEY*>(&signer.public_key())),
              1);
    if (signer.is_rsa()) {
      ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(vctx, padding), 1);
      if (padding == RSA_PKCS1_PSS_PADDING) {
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(vctx, RSA_PSS_SALTLEN_DIGEST), 1);
      }
    }
    EXPECT_EQ(EVP_DigestVerify(verify.get(), signature.data(), signature.size(), data, message.size()), 1);
  }

  testing::TempDir temp_;
  std::shared_ptr<Pkcs11Token> token_;
  std::optional<SignerProviderLibrary> library_;
};

TEST_F(Pkcs11SignerTest, EcdsaSignaturesMadeInTheTokenVerify) {
  auto signer = Pkcs11KeySigner::Generate(token_, KeyAlgorithm::kEccP256, {"ec", Bytes{0x42}}, false);
  ASSERT_TRUE(signer) << signer.error().ToString();
  SignAndVerify(**signer, *signer, 0);
  EXPECT_EQ((*signer)->signatures(), 1u);
  auto found = Pkcs11KeySigner::Find(token_, {"ec", Bytes{0x42}});
  ASSERT_TRUE(found) << found.error().ToString();
  EXPECT_EQ(EVP_PKEY_eq(&(*found)->public_key(), &(*signer)->public_key()), 1);
  EXPECT_THAT(
      Pkcs11KeySigner::Find(token_, {"other", std::nullopt}),
      ResultIs(ErrorDomain::kConfig, ConfigCode::kReference, HasSubstr("0 private and 0 public keys")));
}

TEST_F(Pkcs11SignerTest, RsaSignsPkcs1AndPssInTheToken) {
  auto signer = Pkcs11KeySigner::Generate(token_, KeyAlgorithm::kRsa2048, {"rsa", std::nullopt}, false);
  ASSERT_TRUE(signer) << signer.error().ToString();
  SignAndVerify(**signer, *signer, RSA_PKCS1_PADDING);
  SignAndVerify(**signer, *signer, RSA_PKCS1_PSS_PADDING);
  EXPECT_EQ((*signer)->signatures(), 2u);
}

// A signature the token does not make leaves an OpenSSL error naming C_Sign and the CK_RV.
TEST_F(Pkcs11SignerTest, AFailedSignatureNamesCSignAndTheTokensAnswer) {
  auto signer = Pkcs11KeySigner::Generate(token_, KeyAlgorithm::kEccP256, {"gone", std::nullopt}, false);
  ASSERT_TRUE(signer) << signer.error().ToString();
  auto key = MakeSignerPrivateKey(library_->get(), *signer);
  ASSERT_TRUE(key);
  ASSERT_TRUE(Pkcs11KeySigner::Generate(token_, KeyAlgorithm::kEccP256, {"gone", std::nullopt}, true))
      << "replacing destroys the key the signer holds";
  ossl::MdCtx sign(EVP_MD_CTX_new());
  ASSERT_EQ(
      EVP_DigestSignInit_ex(sign.get(), nullptr, "SHA256", library_->get(), nullptr, key->get(), nullptr), 1);
  unsigned char signature[128];
  std::size_t length = sizeof signature;
  ERR_clear_error();
  EXPECT_EQ(EVP_DigestSign(sign.get(), signature, &length, reinterpret_cast<const unsigned char*>("x"), 1),
            0);
  unsigned long code = ERR_peek_error();
  EXPECT_STREQ(ERR_lib_error_string(code), "idevid-signer");
  EXPECT_STREQ(ERR_reason_error_string(code), "C_Sign failed");
  auto failure = TakeSignerFailure();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->domain(), ErrorDomain::kPkcs11);
  EXPECT_THAT(failure->message(), HasSubstr("CKR_OBJECT_HANDLE_INVALID: the key is no longer in the token"));
  EXPECT_EQ((*signer)->failures(), 1u);
  ERR_clear_error();
}

}  // namespace
}  // namespace idevid
