// The idevid-signer provider with a TPM key against a real swtpm (behind tpm2-abrmd): signatures OpenSSL
// verifies, and client-authenticated TLS 1.3 and 1.2 handshakes whose CertificateVerify the
// TPM signed.
#include "core/signer_provider.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/openssl_error.h"
#include "core/tpm_key_signer.h"
#include "core/tpm_keys.h"
#include "core/x509_build.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

constexpr std::uint32_t kHandle = 0x81020000;

using ossl::Ssl;
using ossl::SslCtx;

// A SHA-256 digest-sign context for `key` in `libctx`, and the signature length it announces for
// `message` in `length`; empty (with the failure recorded) when OpenSSL refuses.
ossl::MdCtx StartSigning(OSSL_LIB_CTX* libctx, EVP_PKEY* key, const std::string& message,
                         std::size_t& length) {
  ossl::MdCtx sign(EVP_MD_CTX_new());
  if (EVP_DigestSignInit_ex(sign.get(), nullptr, "SHA256", libctx, nullptr, key, nullptr) != 1 ||
      EVP_DigestSign(sign.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    ADD_FAILURE() << OpenSslError("starting a signature").message();
    return {};
  }
  return sign;
}

class TpmProviderTest : public testing::TpmTestBase, public ::testing::Test {
 protected:
  void SetUp() override { StartTpm(testing::TpmAccess::kAbrmd); }
  void TearDown() override {
    signer_.reset();
    StopTpm();
  }
  void PersistKey(KeyAlgorithm alg) {
    auto key = CreatePrimary(tpm(), ESYS_TR_RH_ENDORSEMENT, IdevidKeyTemplate(alg));
    ASSERT_TRUE(key) << key.error().ToString();
    ASSERT_TRUE(idevid::PersistKey(tpm(), key->object, kHandle));
    auto signer = TpmKeySigner::Open(swtpm().tcti(), kHandle);
    ASSERT_TRUE(signer) << signer.error().ToString();
    signer_ = *signer;
  }
  std::shared_ptr<TpmKeySigner> signer_;
};

TEST_F(TpmProviderTest, SignaturesMadeThroughTheProviderVerifyWithThePublicKey) {
  PersistKey(KeyAlgorithm::kEccP256);
  auto library = SignerProviderLibrary::Create();
  ASSERT_TRUE(library) << library.error().ToString();
  OSSL_LIB_CTX* libctx = library->get();
  auto key = MakeSignerPrivateKey(libctx, signer_);
  ASSERT_TRUE(key) << key.error().ToString();
  const std::string message = "client hello transcript";
  std::size_t length = 0;
  ossl::MdCtx sign = StartSigning(libctx, key->get(), message, length);
  ASSERT_TRUE(sign && length > 0);
  Bytes signature(length);
  ASSERT_EQ(EVP_DigestSign(sign.get(), signature.data(), &length,
                           reinterpret_cast<const unsigned char*>(message.data()), message.size()),
            1)
      << OpenSslError("sign").message();
  signature.resize(length);
  EXPECT_EQ(signer_->signatures(), 1u);
  ossl::MdCtx verify(EVP_MD_CTX_new());
  ASSERT_EQ(EVP_DigestVerifyInit(verify.get(), nullptr, EVP_sha256(), nullptr,
                                 const_cast<EVP_PKEY*>(&signer_->public_key())),
            1);
  EXPECT_EQ(EVP_DigestVerify(verify.get(), signature.data(), signature.size(),
                             reinterpret_cast<const unsigned char*>(message.data()), message.size()),
            1);
}

// A signature the TPM does not make (its key evicted under the signer) leaves an OpenSSL error
// that names our reason and our provider, as ERR_print_errors prints it.
TEST_F(TpmProviderTest, AFailedSignatureLeavesAnOpenSslErrorNamingOurReason) {
  PersistKey(KeyAlgorithm::kEccP256);
  auto library = SignerProviderLibrary::Create();
  ASSERT_TRUE(library) << library.error().ToString();
  auto key = MakeSignerPrivateKey(library->get(), signer_);
  ASSERT_TRUE(key) << key.error().ToString();
  ASSERT_TRUE(UnpersistKey(tpm(), kHandle));
  const std::string message = "client hello transcript";
  std::size_t length = 0;
  ossl::MdCtx sign = StartSigning(library->get(), key->get(), message, length);
  ASSERT_TRUE(sign && length > 0);
  Bytes signature(length);
  ERR_clear_error();
  EXPECT_EQ(EVP_DigestSign(sign.get(), signature.data(), &length,
                           reinterpret_cast<const unsigned char*>(message.data()), message.size()),
            0);
  unsigned long code = ERR_peek_error();
  EXPECT_STREQ(ERR_lib_error_string(code), "idevid-signer");
  EXPECT_STREQ(ERR_reason_error_string(code), "TPM2_Sign failed");
  ossl::Bio out(BIO_new(BIO_s_mem()));
  ERR_print_errors(out.get());
  char* data = nullptr;
  long size = BIO_get_mem_data(out.get(), &data);
  std::string printed(data, static_cast<std::size_t>(size));
  EXPECT_THAT(printed, ::testing::HasSubstr(":idevid-signer:"));
  EXPECT_THAT(printed, ::testing::HasSubstr("the handle or NV index does not exist"))
      << "the TPM's answer is the detail";
  EXPECT_THAT(printed, ::testing::Not(::testing::HasSubstr("reason(")));
}

TEST_F(TpmProviderTest, SwtpmSignsRsaPssWithTheSaltTls13Needs) {
  PersistKey(KeyAlgorithm::kRsa2048);
  auto pss = signer_->RsaPssSaltIsDigestLength();
  ASSERT_TRUE(pss) << pss.error().ToString();
  EXPECT_TRUE(*pss);
}

// A CA, a server certificate and a client certificate for the TPM key.
struct Pki {
  ossl::PKey ca_key, server_key;
  ossl::Cert ca, server, client;
};

Pki MakePki(const EVP_PKEY& tpm_public) {
  Pki pki;
  pki.ca_key = *GenerateKey(KeyAlgorithm::kEccP256);
  pki.ca = *IssueCertificate(
      {.subject = {{"CN", "test CA"}},
       .not_after = "20991231235959Z",
       .extensions = {{"basicConstraints", "critical,CA:TRUE"}, {"keyUsage", "critical,keyCertSign"}}},
      *pki.ca_key, nullptr, *pki.ca_key);
  pki.server_key = *GenerateKey(KeyAlgorithm::kEccP256);
  pki.server = *IssueCertificate({.subject = {{"CN", "cloud"}}, .not_after = "20991231235959Z"},
                                 *pki.server_key, pki.ca.get(), *pki.ca_key);
  pki.client = *IssueCertificate({.subject = {{"CN", "SRX4300"}, {"serialNumber", "CW1"}},
                                  .not_after = "99991231235959Z",
                                  .extensions = {{"keyUsage", "critical,digitalSignature"}}},
                                 const_cast<EVP_PKEY&>(tpm_public), pki.ca.get(), *pki.ca_key);
  return pki;
}

SslCtx Context(OSSL_LIB_CTX* libctx, const SSL_METHOD* method, int version, X509* cert, EVP_PKEY* key,
               X509* trusted) {
  SslCtx ctx(SSL_CTX_new_ex(libctx, nullptr, method));
  SSL_CTX_set_min_proto_version(ctx.get(), version);
  SSL_CTX_set_max_proto_version(ctx.get(), version);
  EXPECT_EQ(SSL_CTX_use_certificate(ctx.get(), cert), 1) << OpenSslError("cert").message();
  EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx.get(), key), 1) << OpenSslError("key").message();
  X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), trusted);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

