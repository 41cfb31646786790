#include "core/x509.h"

#include <openssl/pem.h>

#include <cerrno>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "core/testing/test_certs.h"
#include "core/work_dir.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultInDomain;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;

class X509Test : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = testing::GenerateEcKey();
    cert_ = testing::MakeSelfSigned(
        {.subject = {{"O", "Example Networks"}, {"CN", "SRX4300"}, {"serialNumber", "CW9876543210"}},
         .extensions = {{"basicConstraints", "critical,CA:FALSE"},
                        {"keyUsage", "digitalSignature"},
                        {"subjectKeyIdentifier", "hash"}}},
        *key_);
    der_ = *CertificateDer(*cert_);
  }
  ossl::PKey key_;
  ossl::Cert cert_;
  Bytes der_;
};

TEST_F(X509Test, ParsesDerAndPemToTheSameCertificate) {
  auto pem = CertificatePem(*cert_);
  ASSERT_TRUE(pem);
  auto from_pem =
      ParseCertificate(std::span(reinterpret_cast<const std::uint8_t*>(pem->data()), pem->size()));
  auto from_der = ParseCertificate(der_);
  ASSERT_TRUE(from_pem) << from_pem.error().ToString();
  ASSERT_TRUE(from_der) << from_der.error().ToString();
  EXPECT_EQ(*CertificateDer(**from_pem), der_);
  EXPECT_EQ(*CertificateDer(**from_der), der_);
}

TEST_F(X509Test, FingerprintIsSha256OfTheDer) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  ASSERT_EQ(X509_digest(cert_.get(), EVP_sha256(), digest, &length), 1);
  EXPECT_EQ(*Sha256Fingerprint(*cert_), Hex(std::span(digest, length)));
  EXPECT_EQ(Sha256Fingerprint(*cert_)->size(), 64u);
}

TEST_F(X509Test, ReadsSubjectAttributesByOidAndByName) {
  EXPECT_EQ(*SubjectAttribute(*cert_, "2.5.4.5"), std::vector<std::string>{"CW9876543210"});
  EXPECT_EQ(*SubjectAttribute(*cert_, "CN"), std::vector<std::string>{"SRX4300"});
  EXPECT_EQ(*IssuerAttribute(*cert_, "O"), std::vector<std::string>{"Example Networks"});
  EXPECT_TRUE(SubjectAttribute(*cert_, "2.5.4.12")->empty());
  EXPECT_EQ(SubjectLine(*cert_), "serialNumber=CW9876543210,CN=SRX4300,O=Example Networks");
}

TEST_F(X509Test, UnknownAttributeNameIsAUsageError) {
  auto r = SubjectAttribute(*cert_, "notAnAttribute");
  EXPECT_THAT(r, ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("notAnAttribute")));
}

TEST_F(X509Test, FindsExtensionsByOidWithCriticality) {
  auto bc = FindExtension(*cert_, "2.5.29.19");
  ASSERT_TRUE(bc && bc->has_value());
  EXPECT_TRUE((*bc)->critical);
  EXPECT_EQ((*bc)->value, (Bytes{0x30, 0x00}));  // BasicConstraints SEQUENCE {} = CA:FALSE
  auto ski = FindExtension(*cert_, "2.5.29.14");
  ASSERT_TRUE(ski && ski->has_value());
  EXPECT_FALSE((*ski)->critical);
  auto san = FindExtension(*cert_, "2.5.29.17");
  ASSERT_TRUE(san);
  EXPECT_FALSE(san->has_value());
}

TEST_F(X509Test, PublicKeyDerMatchesTheSigningKey) {
  EXPECT_EQ(*PublicKeyDer(*X509_get0_pubkey(cert_.get())), *PublicKeyDer(*key_));
}

struct BadInput {
  const char* name;
  Bytes bytes;
  ErrorDomain domain;
  const char* message;
};

class BadCertificateTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadCertificateTest, IsRefusedWithTheReason) {
  auto r = ParseCertificate(GetParam().bytes);
  EXPECT_THAT(r, ResultInDomain(GetParam().domain, HasSubstr(GetParam().message)));
}

Bytes ValidDer() {
  auto key = testing::GenerateEcKey();
  return *CertificateDer(*testing::MakeSelfSigned({.subject = {{"CN", "x"}}}, *key));
}

Bytes Truncated() {
  Bytes der = ValidDer();
  der.resize(der.size() / 2);
  return der;
}

Bytes WithTrailingBytes() {
  Bytes der = ValidDer();
  der.insert(der.end(), {0x00, 0xFF});
  return der;
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, BadCertificateTest,
    ::testing::Values(BadInput{"Empty", {}, ErrorDomain::kConfig, "empty"},
                      BadInput{"Garbage", {0x01, 0x02, 0x03}, ErrorDomain::kOpenSsl, "cannot parse the DER"},
                      BadInput{"TruncatedDer", Truncated(), ErrorDomain::kOpenSsl, "cannot parse the DER"},
                      BadInput{"TrailingBytes", WithTrailingBytes(), ErrorDomain::kConfig,
                               "2 bytes follow the DER certificate"},
                      BadInput{
                          "BrokenPem",
                          Bytes{'-', '-', '-', '-', '-', 'B', 'E', 'G', 'I', 'N', ' ', 'X', '-', '-', '-'},
                          ErrorDomain::kOpenSsl, "cannot parse the PEM"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(CertificateBundleTest, ReadsEveryCertificateInOrder) {
  auto dir = WorkDir::Create("idevid-bundle");
  ASSERT_THAT(dir, IsOk());
  auto path = dir->path() / "bundle.pem";
  auto key = testing::GenerateEcKey();
  auto a = testing::MakeSelfSigned({.subject = {{"CN", "first"}}}, *key);
  auto b = testing::MakeSelfSigned({.subject = {{"CN", "second"}}}, *key);
  ASSERT_TRUE(WriteFileAtomic(path, *CertificatePem(*a) + *CertificatePem(*b)));
  auto bundle = LoadCertificateBundle(path);
  ASSERT_THAT(bundle, IsOk());
  ASSERT_EQ(bundle->size(), 2u);
  EXPECT_EQ(*SubjectAttribute(*(*bundle)[0], "CN"), std::vector<std::string>{"first"});
  EXPECT_EQ(*SubjectAttribute(*(*bundle)[1], "CN"), std::vector<std::string>{"second"});
}

TEST(CertificateBundleTest, AFileWithoutCertificatesIsAConfigError) {
  auto dir = WorkDir::Create("idevid-empty");
  ASSERT_THAT(dir, IsOk());
  auto path = dir->path() / "empty.pem";
  ASSERT_THAT(WriteFileAtomic(path, std::string_view("not a certificate\n")), IsOk());
  EXPECT_THAT(LoadCertificateBundle(path),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kFile, HasSubstr("no PEM certificate")));
}

TEST(CertificateFileTest, MissingFileIsAnIoErrorNamingThePath) {
  auto r = LoadCertificateFile("/nonexistent/idevid.pem");
  EXPECT_THAT(r, ResultIs(ErrorDomain::kIo, ENOENT, HasSubstr("/nonexistent/idevid.pem")));
}

}  // namespace
}  // namespace idevid
