// TPM structures on the wire without a TPM: marshalling, names, KDFa, signatures, MakeCredential,
// each checked against the definition computed here independently.
#include "core/tpm_wire.h"

#include <cstring>
#include <string>

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/byte_text.h"
#include "core/openssl_error.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_keys.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Known answers written as hex (DecodeHex is strict: a typo fails the test).
Bytes FromHex(std::string_view hex) {
  auto bytes = DecodeHex(hex);
  EXPECT_TRUE(bytes.has_value()) << hex;
  return bytes.value_or(Bytes{});
}

Bytes Concat(std::initializer_list<std::span<const std::uint8_t>> parts) {
  Bytes out;
  for (auto part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

std::span<const std::uint8_t> AsBytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

Bytes Be32(std::uint32_t value) {
  return {static_cast<std::uint8_t>(value >> 24), static_cast<std::uint8_t>(value >> 16),
          static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value)};
}

Bytes HmacSha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  Bytes out(32);
  std::size_t length = 0;
  EXPECT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(), data.data(),
                      data.size(), out.data(), out.size(), &length),
            nullptr);
  return out;
}

// KDFa straight from Part 1 §11.4.10.2, one HMAC per block:
// K(i) = HMAC(key, [i]32 || label || 0x00 || contextU || contextV || [bits]32), i = 1, 2, ...
Bytes KdfaByDefinition(std::span<const std::uint8_t> key, std::string_view label,
                       std::span<const std::uint8_t> u, std::span<const std::uint8_t> v, std::uint32_t bits) {
  Bytes out;
  const Bytes zero = {0};
  for (std::uint32_t i = 1; out.size() < bits / 8; ++i) {
    Bytes block = HmacSha256(key, Concat({Be32(i), AsBytes(label), zero, u, v, Be32(bits)}));
    out.insert(out.end(), block.begin(), block.end());
  }
  out.resize(bits / 8);
  return out;
}

// The IDevID RSA template marshalled by hand from Part 2 (§12.2.4 TPMT_PUBLIC): type, nameAlg,
// objectAttributes, authPolicy, TPMS_RSA_PARMS (symmetric NULL, scheme NULL, keyBits, exponent),
// unique. Its SHA-256 was computed apart (Python hashlib) for the name below.
const Bytes kIdevidRsaTemplateWire =
    Concat({FromHex("0001000b000400f20020ad6b3a2284fd698a0710bf5cc1b9bdf15e2532e3f601fa4b93a6a8fa8de579ea"
                    "001000100800000000000006"),
            AsBytes("IDEVID")});
constexpr std::string_view kIdevidRsaTemplateName =
    "000bc6c5281791b49ffcc29b7ca83bb3d7c73f6a6b8bfd2a0080457662c7c64f0ac5";

// The RSA IDevID template with the spec's authPolicy in place of ours.
TPMT_PUBLIC IdevidRsaWithSpecPolicy() {
  TPMT_PUBLIC pub = IdevidKeyTemplate(KeyAlgorithm::kRsa2048).publicArea;
  Bytes spec_policy = FromHex("ad6b3a2284fd698a0710bf5cc1b9bdf15e2532e3f601fa4b93a6a8fa8de579ea");
  std::copy(spec_policy.begin(), spec_policy.end(), pub.authPolicy.buffer);
  return pub;
}

TEST(TpmWire, PublicAreaMarshalsAsPart2DefinesIt) {
  TPMT_PUBLIC pub = IdevidRsaWithSpecPolicy();
  EXPECT_EQ(MarshalPublic(pub), kIdevidRsaTemplateWire);
  auto back = UnmarshalPublic(kIdevidRsaTemplateWire);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(MarshalPublic(*back), kIdevidRsaTemplateWire);
  EXPECT_EQ(back->objectAttributes, pub.objectAttributes);
}

TEST(TpmWire, ObjectNameIsNameAlgAndTheHashOfThePublicArea) {
  auto name = ObjectName(IdevidRsaWithSpecPolicy());
  ASSERT_THAT(name, IsOk());
  EXPECT_EQ(*name, FromHex(kIdevidRsaTemplateName));
  TPMT_PUBLIC sha1 = IdevidKeyTemplate(KeyAlgorithm::kRsa2048).publicArea;
  sha1.nameAlg = TPM2_ALG_SHA1;
  EXPECT_THAT(ObjectName(sha1), ResultIs(ErrorDomain::kUsage, UsageCode::kUnsupported, HasSubstr("0x4")));
}

