// The factory with its CA keys in a PKCS#11 token (a private SoftHSM2 per test): certificates it
// issues verify with `openssl verify`, the keys are sensitive and never extractable in the token,
// no CA private key and no PIN reach the disk, and a wrong PIN or a token that goes away stops
// with a kPkcs11 error that says so.
#include <openssl/x509.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/pkcs11_error.h"
#include "core/pkcs11_pin.h"
#include "core/testing/result_matchers.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "engine/process.h"
#include "engine/softhsm_token.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"
#include "provisioning/file_identity.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPin = "factory-pin-7361";

class FactoryPkcs11Test : public ::testing::TestWithParam<KeyAlgorithm> {
 protected:
  void SetUp() override {
    auto token = SoftHsmToken::Create({.dir = temp_.path() / "hsm", .label = "line-ca", .pin = kPin});
    ASSERT_TRUE(token) << token.error().ToString();
    token_ = std::move(*token);
    token_->UseInThisProcess();
    setenv(kPkcs11PinVariable, kPin, 1);
  }
  void TearDown() override { unsetenv(kPkcs11PinVariable); }

  std::filesystem::path dir() const { return temp_.path() / "factory"; }
  FactoryOptions Options() const {
    return {.dir = dir(),
            .algorithm = GetParam(),
            .pkcs11_uri = token_->Uri("issuing-ca"),
            .pkcs11_module = SoftHsmToken::ModulePath().string()};
  }
  // `openssl verify` of `cert` against the factory's root, with its issuing CA as intermediate.
  std::string OpensslVerify(const X509& cert, const std::string& name) {
    auto pem = CertificatePem(cert);
    EXPECT_TRUE(pem);
    auto path = temp_.path() / (name + ".pem");
    EXPECT_TRUE(WriteFileAtomic(path, *pem, 0644));
    auto out = RunCommand({"openssl", "verify", "-CAfile", FactoryFiles::RootCert(dir()).string(),
                           "-untrusted", FactoryFiles::IssuingCert(dir()).string(), path.string()});
    EXPECT_TRUE(out);
    return out ? out->out + out->err : "";
  }
  // Issues `count` file identities from `factory`; the first failure is returned.
  Result<std::vector<FileIdentity>> IssueBatch(const Factory& factory, int first, int count) {
    std::vector<FileIdentity> issued;
    for (int i = first; i < first + count; ++i) {
      IDEVID_ASSIGN_OR_RETURN(FileIdentity identity,
                              IssueFileIdentity(factory, {fmt::format("HSM{:04}", i), "SRX4300"}), "unit {}",
                              i);
      issued.push_back(std::move(identity));
    }
    return issued;
  }

  testing::TempDir temp_;
  std::optional<SoftHsmToken> token_;
};

TEST_P(FactoryPkcs11Test, CertificatesSignedInTheTokenVerifyWithOpenssl) {
  auto factory = InitFactory(Options());
  ASSERT_TRUE(factory) << factory.error().ToString();
  EXPECT_NE(factory->issuing_key_owner, nullptr) << "the issuing key is the token's";
  EXPECT_EQ(OpensslVerify(*factory->issuing, "issuing"), temp_.path().string() + "/issuing.pem: OK\n");
  auto batch = IssueBatch(*factory, 1, 5);
  ASSERT_TRUE(batch) << batch.error().ToString();
  for (std::size_t i = 0; i < batch->size(); ++i) {
    std::string name = fmt::format("unit{}", i);
    EXPECT_EQ(OpensslVerify(*(*batch)[i].certificate, name),
              (temp_.path() / (name + ".pem")).string() + ": OK\n");
  }
  // A factory loaded again (another station, a restart) signs in the token too.
  factory = Factory();
  auto loaded = LoadFactory(dir());
  ASSERT_TRUE(loaded) << loaded.error().ToString();
  auto more = IssueBatch(*loaded, 6, 1);
  ASSERT_TRUE(more) << more.error().ToString();
  EXPECT_EQ(OpensslVerify(*more->front().certificate, "unit6"),
            (temp_.path() / "unit6.pem").string() + ": OK\n");
}

