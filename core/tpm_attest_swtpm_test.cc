// TPM2_Certify, the EK and credential activation on a manufactured swtpm, checked against the
// TPM's own answers, its EK certificate and tpm2-tools.
#include "core/tpm_attest.h"

#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_capability.h"
#include "core/tpm_nv.h"
#include "core/tss_error.h"
#include "core/x509.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultInDomain;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr TPM2_HANDLE kEkCertificateIndex = 0x01C00002;  // TCG EK Credential Profile 2.3 §2.2.1.4
constexpr TPM2_HANDLE kEkHandle = 0x81010009;
constexpr TPM2_HANDLE kObjectHandle = 0x81020010;
constexpr TPM2_HANDLE kIakHandle = 0x81020011;

void ExpectTpmRc(const Error& error, TSS2_RC expected) {
  EXPECT_TRUE(IsTpmRc(error, expected)) << error.ToString();
}

// A signing key that TPM2_Certify and TPM2_ActivateCredential can authorize with its empty
// password: the IDevID template without adminWithPolicy and its policy.
TPM2B_PUBLIC CertifiableKeyTemplate(KeyAlgorithm alg) {
  TPM2B_PUBLIC t = IdevidKeyTemplate(alg);
  t.publicArea.objectAttributes &= ~TPMA_OBJECT_ADMINWITHPOLICY;
  t.publicArea.authPolicy.size = 0;
  return t;
}

// A restricted decryption key (a storage parent) with a usable password: it cannot sign.
TPM2B_PUBLIC StorageKeyTemplate() {
  TPM2B_PUBLIC t = EkRsaTemplate();
  t.publicArea.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
  t.publicArea.objectAttributes &= ~TPMA_OBJECT_ADMINWITHPOLICY;
  t.publicArea.authPolicy.size = 0;
  return t;
}

Bytes ToBytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