TPMS_ATTEST SampleAttest() {
  TPMS_ATTEST attest{};
  attest.magic = TPM2_GENERATED_VALUE;
  attest.type = TPM2_ST_ATTEST_CERTIFY;
  attest.qualifiedSigner.size = 4;
  std::memcpy(attest.qualifiedSigner.name, "\x00\x0b\x01\x02", 4);
  attest.extraData.size = 3;
  std::memcpy(attest.extraData.buffer, "abc", 3);
  attest.clockInfo.clock = 123456;
  attest.clockInfo.safe = TPM2_YES;
  attest.firmwareVersion = 0x2019;
  attest.attested.certify.name.size = 2;
  attest.attested.certify.name.name[0] = 0x40;
  return attest;
}

TPMT_SIGNATURE SampleSignature() {
  TPMT_SIGNATURE sig{};
  sig.sigAlg = TPM2_ALG_ECDSA;
  sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
  sig.signature.ecdsa.signatureR.size = 32;
  sig.signature.ecdsa.signatureS.size = 32;
  std::memset(sig.signature.ecdsa.signatureR.buffer, 0x11, 32);
  std::memset(sig.signature.ecdsa.signatureS.buffer, 0x22, 32);
  return sig;
}

TEST(TpmWire, AttestAndSignatureRoundTrip) {
  Bytes attest = MarshalAttest(SampleAttest());
  ASSERT_FALSE(attest.empty());
  auto parsed = UnmarshalAttest(attest);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->magic, TPM2_GENERATED_VALUE);
  EXPECT_EQ(parsed->type, TPM2_ST_ATTEST_CERTIFY);
  EXPECT_EQ(parsed->clockInfo.clock, 123456u);
  EXPECT_EQ(MarshalAttest(*parsed), attest);

  Bytes sig = MarshalSignature(SampleSignature());
  // sigAlg, hash, then two TPM2B of 32 bytes (Part 2 §11.3.5).
  ASSERT_EQ(sig.size(), 2u + 2u + 2u + 32u + 2u + 32u);
  EXPECT_EQ(Bytes(sig.begin(), sig.begin() + 6), FromHex("0018000b0020"));
  auto parsed_sig = UnmarshalSignature(sig);
  ASSERT_THAT(parsed_sig, IsOk());
  EXPECT_EQ(MarshalSignature(*parsed_sig), sig);
}

TEST(TpmWire, TruncatedInputIsRefusedNamingTheStructure) {
  Bytes pub = kIdevidRsaTemplateWire;
  pub.pop_back();
  EXPECT_THAT(UnmarshalPublic(pub), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                                             StartsWith("59 bytes are not a TPMT_PUBLIC")));
  Bytes attest = MarshalAttest(SampleAttest());
  attest.resize(attest.size() / 2);
  EXPECT_THAT(UnmarshalAttest(attest),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("not a TPMS_ATTEST")));
  EXPECT_THAT(UnmarshalSignature({}), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                                               HasSubstr("0 bytes are not a TPMT_SIGNATURE")));
}

TEST(TpmWire, TrailingBytesAreRefused) {
  Bytes pub = kIdevidRsaTemplateWire;
  pub.push_back(0);
  EXPECT_THAT(UnmarshalPublic(pub),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                       StartsWith("1 bytes left over after the TPMT_PUBLIC of 60 bytes")));
  Bytes sig = MarshalSignature(SampleSignature());
  sig.insert(sig.end(), {1, 2});
  EXPECT_THAT(UnmarshalSignature(sig),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("2 bytes left over")));
}

TEST(TpmWire, GarbageIsRefused) {
  Bytes garbage(100, 0xff);
  EXPECT_THAT(UnmarshalPublic(garbage),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("TPMT_PUBLIC")));
  EXPECT_THAT(UnmarshalAttest(garbage),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("TPMS_ATTEST")));
  EXPECT_THAT(UnmarshalSignature(garbage),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("TPMT_SIGNATURE")));
  // A TPMS_ATTEST whose magic is right but whose type selects no union member.
  Bytes wrong_type = MarshalAttest(SampleAttest());
  wrong_type[4] = 0x12;
  wrong_type[5] = 0x34;
  EXPECT_THAT(UnmarshalAttest(wrong_type),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("TPMS_ATTEST")));
}