TEST_P(FactoryPkcs11Test, TheCaKeysInTheTokenAreSensitiveAndNeverExtractable) {
  ASSERT_TRUE(InitFactory(Options()));
  auto out = RunCommand({"pkcs11-tool", "--module", SoftHsmToken::ModulePath().string(), "--token-label",
                         token_->label(), "--login", "--pin", kPin, "--list-objects", "--type", "privkey"},
                        token_->Environment());
  ASSERT_TRUE(out) << out.error().ToString();
  ASSERT_EQ(out->exit_status, 0) << out->err;
  // Two private keys, each "label: ..." followed by its usage and access lines.
  for (std::string label : {"issuing-ca\n", "issuing-ca-root\n"}) {
    std::size_t at = out->out.find("label:      " + label);
    ASSERT_NE(at, std::string::npos) << out->out;
    std::size_t access = out->out.find("Access:", at);
    ASSERT_NE(access, std::string::npos) << out->out;
    std::string line = out->out.substr(access, out->out.find('\n', access) - access);
    EXPECT_THAT(line, HasSubstr("sensitive, always sensitive, never extractable")) << label;
  }
  EXPECT_THAT(out->out, HasSubstr("sign"));
}

TEST_P(FactoryPkcs11Test, NoCaPrivateKeyAndNoPinReachTheDisk) {
  auto factory = InitFactory(Options());
  ASSERT_TRUE(factory) << factory.error().ToString();
  auto batch = IssueBatch(*factory, 1, 3);
  ASSERT_TRUE(batch) << batch.error().ToString();
  EXPECT_FALSE(std::filesystem::exists(FactoryFiles::RootKey(dir())));
  EXPECT_FALSE(std::filesystem::exists(FactoryFiles::IssuingKey(dir())));
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir())) {
    if (!e.is_regular_file()) continue;
    ++files;
    auto bytes = ReadFileBytes(e.path());
    ASSERT_TRUE(bytes) << e.path();
    std::string text(bytes->begin(), bytes->end());
    EXPECT_EQ(text.find("PRIVATE KEY"), std::string::npos) << e.path() << " holds a PEM private key";
    EXPECT_EQ(text.find(kPin), std::string::npos) << e.path() << " holds the PIN";
    const unsigned char* p = bytes->data();
    ossl::PKey der(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(bytes->size())));
    EXPECT_FALSE(der) << e.path() << " is a DER private key";
  }
  EXPECT_GE(files, 4) << "certificates, chain, factory.json";
  auto record = ReadFileText(FactoryFiles::Record(dir()));
  ASSERT_TRUE(record);
  EXPECT_THAT(*record, HasSubstr("\"uri\": \"pkcs11:token=line-ca;object=issuing-ca\""));
  EXPECT_THAT(*record, HasSubstr(SoftHsmToken::ModulePath().string()));
}

TEST_P(FactoryPkcs11Test, AWrongPinStopsWithCkrPinIncorrect) {
  ASSERT_TRUE(InitFactory(Options()));
  setenv(kPkcs11PinVariable, "not-the-pin-9051", 1);
  auto loaded = LoadFactory(dir());
  EXPECT_THAT(loaded, ResultIs(ErrorDomain::kPkcs11, CKR_PIN_INCORRECT,
                               HasSubstr("CKR_PIN_INCORRECT: the token refused the PIN; give the user PIN in "
                                         "IDEVID_PKCS11_PIN or --pkcs11-pin-file")));
  ASSERT_FALSE(loaded);
  EXPECT_THAT(loaded.error().ToString(), Not(HasSubstr("not-the-pin-9051")));
}