std::optional<Bytes> FromHexForTest(std::string_view hex) {
  Bytes out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

void WriteBe(Bytes& out, std::uint32_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

// tpm2-tools' credential file: magic 0xBADCC0DE, version 1 (4 bytes each, big-endian), then the
// marshalled TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
Bytes ToolsCredentialFile(const Credential& credential) {
  Bytes out;
  WriteBe(out, 0xBADCC0DE, 4);
  WriteBe(out, 1, 4);
  WriteBe(out, static_cast<std::uint32_t>(credential.blob.size()), 2);
  out.insert(out.end(), credential.blob.begin(), credential.blob.end());
  WriteBe(out, static_cast<std::uint32_t>(credential.encrypted_secret.size()), 2);
  out.insert(out.end(), credential.encrypted_secret.begin(), credential.encrypted_secret.end());
  return out;
}

std::optional<Credential> ParseToolsCredentialFile(const Bytes& file) {
  auto be = [&](std::size_t at, int bytes) {
    std::uint32_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | file[at + static_cast<std::size_t>(i)];
    return v;
  };
  if (file.size() < 12 || be(0, 4) != 0xBADCC0DE || be(4, 4) != 1) return std::nullopt;
  std::size_t blob_size = be(8, 2);
  if (file.size() < 10 + blob_size + 2) return std::nullopt;
  std::size_t secret_at = 10 + blob_size;
  std::size_t secret_size = be(secret_at, 2);
  if (file.size() != secret_at + 2 + secret_size) return std::nullopt;
  return Credential{Bytes(file.begin() + 10, file.begin() + static_cast<long>(secret_at)),
                    Bytes(file.begin() + static_cast<long>(secret_at) + 2, file.end())};
}

class AttestTest : public testing::TpmTestBase, public ::testing::TestWithParam<KeyAlgorithm> {
 protected:
  void SetUp() override { StartTpm(testing::TpmAccess::kDirect, /*manufacture=*/true); }
  void TearDown() override { StopTpm(); }

  PrimaryKey Create(const TPM2B_PUBLIC& key_template) {
    auto key = CreatePrimary(tpm(), ESYS_TR_RH_ENDORSEMENT, key_template);
    EXPECT_THAT(key, IsOk());
    return std::move(*key);
  }
  PrimaryKey Ek() {
    auto ek = CreateEk(tpm());
    EXPECT_THAT(ek, IsOk());
    return std::move(*ek);
  }
  Bytes NameOf(const PrimaryKey& key) {
    auto name = ObjectName(key.public_area.publicArea);
    EXPECT_THAT(name, IsOk());
    return name.value_or(Bytes{});
  }
  // The EK certificate's public key, as the CA holds it.
  ossl::PKey EkCertificateKey() {
    auto der = NvRead(tpm(), kEkCertificateIndex);
    EXPECT_THAT(der, IsOk());
    auto cert = ParseCertificate(*der);
    EXPECT_THAT(cert, IsOk());
    EVP_PKEY* key = X509_get_pubkey(cert->get());
    EXPECT_NE(key, nullptr);
    return ossl::PKey(key);
  }
  // Creates and persists the EK, a certifiable key of GetParam() and the IAK, then drops the
  // transients, so that tools can reach them.
  void PersistForTools() {
    PrimaryKey ek = Ek();
    ASSERT_THAT(PersistKey(tpm(), ek.object, kEkHandle), IsOk());
    PrimaryKey object = Create(CertifiableKeyTemplate(GetParam()));
    ASSERT_THAT(PersistKey(tpm(), object.object, kObjectHandle), IsOk());
    object_name_ = NameOf(object);
    PrimaryKey iak = Create(IakKeyTemplate(GetParam()));
    ASSERT_THAT(PersistKey(tpm(), iak.object, kIakHandle), IsOk());
    iak_public_ = iak.public_area.publicArea;
  }
  EsysReference Persistent(TPM2_HANDLE handle) {
    auto key = ReferencePersistentKey(tpm(), handle);
    EXPECT_THAT(key, IsOk());
    return std::move(*key);
  }
  std::string Path(std::string_view file) { return (dir() / file).string(); }

  Bytes object_name_;
  TPMT_PUBLIC iak_public_{};
};

TEST_P(AttestTest, IakFromTheTemplateIsARestrictedSigningKey) {
  PrimaryKey iak = Create(IakKeyTemplate(GetParam()));
  auto pub = ReadPublic(tpm(), iak.object.handle());
  ASSERT_THAT(pub, IsOk());
  TPMA_OBJECT attributes = pub->publicArea.objectAttributes;
  EXPECT_NE(attributes & TPMA_OBJECT_RESTRICTED, 0u);
  EXPECT_NE(attributes & TPMA_OBJECT_SIGN_ENCRYPT, 0u);
  EXPECT_EQ(attributes & TPMA_OBJECT_DECRYPT, 0u);
  EXPECT_EQ(attributes, IakKeyTemplate(GetParam()).publicArea.objectAttributes);
  // Our admin policy: PolicyOR(PolicyCommandCode(Certify), PolicyCommandCode(ActivateCredential)),
  // its digest computed apart (Python hashlib) from TPM 2.0 Part 3 §23.
  const TPM2B_DIGEST& policy = pub->publicArea.authPolicy;
  EXPECT_EQ(Hex(Bytes(policy.buffer, policy.buffer + policy.size)),
            "beca03ea8b9ed2abddcfd231d039e20df78246ebe68397cbc42e62990e8dfc39");
  // A restricted key signs with its own scheme only (Part 1 §25.2.2).
  if (GetParam() == KeyAlgorithm::kRsa2048) {
    EXPECT_EQ(pub->publicArea.parameters.rsaDetail.scheme.scheme, TPM2_ALG_RSASSA);
  } else {
    EXPECT_EQ(pub->publicArea.parameters.eccDetail.scheme.scheme, TPM2_ALG_ECDSA);
  }
}

TEST_P(AttestTest, CertifyByTheIakVerifiesAndNamesTheObject) {
  PrimaryKey iak = Create(IakKeyTemplate(GetParam()));
  PrimaryKey object = Create(CertifiableKeyTemplate(GetParam()));
  Bytes qualifying = ToBytes("the CA's nonce 0123456789");
  auto attestation = Certify(tpm(), object.object.handle(), iak.object.handle(), qualifying);
  ASSERT_THAT(attestation, IsOk());
  auto signature = UnmarshalSignature(attestation->signature);
  ASSERT_THAT(signature, IsOk());
  EXPECT_THAT(VerifyTpmSignature(iak.public_area.publicArea, attestation->attest, *signature), IsOk());
  auto attest = UnmarshalAttest(attestation->attest);
  ASSERT_THAT(attest, IsOk());
  EXPECT_EQ(attest->magic, TPM2_GENERATED_VALUE);
  EXPECT_EQ(attest->type, TPM2_ST_ATTEST_CERTIFY);
  EXPECT_EQ(Bytes(attest->extraData.buffer, attest->extraData.buffer + attest->extraData.size), qualifying);
  const TPM2B_NAME& certified = attest->attested.certify.name;
  EXPECT_EQ(Bytes(certified.name, certified.name + certified.size), NameOf(object));
  // The IAK's signature over other bytes does not verify.
  Bytes tampered = attestation->attest;
  tampered.back() ^= 0x01;
  EXPECT_THAT(
      VerifyTpmSignature(iak.public_area.publicArea, tampered, *signature),
      ResultIs(ErrorDomain::kVerify, X509_V_ERR_CERT_SIGNATURE_FAILURE, HasSubstr("does not verify")));
}

TEST_P(AttestTest, AKeyWithoutItsOwnSchemeCertifiesInTheDefaultOne) {
  // The RSA IDevID has scheme NULL: Certify asks for RSASSA-SHA256; the ECC one signs ECDSA.
  PrimaryKey signer = Create(CertifiableKeyTemplate(GetParam()));
  auto attestation = Certify(tpm(), signer.object.handle(), signer.object.handle(), {});
  ASSERT_THAT(attestation, IsOk());
  auto signature = UnmarshalSignature(attestation->signature);
  ASSERT_THAT(signature, IsOk());
  EXPECT_EQ(signature->sigAlg, GetParam() == KeyAlgorithm::kRsa2048 ? TPM2_ALG_RSASSA : TPM2_ALG_ECDSA);
  EXPECT_THAT(VerifyTpmSignature(signer.public_area.publicArea, attestation->attest, *signature), IsOk());
}

TEST_P(AttestTest, CertifyRefusesOversizeQualifyingDataAndASignerThatCannotSign) {
  PrimaryKey object = Create(CertifiableKeyTemplate(GetParam()));
  EXPECT_THAT(Certify(tpm(), object.object.handle(), object.object.handle(), Bytes(65, 1)),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("65 bytes")));
  PrimaryKey storage = Create(StorageKeyTemplate());
  auto by_storage_key = Certify(tpm(), object.object.handle(), storage.object.handle(), {});
  ASSERT_THAT(by_storage_key, ResultInDomain(ErrorDomain::kTss, StartsWith("TPM2_Certify failed")));
  ExpectTpmRc(by_storage_key.error(), TPM2_RC_KEY);
}

// The templates' adminWithPolicy: TPM2_Certify of the IDevID goes through our admin policy.
TEST_P(AttestTest, TheIdevidIsCertifiedThroughItsAdminPolicy) {
  PrimaryKey iak = Create(IakKeyTemplate(GetParam()));
  PrimaryKey idevid = Create(IdevidKeyTemplate(GetParam()));
  EXPECT_THAT(Certify(tpm(), idevid.object.handle(), iak.object.handle(), Bytes(32, 7)), IsOk());
  EXPECT_THAT(ReadTpmProperty(tpm(), TPM2_PT_HR_LOADED), ::testing::Optional(0u))
      << "the admin policy session outlived the certify";
}

// A key whose admin policy is not ours (here the spec's IDevID digest) cannot be certified with a
// password, and the error says why.
TEST_P(AttestTest, AForeignAdminPolicyIsRefusedWithTheReason) {
  PrimaryKey iak = Create(IakKeyTemplate(GetParam()));
  TPM2B_PUBLIC foreign = IdevidKeyTemplate(GetParam());
  Bytes spec = *FromHexForTest("ad6b3a2284fd698a0710bf5cc1b9bdf15e2532e3f601fa4b93a6a8fa8de579ea");
  std::copy(spec.begin(), spec.end(), foreign.publicArea.authPolicy.buffer);
  PrimaryKey idevid = Create(foreign);
  auto attestation = Certify(tpm(), idevid.object.handle(), iak.object.handle(), {});
  ASSERT_THAT(attestation, ResultInDomain(ErrorDomain::kTss, StartsWith("TPM2_Certify failed: the certified "
                                                                        "object has adminWithPolicy")));
  ExpectTpmRc(attestation.error(), TPM2_RC_AUTH_TYPE);
}

TEST_P(AttestTest, CreateEkGivesTheKeyOfTheEkCertificate) {
  PrimaryKey ek = Ek();
  auto ours = PublicKeyFromTpm(ek.public_area.publicArea);
  ASSERT_THAT(ours, IsOk());
  ossl::PKey certified = EkCertificateKey();
  EXPECT_EQ(*PublicKeyDer(**ours), *PublicKeyDer(*certified));
  EXPECT_EQ(ek.public_area.publicArea.objectAttributes, EkRsaTemplate().publicArea.objectAttributes);
}

TEST_P(AttestTest, MadeCredentialIsActivatedForTheNamedObject) {
  PrimaryKey ek = Ek();
  PrimaryKey object = Create(CertifiableKeyTemplate(GetParam()));
  Bytes secret = ToBytes("a 32-byte credential secret!!!!!");
  auto credential = MakeCredential(*EkCertificateKey(), NameOf(object), secret);
  ASSERT_THAT(credential, IsOk());
  auto activated = ActivateCredential(tpm(), object.object.handle(), ek.object.handle(), *credential);
  ASSERT_THAT(activated, IsOk());
  EXPECT_EQ(*activated, secret);
  EXPECT_THAT(ReadTpmProperty(tpm(), TPM2_PT_HR_LOADED), ::testing::Optional(0u))
      << "the EK's policy session outlived the activation";
}

TEST_P(AttestTest, ACredentialForAnotherNameFailsWithIntegrity) {
  PrimaryKey ek = Ek();
  PrimaryKey object = Create(CertifiableKeyTemplate(GetParam()));
  auto other_name = ObjectName(IakKeyTemplate(GetParam()).publicArea);
  ASSERT_THAT(other_name, IsOk());
  auto credential = MakeCredential(*EkCertificateKey(), *other_name, ToBytes("secret"));
  ASSERT_THAT(credential, IsOk());
  auto activated = ActivateCredential(tpm(), object.object.handle(), ek.object.handle(), *credential);
  ASSERT_THAT(activated, ResultInDomain(ErrorDomain::kTss, StartsWith("TPM2_ActivateCredential failed")));
  ExpectTpmRc(activated.error(), TPM2_RC_INTEGRITY);
  EXPECT_THAT(ReadTpmProperty(tpm(), TPM2_PT_HR_LOADED), ::testing::Optional(0u))
      << "the EK's policy session outlived the failed activation";
}

TEST_P(AttestTest, ACredentialForAnotherEkFails) {
  PrimaryKey ek = Ek();
  PrimaryKey object = Create(CertifiableKeyTemplate(GetParam()));
  ossl::PKey other_ek(EVP_RSA_gen(2048));
  auto credential = MakeCredential(*other_ek, NameOf(object), ToBytes("secret"));
  ASSERT_THAT(credential, IsOk());
  auto activated = ActivateCredential(tpm(), object.object.handle(), ek.object.handle(), *credential);
  ASSERT_THAT(activated, ResultInDomain(ErrorDomain::kTss, StartsWith("TPM2_ActivateCredential failed")));
  // The seed does not decrypt (OAEP) under this EK: Part 3 §12.5 lets the TPM answer
  // TPM_RC_VALUE (or TPM_RC_INTEGRITY should the padding happen to check out); libtpms answers
  // TPM_RC_FAILURE for the failed RSA decryption, without going into failure mode.
  EXPECT_TRUE(IsTpmRc(activated.error(), TPM2_RC_VALUE) || IsTpmRc(activated.error(), TPM2_RC_INTEGRITY) ||
              IsTpmRc(activated.error(), TPM2_RC_FAILURE))
      << activated.error().ToString();
  // The TPM still answers: the same object activates a credential made for this EK.
  auto good = MakeCredential(*EkCertificateKey(), NameOf(object), ToBytes("secret"));
  ASSERT_THAT(good, IsOk());
  EXPECT_THAT(ActivateCredential(tpm(), object.object.handle(), ek.object.handle(), *good), IsOk());
}

TEST_P(AttestTest, TheIakActivatesACredentialThroughItsAdminPolicy) {
  PrimaryKey ek = Ek();
  PrimaryKey iak = Create(IakKeyTemplate(GetParam()));
  Bytes secret = ToBytes("for the IAK");
  auto credential = MakeCredential(*EkCertificateKey(), NameOf(iak), secret);
  ASSERT_THAT(credential, IsOk());
  auto activated = ActivateCredential(tpm(), iak.object.handle(), ek.object.handle(), *credential);
  ASSERT_THAT(activated, IsOk());
  EXPECT_EQ(*activated, secret);
  EXPECT_THAT(ReadTpmProperty(tpm(), TPM2_PT_HR_LOADED), ::testing::Optional(0u))
      << "a policy session outlived the activation";
}

TEST_P(AttestTest, TheContextsEndorsementAuthAuthorizesTheEkPolicy) {
  auto change = RunTool({"tpm2_changeauth", "-c", "e", "endorsement secret"});
  ASSERT_EQ(change.exit_status, 0) << change.err;
  Bytes secret = ToBytes("activated under an endorsement password");
  std::optional<Credential> credential;
  {
    TpmOpenOptions options{.command_timeout = std::chrono::seconds(30)};
    options.auth.endorsement = "endorsement secret";
    auto with_auth = TpmContext::Open(swtpm().tcti(), options);
    ASSERT_THAT(with_auth, IsOk());
    auto ek = CreateEk(*with_auth);
    ASSERT_THAT(ek, IsOk());
    auto object = CreatePrimary(*with_auth, ESYS_TR_RH_ENDORSEMENT, CertifiableKeyTemplate(GetParam()));
    ASSERT_THAT(object, IsOk());
    auto made = MakeCredential(**PublicKeyFromTpm(ek->public_area.publicArea),
                               *ObjectName(object->public_area.publicArea), secret);
    ASSERT_THAT(made, IsOk());
    credential = *made;
    EXPECT_THAT(ActivateCredential(*with_auth, object->object.handle(), ek->object.handle(), *credential),
                ::testing::Optional(secret));
    ASSERT_THAT(PersistKey(*with_auth, ek->object, kEkHandle), IsOk());
    ASSERT_THAT(PersistKey(*with_auth, object->object, kObjectHandle), IsOk());
  }
  // Without the endorsement password TPM2_PolicySecret, and so the activation, fails.
  Reconnect();
  EsysReference object = Persistent(kObjectHandle);
  EsysReference ek = Persistent(kEkHandle);
  auto activated = ActivateCredential(tpm(), object.handle(), ek.handle(), *credential);
  ASSERT_THAT(activated,
              ResultInDomain(ErrorDomain::kTss, StartsWith("cannot authorize the EK: "
                                                           "TPM2_PolicySecret on the endorsement")));
  ExpectTpmRc(activated.error(), TPM2_RC_BAD_AUTH);
}

TEST_P(AttestTest, Tpm2MakecredentialIsActivatedByUs) {
  PersistForTools();
  Bytes secret = ToBytes("made by tpm2_makecredential");
  ASSERT_THAT(WriteFileAtomic(Path("secret.bin"), secret), IsOk());
  auto readpublic = RunTool({"tpm2_readpublic", "-c", fmt::format("{:#x}", kEkHandle), "-o", Path("ek.pub")});
  ASSERT_EQ(readpublic.exit_status, 0) << readpublic.err;
  auto make = RunTool({"tpm2_makecredential", "-T", "none", "-u", Path("ek.pub"), "-s", Path("secret.bin"),
                       "-n", Hex(object_name_), "-o", Path("cred.out")});
  ASSERT_EQ(make.exit_status, 0) << make.err;
  Reconnect();
  auto file = ReadFileBytes(Path("cred.out"));
  ASSERT_THAT(file, IsOk());
  auto credential = ParseToolsCredentialFile(*file);
  ASSERT_TRUE(credential.has_value()) << Hex(*file);
  EsysReference object = Persistent(kObjectHandle);
  EsysReference ek = Persistent(kEkHandle);
  auto activated = ActivateCredential(tpm(), object.handle(), ek.handle(), *credential);
  ASSERT_THAT(activated, IsOk());
  EXPECT_EQ(*activated, secret);
}

TEST_P(AttestTest, OurCredentialIsActivatedByTpm2Activatecredential) {
  PersistForTools();
  Bytes secret = ToBytes("made by MakeCredential");
  auto credential = MakeCredential(*EkCertificateKey(), object_name_, secret);
  ASSERT_THAT(credential, IsOk());
  ASSERT_THAT(WriteFileAtomic(Path("cred.in"), ToolsCredentialFile(*credential)), IsOk());
  auto start = RunTool({"tpm2_startauthsession", "--policy-session", "-S", Path("session.ctx")});
  ASSERT_EQ(start.exit_status, 0) << start.err;
  auto secret_policy = RunTool({"tpm2_policysecret", "-S", Path("session.ctx"), "-c", "e"});
  ASSERT_EQ(secret_policy.exit_status, 0) << secret_policy.err;
  auto activate = RunTool({"tpm2_activatecredential", "-c", fmt::format("{:#x}", kObjectHandle), "-C",
                           fmt::format("{:#x}", kEkHandle), "-i", Path("cred.in"), "-o", Path("cert.out"),
                           "-P", "session:" + Path("session.ctx")});
  RunTool({"tpm2_flushcontext", Path("session.ctx")});
  ASSERT_EQ(activate.exit_status, 0) << activate.err;
  auto out = ReadFileBytes(Path("cert.out"));
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(*out, secret);
}

TEST_P(AttestTest, Tpm2CertifyOutputIsAcceptedByOurChecks) {
  PersistForTools();
  // tpm2_certify 5.4 takes no qualifying data: it sends its fixed 00 ff 55 aa.
  auto certify = RunTool({"tpm2_certify", "-c", fmt::format("{:#x}", kObjectHandle), "-C",
                          fmt::format("{:#x}", kIakHandle), "-g", "sha256", "-o", Path("attest.bin"), "-s",
                          Path("sig.bin")});
  ASSERT_EQ(certify.exit_status, 0) << certify.err;
  auto name = RunTool({"tpm2_readpublic", "-c", fmt::format("{:#x}", kObjectHandle), "-n", Path("name.bin")});
  ASSERT_EQ(name.exit_status, 0) << name.err;
  Reconnect();
  auto attest_bytes = ReadFileBytes(Path("attest.bin"));
  auto sig_bytes = ReadFileBytes(Path("sig.bin"));
  ASSERT_THAT(attest_bytes, IsOk());
  ASSERT_THAT(sig_bytes, IsOk());
  auto signature = UnmarshalSignature(*sig_bytes);
  ASSERT_THAT(signature, IsOk());
  EXPECT_THAT(VerifyTpmSignature(iak_public_, *attest_bytes, *signature), IsOk());
  auto attest = UnmarshalAttest(*attest_bytes);
  ASSERT_THAT(attest, IsOk());
  EXPECT_EQ(attest->type, TPM2_ST_ATTEST_CERTIFY);
  EXPECT_EQ(Bytes(attest->extraData.buffer, attest->extraData.buffer + attest->extraData.size),
            (Bytes{0x00, 0xff, 0x55, 0xaa}));
  const TPM2B_NAME& certified = attest->attested.certify.name;
  EXPECT_EQ(Bytes(certified.name, certified.name + certified.size), object_name_);
  // The TPM's own name of the object (tpm2_readpublic -n) is our ObjectName.
  EXPECT_EQ(*ReadFileBytes(Path("name.bin")), object_name_);
}

INSTANTIATE_TEST_SUITE_P(Swtpm, AttestTest, ::testing::Values(KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048),
                         [](const ::testing::TestParamInfo<KeyAlgorithm>& param) {
                           return param.param == KeyAlgorithm::kEccP256 ? std::string("Ecc")
                                                                        : std::string("Rsa");
                         });

}  // namespace
}  // namespace idevid
