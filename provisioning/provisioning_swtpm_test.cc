// Provisioning and the line check on a manufactured swtpm, checked with tpm2-tools and openssl.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_keys.h"
#include "core/tpm_nv.h"
#include "core/tss_error.h"
#include "core/x509.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"
#include "provisioning/line_check.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultInDomain;
using ::idevid::testing::ResultIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class ProvisioningTest : public testing::TpmTestBase, public ::testing::TestWithParam<KeyAlgorithm> {
 protected:
  void SetUp() override {
    StartTpm(testing::TpmAccess::kDirect, /*manufacture=*/true);
    auto factory = InitFactory({.dir = dir() / "factory", .algorithm = GetParam()});
    ASSERT_TRUE(factory) << factory.error().ToString();
    factory_ = std::move(*factory);
  }
  void TearDown() override { StopTpm(); }

  ProvisionResult Provision(const std::string& serial = "CW9876543210") {
    auto result =
        ProvisionUnit(tpm(), *factory_, {.serial = serial, .model = "SRX4300", .algorithm = GetParam()});
    EXPECT_TRUE(result) << result.error().ToString();
    return std::move(*result);
  }
  CheckReport Check(std::optional<std::string> serial = "CW9876543210") {
    auto bundle = LoadTrustBundle(FactoryFiles::Chain(factory_->dir));
    EXPECT_TRUE(bundle) << bundle.error().ToString();
    auto report = CheckUnit(tpm(), *bundle, {.expect_serial = serial, .expect_model = "SRX4300"});
    EXPECT_TRUE(report) << report.error().ToString();
    return std::move(*report);
  }

  std::optional<Factory> factory_;
};

TEST_P(ProvisioningTest, ProvisionedUnitPassesTheLineCheck) {
  ProvisionResult result = Provision();
  EXPECT_EQ(*SubjectAttribute(*result.certificate, "2.5.4.5"), std::vector<std::string>{"CW9876543210"});
  EXPECT_FALSE(result.ek_certificate_fingerprint.empty());
  CheckReport report = Check();
  for (const auto& m : report.measurements) {
    EXPECT_TRUE(m.passed) << m.name << ": " << m.value << " (expected " << m.expected << ")";
  }
  EXPECT_TRUE(report.passed());
  EXPECT_EQ(report.identity.fingerprint, result.certificate_fingerprint);
  EXPECT_GE(report.measurements.size(), 18u);
}

TEST_P(ProvisioningTest, Tpm2ToolsAndOpensslAgreeWithTheBurntInIdentity) {
  ProvisionResult result = Provision();
  auto der = dir() / "idevid.der";
  auto nvread = RunTool({"tpm2_nvread", "0x01C90000", "-o", der.string()});
  ASSERT_EQ(nvread.exit_status, 0) << nvread.err;
  auto parsed = RunCommand(
      {"openssl", "x509", "-inform", "der", "-in", der.string(), "-noout", "-subject", "-enddate"});
  ASSERT_TRUE(parsed && parsed->exit_status == 0);
  EXPECT_NE(parsed->out.find("serialNumber = CW9876543210"), std::string::npos) << parsed->out;
  EXPECT_NE(parsed->out.find("notAfter=Dec 31 23:59:59 9999 GMT"), std::string::npos) << parsed->out;
  auto pem = dir() / "idevid.pem";
  ASSERT_TRUE(RunCommand({"openssl", "x509", "-inform", "der", "-in", der.string(), "-out", pem.string()}));
  auto verify = RunCommand({"openssl", "verify", "-CAfile", FactoryFiles::RootCert(factory_->dir).string(),
                            "-untrusted", FactoryFiles::IssuingCert(factory_->dir).string(), pem.string()});
  ASSERT_TRUE(verify);
  EXPECT_EQ(verify->exit_status, 0) << verify->out << verify->err;
  auto pub = dir() / "idevid.pub.pem";
  auto readpublic = RunTool({"tpm2_readpublic", "-c", "0x81020000", "-f", "pem", "-o", pub.string()});
  ASSERT_EQ(readpublic.exit_status, 0) << readpublic.err;
  EXPECT_EQ(*PublicKeyDer(**ParsePublicKeyPem(*ReadFileText(pub))),
            *PublicKeyDer(*X509_get0_pubkey(result.certificate.get())));
  Reconnect();
  auto rewrite = NvWrite(tpm(), 0x01C90000, Bytes(16, 0));
  ASSERT_THAT(rewrite, ResultInDomain(ErrorDomain::kTss, HasSubstr("NV index 0x01c90000")));
  EXPECT_TRUE(IsTpmRc(rewrite.error(), TPM2_RC_NV_LOCKED)) << rewrite.error().ToString();
}

TEST_P(ProvisioningTest, ASecondProvisioningIsRefusedUnlessForcedAndThenSaysWhatItReplaced) {
  ProvisionResult first = Provision("CW1");
  auto refused = ProvisionUnit(tpm(), *factory_, {.serial = "CW2", .model = "SRX4300"});
  EXPECT_THAT(refused, ResultIs(ErrorDomain::kUsage, UsageCode::kWrongState,
                                AllOf(HasSubstr("already holds an identity (key at 0x81020000; NV "
                                                "index 0x01c90000"),
                                      HasSubstr("serialNumber=CW1"))));
  auto forced = ProvisionUnit(tpm(), *factory_,
                              {.serial = "CW2", .model = "SRX4300", .algorithm = GetParam(), .force = true});
  ASSERT_TRUE(forced) << forced.error().ToString();
  ASSERT_EQ(forced->replaced.size(), 2u);
  EXPECT_EQ(forced->replaced[0], "key at 0x81020000");
  EXPECT_NE(forced->replaced[1].find("serialNumber=CW1"), std::string::npos);
  EXPECT_TRUE(Check("CW2").passed());
}

TEST_P(ProvisioningTest, InvalidSerialIsRefusedBeforeTheTpmIsTouched) {
  auto refused = ProvisionUnit(tpm(), *factory_, {.serial = "CW 1\n", .model = "SRX4300"});
  EXPECT_THAT(refused,
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, StartsWith("the serial number")));
  EXPECT_FALSE(ReadPersistentPublic(tpm(), kDefaultIdevidKeyHandle));
}

INSTANTIATE_TEST_SUITE_P(Keys, ProvisioningTest,
                         ::testing::Values(KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048),
                         [](const auto& param_info) {
                           return param_info.param == KeyAlgorithm::kEccP256 ? "Ecc" : "Rsa";
                         });

}  // namespace
}  // namespace idevid
