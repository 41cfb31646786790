// The factory's CRL: what it states (entries, reasons, dates, AKI, number), its checks (signer,
// staleness) and lookups, and OpenSSL's own tools reading it the same way.
#include "core/x509_crl.h"

#include <openssl/x509_vfy.h>

#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "core/utc_time.h"
#include "core/x509_build.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"
#include "provisioning/file_identity.h"

namespace idevid {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

CrlClock::time_point Seconds(CrlClock::time_point t) { return std::chrono::floor<std::chrono::seconds>(t); }

class X509CrlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    factory_ = *InitFactory({.dir = temp_.path() / "factory"});
    revoked_ = Issue("CW0001");
    ceased_ = Issue("CW0002");
    unspecified_ = Issue("CW0003");
    good_ = Issue("CW0004");
  }
  ossl::Cert Issue(const std::string& serial) {
    auto identity = IssueFileIdentity(*factory_, {.serial = serial, .model = "SRX4300"});
    EXPECT_TRUE(identity) << identity.error().ToString();
    return std::move(identity->certificate);
  }
  CrlContent Content() const {
    return {.number = 42,
            .this_update = now_,
            .next_update = now_ + 7 * 24h,
            .entries = {{CertificateSerialHex(*revoked_), RevocationReason::kKeyCompromise, now_ - 1h},
                        {CertificateSerialHex(*ceased_), RevocationReason::kCessationOfOperation, now_ - 2h},
                        {CertificateSerialHex(*unspecified_), RevocationReason::kUnspecified, now_ - 3h}}};
  }
  ossl::Crl Build(const CrlContent& content) {
    auto crl = BuildCrl(content, *factory_->issuing, *factory_->issuing_key);
    EXPECT_TRUE(crl) << crl.error().ToString();
    return crl ? std::move(*crl) : nullptr;
  }
  std::vector<const X509*> Cas() const { return {factory_->issuing.get(), factory_->root.get()}; }
  std::filesystem::path Write(const std::string& name, const X509_CRL& crl) {
    auto path = temp_.path() / name;
    EXPECT_TRUE(WriteFileAtomic(path, *CrlPem(crl)));
    return path;
  }

  testing::TempDir temp_;
  std::optional<Factory> factory_;
  ossl::Cert revoked_, ceased_, unspecified_, good_;
  CrlClock::time_point now_ = Seconds(CrlClock::now());
};

TEST_F(X509CrlTest, ItStatesItsEntriesReasonsDatesAndNumber) {
  ossl::Crl crl = Build(Content());
  ASSERT_TRUE(crl);
  EXPECT_EQ(X509_CRL_get_version(crl.get()), X509_CRL_VERSION_2);
  EXPECT_EQ(X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(factory_->issuing.get())), 0);
  auto content = ReadCrl(*crl);
  ASSERT_TRUE(content) << content.error().ToString();
  EXPECT_EQ(content->number, 42u);
  EXPECT_EQ(content->this_update, now_);
  EXPECT_EQ(content->next_update, now_ + 7 * 24h);
  ASSERT_EQ(content->entries.size(), 3u);
  std::map<std::string, CrlEntry> by_serial;
  for (const auto& e : content->entries) by_serial[e.certificate_serial] = e;
  const CrlEntry& compromised = by_serial[CertificateSerialHex(*revoked_)];
  EXPECT_EQ(compromised.reason, RevocationReason::kKeyCompromise);
  EXPECT_EQ(compromised.revoked_at, now_ - 1h);
  EXPECT_EQ(by_serial[CertificateSerialHex(*ceased_)].reason, RevocationReason::kCessationOfOperation);
  EXPECT_EQ(by_serial[CertificateSerialHex(*unspecified_)].reason, RevocationReason::kUnspecified);
}

TEST_F(X509CrlTest, AnUnspecifiedReasonIsLeftOutAsRfc5280Advises) {
  ossl::Crl crl = Build(Content());
  ASSERT_TRUE(crl);
  X509_REVOKED* entry = nullptr;
  ASSERT_EQ(X509_CRL_get0_by_cert(crl.get(), &entry, unspecified_.get()), 1);
  EXPECT_EQ(X509_REVOKED_get_ext_by_NID(entry, NID_crl_reason, -1), -1);
  ASSERT_EQ(X509_CRL_get0_by_cert(crl.get(), &entry, revoked_.get()), 1);
  EXPECT_GE(X509_REVOKED_get_ext_by_NID(entry, NID_crl_reason, -1), 0);
}

TEST_F(X509CrlTest, ItsAuthorityKeyIdentifierIsTheIssuingCasKeyIdentifier) {
  ossl::Crl crl = Build(Content());
  ASSERT_TRUE(crl);
  ossl::UniquePtr<AUTHORITY_KEYID> aki(static_cast<AUTHORITY_KEYID*>(
      X509_CRL_get_ext_d2i(crl.get(), NID_authority_key_identifier, nullptr, nullptr)));
  ASSERT_TRUE(aki);
  ASSERT_NE(aki->keyid, nullptr);
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(factory_->issuing.get());
  ASSERT_NE(ski, nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(aki->keyid, ski), 0);
}

