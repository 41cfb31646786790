#include "provisioning/factory.h"

#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "core/x509.h"
#include "core/x509_verify.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;

unsigned Mode(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777;
}

class FactoryTest : public ::testing::TestWithParam<KeyAlgorithm> {
 protected:
  testing::TempDir temp_;
  std::filesystem::path dir() const { return temp_.path() / "factory"; }
};

TEST_P(FactoryTest, InitWritesACaPairWithPrivateKeysReadableOnlyByTheOwner) {
  auto factory = InitFactory({.dir = dir(), .algorithm = GetParam(), .manufacturer = "Acme"});
  ASSERT_TRUE(factory) << factory.error().ToString();
  EXPECT_EQ(Mode(FactoryFiles::RootKey(dir())), 0600u);
  EXPECT_EQ(Mode(FactoryFiles::IssuingKey(dir())), 0600u);
  EXPECT_EQ(*SubjectAttribute(*factory->issuing, "O"), std::vector<std::string>{"Acme"});
  // RFC 5280 4.2.1.9: the root allows one CA below it, the issuing CA none.
  EXPECT_EQ(X509_get_pathlen(factory->root.get()), 1);
  EXPECT_EQ(X509_get_pathlen(factory->issuing.get()), 0);
  EXPECT_EQ(X509_get_key_usage(factory->issuing.get()) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN),
            static_cast<std::uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_authority_key_id(factory->issuing.get()), nullptr);
  auto verdict = VerifyChain(*factory->issuing, {}, {factory->root.get()});
  ASSERT_TRUE(verdict);
  EXPECT_TRUE(verdict->valid) << verdict->error;
}

TEST_P(FactoryTest, ExistingFactoryIsKeptUnlessForced) {
  auto first = InitFactory({.dir = dir(), .algorithm = GetParam()});
  ASSERT_TRUE(first);
  auto again = InitFactory({.dir = dir(), .algorithm = GetParam()});
  EXPECT_THAT(again, ResultIs(ErrorDomain::kUsage, UsageCode::kWrongState,
                              HasSubstr("already holds a factory CA; pass --force")));
  EXPECT_EQ(*Sha256Fingerprint(*LoadFactory(dir())->root), *Sha256Fingerprint(*first->root));
  auto forced = InitFactory({.dir = dir(), .algorithm = GetParam(), .force = true});
  ASSERT_TRUE(forced);
  EXPECT_NE(*Sha256Fingerprint(*forced->root), *Sha256Fingerprint(*first->root));
}

TEST_P(FactoryTest, TrustBundleSplitsAnchorsFromIntermediates) {
  ASSERT_TRUE(InitFactory({.dir = dir(), .algorithm = GetParam()}));
  auto bundle = LoadTrustBundle(FactoryFiles::Chain(dir()));
  ASSERT_TRUE(bundle) << bundle.error().ToString();
  EXPECT_EQ(bundle->anchors.size(), 1u);
  EXPECT_EQ(bundle->intermediates.size(), 1u);
  auto only_issuing = LoadTrustBundle(FactoryFiles::IssuingCert(dir()));
  EXPECT_THAT(only_issuing,
              ResultIs(ErrorDomain::kConfig, ConfigCode::kMissing, HasSubstr("no self-signed")));
}

INSTANTIATE_TEST_SUITE_P(Keys, FactoryTest, ::testing::Values(KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048),
                         [](const auto& param_info) {
                           return param_info.param == KeyAlgorithm::kEccP256 ? "Ecc" : "Rsa";
                         });

TEST(FactoryLoadTest, MissingFactoryIsAUsageErrorThatSaysHowToMakeOne) {
  auto factory = LoadFactory("/nonexistent/factory");
  EXPECT_THAT(factory, ResultIs(ErrorDomain::kUsage, UsageCode::kWrongState,
                                HasSubstr("idevid factory init --dir /nonexistent/factory")));
}

}  // namespace
}  // namespace idevid