TEST(TpmWire, KdfaIsTheCounterModeHmacOfPart1) {
  Bytes key = FromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  Bytes name = FromHex("000b0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  Bytes v = {9, 8, 7};
  for (std::uint32_t bits : {128u, 256u, 512u, 520u}) {
    auto ours = KdfA(TPM2_ALG_SHA256, key, "STORAGE", name, v, bits);
    ASSERT_THAT(ours, IsOk()) << bits;
    EXPECT_EQ(*ours, KdfaByDefinition(key, "STORAGE", name, v, bits)) << bits;
  }
  auto no_context = KdfA(TPM2_ALG_SHA256, key, "INTEGRITY", {}, {}, 256);
  ASSERT_THAT(no_context, IsOk());
  EXPECT_EQ(*no_context, KdfaByDefinition(key, "INTEGRITY", {}, {}, 256));
  EXPECT_THAT(KdfA(TPM2_ALG_SHA256, key, "STORAGE", {}, {}, 12),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("12 bits")));
}

// An OpenSSL key pair and its public part as a TPMT_PUBLIC, as the TPM would report it.
struct SoftwareKey {
  ossl::PKey key;
  TPMT_PUBLIC pub{};
};

Bytes BnParam(const EVP_PKEY& key, const char* name, int size) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(&key, name, &bn), 1);
  ossl::Bignum owned(bn);
  Bytes out(static_cast<std::size_t>(size));
  EXPECT_EQ(BN_bn2binpad(bn, out.data(), size), size);
  return out;
}

SoftwareKey EccKey() {
  SoftwareKey k{ossl::PKey(EVP_EC_gen("P-256"))};
  k.pub.type = TPM2_ALG_ECC;
  k.pub.nameAlg = TPM2_ALG_SHA256;
  k.pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  k.pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  k.pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  Bytes x = BnParam(*k.key, OSSL_PKEY_PARAM_EC_PUB_X, 32);
  Bytes y = BnParam(*k.key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
  k.pub.unique.ecc.x.size = 32;
  k.pub.unique.ecc.y.size = 32;
  std::memcpy(k.pub.unique.ecc.x.buffer, x.data(), 32);
  std::memcpy(k.pub.unique.ecc.y.buffer, y.data(), 32);
  return k;
}

SoftwareKey RsaKey() {
  SoftwareKey k{ossl::PKey(EVP_RSA_gen(2048))};
  k.pub.type = TPM2_ALG_RSA;
  k.pub.nameAlg = TPM2_ALG_SHA256;
  k.pub.parameters.rsaDetail.keyBits = 2048;
  Bytes n = BnParam(*k.key, OSSL_PKEY_PARAM_RSA_N, 256);
  k.pub.unique.rsa.size = 256;
  std::memcpy(k.pub.unique.rsa.buffer, n.data(), 256);
  return k;
}

Bytes SignSha256(EVP_PKEY& key, std::string_view message, int rsa_padding = 0) {
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, &key), 1);
  if (rsa_padding != 0) EVP_PKEY_CTX_set_rsa_padding(pctx, rsa_padding);
  if (rsa_padding == RSA_PKCS1_PSS_PADDING) EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  std::size_t length = 0;
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &length, AsBytes(message).data(), message.size()), 1);
  Bytes sig(length);
  EXPECT_EQ(EVP_DigestSign(ctx.get(), sig.data(), &length, AsBytes(message).data(), message.size()), 1);
  sig.resize(length);
  return sig;
}