TEST_F(X509CrlTest, TheFactoryCaAcceptsItsCrlAndFindsTheRevokedUnits) {
  ossl::Crl crl = Build(Content());
  ASSERT_TRUE(crl);
  auto signer = CheckCrl(*crl, Cas(), CrlClock::now());
  ASSERT_TRUE(signer) << signer.error().ToString();
  EXPECT_EQ(*signer, factory_->issuing.get());
  auto found = FindRevocation(*crl, *revoked_);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->reason, RevocationReason::kKeyCompromise);
  EXPECT_EQ(found->revoked_at, now_ - 1h);
  EXPECT_FALSE(FindRevocation(*crl, *good_));
}

TEST_F(X509CrlTest, ACrlSignedByAnotherKeyIsRefused) {
  // Another factory of the same manufacturer: the same issuer name, another key.
  auto other = InitFactory({.dir = temp_.path() / "other"});
  ASSERT_TRUE(other);
  auto crl = BuildCrl(Content(), *other->issuing, *other->issuing_key);
  ASSERT_TRUE(crl);
  EXPECT_THAT(CheckCrl(**crl, Cas(), CrlClock::now()),
              testing::ResultIs(ErrorDomain::kVerify, X509_V_ERR_CRL_SIGNATURE_FAILURE,
                                HasSubstr("signature does not verify")));
}

TEST_F(X509CrlTest, ACrlOfAnotherIssuerIsRefused) {
  auto other = InitFactory({.dir = temp_.path() / "other", .manufacturer = "Other Networks"});
  ASSERT_TRUE(other);
  auto crl = BuildCrl(Content(), *other->issuing, *other->issuing_key);
  ASSERT_TRUE(crl);
  EXPECT_THAT(CheckCrl(**crl, Cas(), CrlClock::now()),
              testing::ResultIs(ErrorDomain::kVerify, X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER,
                                HasSubstr("no CA of the factory issued the CRL")));
}

TEST_F(X509CrlTest, ACaWithoutCrlSignMayNotSignCrls) {
  auto key = GenerateKey(KeyAlgorithm::kEccP256);
  ASSERT_TRUE(key);
  auto ca = IssueCertificate({.subject = {{"CN", "Certificates Only CA"}},
                              .not_after = "20991231235959Z",
                              .extensions = {{"basicConstraints", "critical,CA:TRUE"},
                                             {"keyUsage", "critical,keyCertSign"},
                                             {"subjectKeyIdentifier", "hash"}}},
                             **key, nullptr, **key);
  ASSERT_TRUE(ca) << ca.error().ToString();
  auto crl = BuildCrl(Content(), **ca, **key);
  ASSERT_TRUE(crl) << crl.error().ToString();
  EXPECT_THAT(
      CheckCrl(**crl, {ca->get()}, CrlClock::now()),
      testing::ResultIs(ErrorDomain::kVerify, X509_V_ERR_KEYUSAGE_NO_CRL_SIGN, HasSubstr("lacks cRLSign")));
}

TEST_F(X509CrlTest, ACrlPastItsNextUpdateIsStale) {
  CrlContent content = Content();
  content.this_update = now_ - 10 * 24h;
  content.next_update = now_ - 24h;
  ossl::Crl crl = Build(content);
  ASSERT_TRUE(crl);
  EXPECT_THAT(CheckCrl(*crl, Cas(), now_),
              testing::ResultIs(ErrorDomain::kVerify, X509_V_ERR_CRL_HAS_EXPIRED,
                                HasSubstr("the CRL is stale: its nextUpdate " + UtcTimestamp(now_ - 24h))));
  // The same CRL was current before its nextUpdate.
  EXPECT_TRUE(CheckCrl(*crl, Cas(), now_ - 2 * 24h));
}

TEST_F(X509CrlTest, PemAndDerReadBackTheSame) {
  ossl::Crl crl = Build(Content());
  ASSERT_TRUE(crl);
  auto der = CrlDer(*crl);
  ASSERT_TRUE(der);
  auto pem = CrlPem(*crl);
  ASSERT_TRUE(pem);
  auto from_der = ParseCrl(*der);
  auto from_pem = ParseCrl(std::span(reinterpret_cast<const std::uint8_t*>(pem->data()), pem->size()));
  ASSERT_TRUE(from_der);
  ASSERT_TRUE(from_pem);
  EXPECT_EQ(*CrlDer(**from_der), *der);
  EXPECT_EQ(*CrlDer(**from_pem), *der);
  Bytes trailing = *der;
  trailing.push_back(0);
  EXPECT_THAT(ParseCrl(trailing), testing::ResultIs(ErrorDomain::kConfig, ConfigCode::kFile,
                                                    HasSubstr("1 bytes follow the DER CRL")));
  Bytes garbage = {'n', 'o', 't'};
  EXPECT_THAT(ParseCrl(garbage),
              testing::ResultIs(ErrorDomain::kConfig, ConfigCode::kFile, HasSubstr("not a DER CRL")));
}