struct HandshakeCase {
  int version;
  KeyAlgorithm key;
  const char* scheme;        // the client's signature as OpenSSL names its type
  const char* sigalgs = "";  // the client's offer, when not OpenSSL's default
};

class TpmHandshakeTest : public TpmProviderTest, public ::testing::WithParamInterface<HandshakeCase> {};

TEST_P(TpmHandshakeTest, ClientAuthenticatesWithTheTpmKey) {
  PersistKey(GetParam().key);
  auto library = SignerProviderLibrary::Create();
  ASSERT_TRUE(library) << library.error().ToString();
  OSSL_LIB_CTX* libctx = library->get();
  auto key = MakeSignerPrivateKey(libctx, signer_);
  ASSERT_TRUE(key) << key.error().ToString();
  Pki pki = MakePki(signer_->public_key());
  int version = GetParam().version;
  SslCtx server_ctx =
      Context(nullptr, TLS_server_method(), version, pki.server.get(), pki.server_key.get(), pki.ca.get());
  SslCtx client_ctx =
      Context(libctx, TLS_client_method(), version, pki.client.get(), key->get(), pki.ca.get());
  if (*GetParam().sigalgs != '\0') SSL_CTX_set1_client_sigalgs_list(client_ctx.get(), GetParam().sigalgs);
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  Ssl server(SSL_new(server_ctx.get())), client(SSL_new(client_ctx.get()));
  SSL_set_fd(server.get(), fds[0]);
  SSL_set_fd(client.get(), fds[1]);
  int server_result = 0;
  std::thread server_thread([&] {
    server_result = SSL_accept(server.get());
    if (server_result == 1) SSL_write(server.get(), "ok", 2);  // TLS 1.3 tickets, then data
  });
  int client_result = SSL_connect(client.get());
  std::string client_error = client_result == 1 ? "" : OpenSslError("client").message();
  char reply[2] = {};
  if (client_result == 1) SSL_read(client.get(), reply, 2);
  server_thread.join();
  ::close(fds[0]);
  ::close(fds[1]);
  ASSERT_EQ(client_result, 1) << client_error;
  ASSERT_EQ(server_result, 1);
  EXPECT_EQ(SSL_version(client.get()), version);
  int type = NID_undef;
  ASSERT_EQ(SSL_get_signature_type_nid(client.get(), &type), 1);
  EXPECT_STREQ(OBJ_nid2sn(type), GetParam().scheme);
  ossl::Cert seen(SSL_get1_peer_certificate(server.get()));
  ASSERT_TRUE(seen);
  EXPECT_EQ(X509_cmp(seen.get(), pki.client.get()), 0);
  EXPECT_EQ(SSL_get_verify_result(server.get()), X509_V_OK);
  // A PSS signature is preceded once by the probe of the TPM's PSS salt.
  std::uint64_t probe = std::string(GetParam().scheme) == "RSASSA-PSS" ? 1 : 0;
  EXPECT_EQ(signer_->signatures(), 1u + probe) << "the TPM signs the CertificateVerify, once";
}

INSTANTIATE_TEST_SUITE_P(
    Versions, TpmHandshakeTest,
    ::testing::Values(HandshakeCase{TLS1_3_VERSION, KeyAlgorithm::kEccP256, "id-ecPublicKey"},
                      HandshakeCase{TLS1_2_VERSION, KeyAlgorithm::kEccP256, "id-ecPublicKey"},
                      HandshakeCase{TLS1_3_VERSION, KeyAlgorithm::kRsa2048, "RSASSA-PSS"},
                      HandshakeCase{TLS1_2_VERSION, KeyAlgorithm::kRsa2048, "RSASSA-PSS"},
                      HandshakeCase{TLS1_2_VERSION, KeyAlgorithm::kRsa2048, "rsaEncryption", "RSA+SHA256"}),
    [](const auto& test) {
      return std::string(test.param.version == TLS1_3_VERSION ? "Tls13" : "Tls12") +
             (test.param.key == KeyAlgorithm::kEccP256 ? "Ecc" : "Rsa") +
             (*test.param.sigalgs != '\0' ? "Pkcs1" : "");
    });

}  // namespace
}  // namespace idevid