TEST_P(FactoryPkcs11Test, ThePinComesFromAPinFileOrTheEnvironmentOnly) {
  ASSERT_TRUE(InitFactory(Options()));
  unsetenv(kPkcs11PinVariable);
  EXPECT_THAT(LoadFactory(dir()), ResultIs(ErrorDomain::kUsage, UsageCode::kMissingArgument,
                                           HasSubstr("set IDEVID_PKCS11_PIN or give --pkcs11-pin-file")));
  auto pin_file = temp_.path() / "pin";
  ASSERT_TRUE(WriteFileAtomic(pin_file, std::string(kPin) + "\nsecond line\n", 0600));
  auto loaded = LoadFactory(dir(), {.pkcs11_pin_file = pin_file});
  ASSERT_TRUE(loaded) << loaded.error().ToString();
  EXPECT_TRUE(IssueBatch(*loaded, 1, 1));
}

TEST_P(FactoryPkcs11Test, ATokenThatGoesAwayMidBatchStopsWithAClearError) {
  auto factory = InitFactory(Options());
  ASSERT_TRUE(factory) << factory.error().ToString();
  ASSERT_TRUE(IssueBatch(*factory, 1, 2));
  ASSERT_TRUE(token_->Delete());
  auto unit = IssueBatch(*factory, 3, 1);
  ASSERT_FALSE(unit) << "a certificate was issued by a token that is gone";
  EXPECT_THAT(unit,
              ResultIs(ErrorDomain::kPkcs11, CKR_TOKEN_NOT_PRESENT,
                       HasSubstr("CKR_TOKEN_NOT_PRESENT: the token went away (removed, deleted or reset); "
                                 "nothing was signed")));
  EXPECT_THAT(unit.error().ToString(), HasSubstr("unit 3: cannot issue the certificate of unit \"HSM0003\""));
  EXPECT_THAT(unit.error().ToString(), HasSubstr("signing with the key \"issuing-ca\""));
}

TEST_P(FactoryPkcs11Test, AKeyOfTheSameNameInTheTokenIsNotReplacedUnlessForced) {
  ASSERT_TRUE(InitFactory(Options()));
  FactoryOptions again = Options();
  again.dir = temp_.path() / "second";
  EXPECT_THAT(InitFactory(again), ResultIs(ErrorDomain::kUsage, UsageCode::kWrongState,
                                           HasSubstr("the token already holds a key named \"issuing-ca\"")));
  again.force = true;
  auto replaced = InitFactory(again);
  ASSERT_TRUE(replaced) << replaced.error().ToString();
  // The first factory's key is gone: its directory no longer matches the token.
  EXPECT_THAT(LoadFactory(dir()), ResultIs(ErrorDomain::kVerify, X509_V_ERR_APPLICATION_VERIFICATION,
                                           HasSubstr("is not the issuing CA's")));
}

TEST_P(FactoryPkcs11Test, UrisThatNameNoKeyOrCarryAPinAreRefused) {
  FactoryOptions options = Options();
  options.pkcs11_uri = "pkcs11:token=line-ca";
  EXPECT_THAT(InitFactory(options),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("names no key")));
  options.pkcs11_uri = "pkcs11:token=line-ca;object=ca?pin-value=1234";
  EXPECT_THAT(InitFactory(options),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("carries a PIN")));
  options.pkcs11_uri = "pkcs11:token=no-such-token;object=ca";
  EXPECT_THAT(InitFactory(options),
              ResultIs(ErrorDomain::kPkcs11, CKR_TOKEN_NOT_PRESENT,
                       HasSubstr("has no token \"no-such-token\" (its tokens: \"line-ca\")")));
  options.pkcs11_uri = "https://example.com";
  EXPECT_THAT(InitFactory(options),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("is not a PKCS#11 URI")));
}

INSTANTIATE_TEST_SUITE_P(Algorithms, FactoryPkcs11Test,
                         ::testing::Values(KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048),
                         [](const auto& p) { return p.param == KeyAlgorithm::kEccP256 ? "Ecc" : "Rsa"; });

}  // namespace
}  // namespace idevid