TEST_F(X509CrlTest, BadEntriesAndTimesAreUsageErrors) {
  CrlContent content = Content();
  content.entries.push_back({"xyz", RevocationReason::kKeyCompromise, now_});
  EXPECT_THAT(BuildCrl(content, *factory_->issuing, *factory_->issuing_key),
              testing::ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                                HasSubstr("\"xyz\" is not a certificate serial in hex")));
  content = Content();
  content.entries.push_back({"0a", RevocationReason::kRemoveFromCrl, now_});
  EXPECT_THAT(
      BuildCrl(content, *factory_->issuing, *factory_->issuing_key),
      testing::ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("delta CRLs only")));
  content = Content();
  content.next_update = content.this_update;
  EXPECT_THAT(BuildCrl(content, *factory_->issuing, *factory_->issuing_key),
              testing::ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("nextUpdate")));
}

TEST_F(X509CrlTest, SerialsCompareAsNumbers) {
  EXPECT_TRUE(SameCertificateSerial("0A1b", "a1B"));
  EXPECT_FALSE(SameCertificateSerial("a1", "a2"));
  EXPECT_FALSE(SameCertificateSerial("a1", "a1z"));
  EXPECT_FALSE(SameCertificateSerial("", ""));
}

// --- OpenSSL's command line reads our CRL as we do ---

TEST_F(X509CrlTest, OpensslCrlShowsTheEntriesReasonsNextUpdateAndNumber) {
  ossl::Crl crl = Build(Content());
  ASSERT_TRUE(crl);
  auto path = Write("crl.pem", *crl);
  auto run = RunCommand({"openssl", "crl", "-in", path.string(), "-noout", "-text"});
  ASSERT_TRUE(run);
  ASSERT_EQ(run->exit_status, 0) << run->err;
  const std::string& text = run->out;
  EXPECT_THAT(text, HasSubstr("Version 2 (0x1)"));
  EXPECT_THAT(text, HasSubstr("Next Update:"));
  EXPECT_THAT(text, HasSubstr("X509v3 CRL Number: \n                42"));
  EXPECT_THAT(text, HasSubstr("X509v3 Authority Key Identifier"));
  EXPECT_THAT(text, HasSubstr("Key Compromise"));
  EXPECT_THAT(text, HasSubstr("Cessation Of Operation"));
  std::string serial = CertificateSerialHex(*revoked_);
  for (char& c : serial) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_THAT(text, HasSubstr("Serial Number: " + serial));
}

TEST_F(X509CrlTest, OpensslVerifyWithCrlCheckAgreesWithOurVerdict) {
  ossl::Crl crl = Build(Content());
  ASSERT_TRUE(crl);
  auto crl_path = Write("crl.pem", *crl);
  auto root = temp_.path() / "root.pem";
  ASSERT_TRUE(WriteFileAtomic(root, *CertificatePem(*factory_->root)));
  for (auto* cert : {revoked_.get(), good_.get()}) {
    auto leaf = temp_.path() / "leaf.pem";
    ASSERT_TRUE(WriteFileAtomic(leaf, *CertificatePem(*cert)));
    // -crl_check checks the leaf; the issuing CA comes as an untrusted intermediate.
    auto run = RunCommand({"openssl", "verify", "-crl_check", "-CAfile", root.string(), "-untrusted",
                           FactoryFiles::IssuingCert(factory_->dir).string(), "-CRLfile", crl_path.string(),
                           leaf.string()});
    ASSERT_TRUE(run);
    bool ours = FindRevocation(*crl, *cert).has_value();
    if (ours) {
      EXPECT_NE(run->exit_status, 0);
      EXPECT_THAT(run->out + run->err, HasSubstr("certificate revoked"));
    } else {
      EXPECT_EQ(run->exit_status, 0) << run->out << run->err;
      EXPECT_THAT(run->out, HasSubstr(": OK"));
    }
  }
  // With the factory's bundle (issuing and root CA) as -CAfile, as a cloud is given it.
  auto leaf = temp_.path() / "revoked.pem";
  ASSERT_TRUE(WriteFileAtomic(leaf, *CertificatePem(*revoked_)));
  auto run =
      RunCommand({"openssl", "verify", "-crl_check", "-CAfile", FactoryFiles::Chain(factory_->dir).string(),
                  "-CRLfile", crl_path.string(), leaf.string()});
  ASSERT_TRUE(run);
  EXPECT_THAT(run->out + run->err, HasSubstr("certificate revoked"));
}

}  // namespace
}  // namespace idevid