TPMT_SIGNATURE EcdsaSignature(EVP_PKEY& key, std::string_view message) {
  Bytes der = SignSha256(key, message);
  const unsigned char* p = der.data();
  ossl::EcdsaSig parsed(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  TPMT_SIGNATURE sig{};
  sig.sigAlg = TPM2_ALG_ECDSA;
  sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
  sig.signature.ecdsa.signatureR.size = 32;
  sig.signature.ecdsa.signatureS.size = 32;
  BN_bn2binpad(ECDSA_SIG_get0_r(parsed.get()), sig.signature.ecdsa.signatureR.buffer, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(parsed.get()), sig.signature.ecdsa.signatureS.buffer, 32);
  return sig;
}

TPMT_SIGNATURE RsaSignature(EVP_PKEY& key, std::string_view message, TPMI_ALG_SIG_SCHEME scheme) {
  Bytes raw = SignSha256(key, message, scheme == TPM2_ALG_RSAPSS ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING);
  TPMT_SIGNATURE sig{};
  sig.sigAlg = scheme;
  sig.signature.rsassa.hash = TPM2_ALG_SHA256;
  sig.signature.rsassa.sig.size = static_cast<UINT16>(raw.size());
  std::memcpy(sig.signature.rsassa.sig.buffer, raw.data(), raw.size());
  return sig;
}

TEST(TpmWire, EcdsaSignatureVerifiesAndAFlippedByteDoesNot) {
  SoftwareKey k = EccKey();
  TPMT_SIGNATURE sig = EcdsaSignature(*k.key, "attested bytes");
  EXPECT_THAT(VerifyTpmSignature(k.pub, AsBytes("attested bytes"), sig), IsOk());
  EXPECT_THAT(VerifyTpmSignature(k.pub, AsBytes("attested bytez"), sig),
              ResultIs(ErrorDomain::kVerify, X509_V_ERR_CERT_SIGNATURE_FAILURE,
                       StartsWith("the TPM signature does not verify: not a SHA256 signature")));
  sig.signature.ecdsa.signatureS.buffer[7] ^= 0x01;
  EXPECT_THAT(
      VerifyTpmSignature(k.pub, AsBytes("attested bytes"), sig),
      ResultIs(ErrorDomain::kVerify, X509_V_ERR_CERT_SIGNATURE_FAILURE, HasSubstr("does not verify")));
}

TEST(TpmWire, RsassaAndRsapssSignaturesVerify) {
  SoftwareKey k = RsaKey();
  TPMT_SIGNATURE pkcs1 = RsaSignature(*k.key, "hello", TPM2_ALG_RSASSA);
  TPMT_SIGNATURE pss = RsaSignature(*k.key, "hello", TPM2_ALG_RSAPSS);
  EXPECT_THAT(VerifyTpmSignature(k.pub, AsBytes("hello"), pkcs1), IsOk());
  EXPECT_THAT(VerifyTpmSignature(k.pub, AsBytes("hello"), pss), IsOk());
  // The same bytes under the other RSA scheme do not verify.
  pss.sigAlg = TPM2_ALG_RSASSA;
  EXPECT_THAT(
      VerifyTpmSignature(k.pub, AsBytes("hello"), pss),
      ResultIs(ErrorDomain::kVerify, X509_V_ERR_CERT_SIGNATURE_FAILURE, HasSubstr("does not verify")));
  pkcs1.signature.rsassa.sig.buffer[100] ^= 0x80;
  EXPECT_THAT(
      VerifyTpmSignature(k.pub, AsBytes("hello"), pkcs1),
      ResultIs(ErrorDomain::kVerify, X509_V_ERR_CERT_SIGNATURE_FAILURE, HasSubstr("does not verify")));
}

TEST(TpmWire, ASchemeThatDoesNotFitTheKeyIsASignatureFailure) {
  SoftwareKey ecc = EccKey();
  SoftwareKey rsa = RsaKey();
  EXPECT_THAT(VerifyTpmSignature(ecc.pub, AsBytes("m"), RsaSignature(*rsa.key, "m", TPM2_ALG_RSASSA)),
              ResultIs(ErrorDomain::kVerify, X509_V_ERR_CERT_SIGNATURE_FAILURE,
                       HasSubstr("an RSA signature by a key that is not RSA")));
  EXPECT_THAT(VerifyTpmSignature(rsa.pub, AsBytes("m"), EcdsaSignature(*ecc.key, "m")),
              ResultIs(ErrorDomain::kVerify, X509_V_ERR_CERT_SIGNATURE_FAILURE,
                       HasSubstr("an ECDSA signature by a key that is not ECC")));
  TPMT_SIGNATURE hmac{};
  hmac.sigAlg = TPM2_ALG_HMAC;
  EXPECT_THAT(VerifyTpmSignature(ecc.pub, AsBytes("m"), hmac),
              ResultIs(ErrorDomain::kUsage, UsageCode::kUnsupported, HasSubstr("0x5")));
}

// The seed back from encrypted_secret with the EK's private key: OAEP-SHA256, label "IDENTITY\0".
Bytes DecryptSeed(EVP_PKEY& ek, const Bytes& encrypted) {
  ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, &ek, nullptr));
  EXPECT_EQ(EVP_PKEY_decrypt_init(ctx.get()), 1);
  EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING);
  EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256());
  EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256());
  EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), OPENSSL_memdup("IDENTITY", 9), 9);
  Bytes seed(256);
  std::size_t length = seed.size();
  EXPECT_EQ(EVP_PKEY_decrypt(ctx.get(), seed.data(), &length, encrypted.data(), encrypted.size()), 1);
  seed.resize(length);
  return seed;
}

Bytes AesCfbDecrypt(const Bytes& key, std::span<const std::uint8_t> cipher) {
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  Bytes iv(16, 0);
  Bytes out(cipher.size());
  int length = 0;
  EXPECT_EQ(EVP_DecryptInit_ex(ctx.get(), EVP_aes_128_cfb128(), nullptr, key.data(), iv.data()), 1);
  EXPECT_EQ(EVP_DecryptUpdate(ctx.get(), out.data(), &length, cipher.data(), static_cast<int>(cipher.size())),
            1);
  out.resize(static_cast<std::size_t>(length));
  return out;
}

TEST(TpmWire, MakeCredentialFollowsPart1CredentialProtection) {
  SoftwareKey ek = RsaKey();
  Bytes name = FromHex(kIdevidRsaTemplateName);
  Bytes secret = FromHex("00112233445566778899aabbccddeeff");
  auto credential = MakeCredential(*ek.key, name, secret);
  ASSERT_THAT(credential, IsOk());
  EXPECT_EQ(credential->encrypted_secret.size(), 256u);
  Bytes seed = DecryptSeed(*ek.key, credential->encrypted_secret);
  ASSERT_EQ(seed.size(), 32u);
  // blob = TPM2B integrityHMAC (32 bytes) || encIdentity (TPM2B_DIGEST of the secret, encrypted).
  const Bytes& blob = credential->blob;
  ASSERT_EQ(blob.size(), 2u + 32u + 2u + secret.size());
  EXPECT_EQ(Bytes(blob.begin(), blob.begin() + 2), FromHex("0020"));
  Bytes integrity(blob.begin() + 2, blob.begin() + 34);
  Bytes enc_identity(blob.begin() + 34, blob.end());
  Bytes hmac_key = KdfaByDefinition(seed, "INTEGRITY", {}, {}, 256);
  EXPECT_EQ(integrity, HmacSha256(hmac_key, Concat({enc_identity, name})));
  Bytes sym_key = KdfaByDefinition(seed, "STORAGE", name, {}, 128);
  EXPECT_EQ(AesCfbDecrypt(sym_key, enc_identity), Concat({FromHex("0010"), secret}));
}

TEST(TpmWire, MakeCredentialRefusesWhatItCannotProtect) {
  SoftwareKey ecc = EccKey();
  SoftwareKey rsa = RsaKey();
  Bytes name = FromHex(kIdevidRsaTemplateName);
  EXPECT_THAT(MakeCredential(*ecc.key, name, Bytes(16, 1)),
              ResultIs(ErrorDomain::kUsage, UsageCode::kUnsupported, HasSubstr("takes an RSA-2048 EK")));
  ossl::PKey rsa3072(EVP_RSA_gen(3072));
  EXPECT_THAT(MakeCredential(*rsa3072, name, Bytes(16, 1)),
              ResultIs(ErrorDomain::kUsage, UsageCode::kUnsupported, HasSubstr("not a 3072-bit")));
  EXPECT_THAT(
      MakeCredential(*rsa.key, name, Bytes(65, 1)),
      ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("at most 64 bytes, not 65")));
  EXPECT_THAT(MakeCredential(*rsa.key, name, Bytes(64, 1)), IsOk());
}

}  // namespace
}  // namespace idevid
