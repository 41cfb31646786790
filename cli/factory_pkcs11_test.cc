// `idevid factory init --pkcs11` and the commands that load such a factory, as a user runs them
// against a private SoftHSM2 token: identities that `openssl verify` accepts, the PIN from a file
// or the environment only, and a token that refuses the PIN or goes away mid-batch stopping the
// command (exit 2) with the token's CK_RV and no identity written; a unit revoked with a CRL signed
// in the token, and the ledger read without the PIN.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "core/file_io.h"
#include "engine/process.h"
#include "engine/softhsm_token.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPin = "line-7-pin-2291";

class FactoryPkcs11CommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto token = SoftHsmToken::Create({.dir = temp_.path() / "hsm", .label = "line-7", .pin = kPin});
    ASSERT_TRUE(token) << token.error().ToString();
    token_ = std::move(*token);
    ASSERT_TRUE(WriteFileAtomic(PinFile(), std::string(kPin) + "\n", 0600));
  }
  CommandOutput Idevid(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), IDEVID_BINARY);
    env.merge(token_->Environment());
    auto out = RunCommand(args, env, std::chrono::seconds(60));
    EXPECT_TRUE(out) << out.error().ToString();
    CommandOutput result = out.value_or(CommandOutput{});
    EXPECT_THAT(result.out + result.err, Not(HasSubstr(kPin))) << "a PIN was printed";
    return result;
  }
  CommandOutput Init(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "factory", "init", "--dir", Dir(), "--pkcs11", token_->Uri("ca"), "--pkcs11-pin-file", PinFile()};
    args.insert(args.end(), extra.begin(), extra.end());
    return Idevid(args);
  }
  CommandOutput Issue(const std::string& serial, std::map<std::string, std::string> env = {},
                      std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"factory", "issue",   "--dir",   Dir(),   "--serial",
                                     serial,    "--model", "SRX4300", "--out", Prefix(serial)};
    args.insert(args.end(), extra.begin(), extra.end());
    return Idevid(args, std::move(env));
  }
  std::string Verify(const std::string& serial) {
    auto out = RunCommand({"openssl", "verify", "-CAfile", FactoryFiles::RootCert(Dir()).string(),
                           "-untrusted", FactoryFiles::IssuingCert(Dir()).string(), Prefix(serial) + ".pem"});
    return out ? out->out + out->err : out.error().ToString();
  }
  std::string Dir() const { return (temp_.path() / "factory").string(); }
  std::string PinFile() const { return (temp_.path() / "pin").string(); }
  std::string Prefix(const std::string& serial) const { return (temp_.path() / serial).string(); }
  std::string Module() const { return SoftHsmToken::ModulePath().string(); }

  testing::TempDir temp_;
  std::optional<SoftHsmToken> token_;
};

TEST_F(FactoryPkcs11CommandTest, IdentitiesIssuedThroughTheTokenVerify) {
  auto init = Init({"--pkcs11-module", Module()});
  ASSERT_EQ(init.exit_status, 0) << init.err;
  EXPECT_THAT(init.out, HasSubstr("keys in the token: pkcs11:token=line-7;object=ca"));
  EXPECT_FALSE(std::filesystem::exists(FactoryFiles::IssuingKey(Dir())));
  auto with_file = Issue("CW0001", {}, {"--pkcs11-pin-file", PinFile()});
  ASSERT_EQ(with_file.exit_status, 0) << with_file.err;
  EXPECT_EQ(Verify("CW0001"), Prefix("CW0001") + ".pem: OK\n");
  auto with_env = Issue("CW0002", {{"IDEVID_PKCS11_PIN", kPin}});
  ASSERT_EQ(with_env.exit_status, 0) << with_env.err;
  EXPECT_EQ(Verify("CW0002"), Prefix("CW0002") + ".pem: OK\n");
}

TEST_F(FactoryPkcs11CommandTest, TheDefaultModuleIsP11KitsProxyWhichFindsSoftHsm) {
  auto init = Init();
  ASSERT_EQ(init.exit_status, 0) << init.err;
  auto record = ReadFileText(FactoryFiles::Record(Dir()));
  ASSERT_TRUE(record);
  EXPECT_THAT(*record, HasSubstr("p11-kit-proxy.so"));
  auto issued = Issue("CW0003", {{"IDEVID_PKCS11_PIN", kPin}});
  ASSERT_EQ(issued.exit_status, 0) << issued.err;
  EXPECT_EQ(Verify("CW0003"), Prefix("CW0003") + ".pem: OK\n");
}

TEST_F(FactoryPkcs11CommandTest, AWrongOrMissingPinStopsTheCommand) {
  ASSERT_EQ(Init({"--pkcs11-module", Module()}).exit_status, 0);
  auto wrong = Issue("CW0004", {{"IDEVID_PKCS11_PIN", "wrong-pin-5512"}});
  EXPECT_EQ(wrong.exit_status, 2);
  EXPECT_THAT(wrong.err, HasSubstr("CKR_PIN_INCORRECT: the token refused the PIN; give the user PIN in "
                                   "IDEVID_PKCS11_PIN or --pkcs11-pin-file"));
  EXPECT_THAT(wrong.err, Not(HasSubstr("wrong-pin-5512")));
  EXPECT_FALSE(std::filesystem::exists(Prefix("CW0004") + ".pem"));
  auto missing = Issue("CW0005");
  EXPECT_EQ(missing.exit_status, 4);
  EXPECT_THAT(missing.err, HasSubstr("set IDEVID_PKCS11_PIN or give --pkcs11-pin-file"));
  EXPECT_EQ(Idevid({"factory", "init", "--dir", Dir(), "--pkcs11-module", Module()}).exit_status, 4)
      << "--pkcs11-module needs --pkcs11";
}

TEST_F(FactoryPkcs11CommandTest, ATokenGoneMidBatchIssuesNothingMore) {
  ASSERT_EQ(Init({"--pkcs11-module", Module()}).exit_status, 0);
  ASSERT_EQ(Issue("CW0006", {{"IDEVID_PKCS11_PIN", kPin}}).exit_status, 0);
  ASSERT_TRUE(token_->Delete());
  auto gone = Issue("CW0007", {{"IDEVID_PKCS11_PIN", kPin}});
  EXPECT_EQ(gone.exit_status, 2);
  EXPECT_THAT(gone.err, HasSubstr("CKR_TOKEN_NOT_PRESENT"));
  EXPECT_THAT(gone.err, HasSubstr("has no token \"line-7\""));
  for (const char* suffix : {".pem", "-chain.pem", ".key"}) {
    EXPECT_FALSE(std::filesystem::exists(Prefix("CW0007") + suffix)) << suffix;
  }
}

// The ledger is read from the factory record alone (no PIN); revoking a unit signs the CRL with the
// issuing key in the token, and OpenSSL verifies that CRL and finds the unit's certificate revoked.
TEST_F(FactoryPkcs11CommandTest, ARevokedUnitIsInACrlSignedInTheToken) {
  ASSERT_EQ(Init({"--pkcs11-module", Module()}).exit_status, 0);
  auto spec = FactoryLedgerSpec(Dir());
  ASSERT_TRUE(spec) << spec.error().ToString();
  auto issued = Issue("CW0008", {}, {"--pkcs11-pin-file", PinFile(), "--ledger", *spec, "--station", "st"});
  ASSERT_EQ(issued.exit_status, 0) << issued.out << issued.err;
  auto shown = Idevid({"ledger", "show", "--factory", Dir(), "--serial", "CW0008"});
  EXPECT_EQ(shown.exit_status, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("CW0008"));
  auto revoked = Idevid({"factory", "revoke", "--dir", Dir(), "--serial", "CW0008", "--reason",
                         "keyCompromise", "--pkcs11-pin-file", PinFile()});
  ASSERT_EQ(revoked.exit_status, 0) << revoked.out << revoked.err;
  std::string crl = (std::filesystem::path(Dir()) / "crl.pem").string();
  std::string chain = FactoryFiles::Chain(Dir()).string();
  auto signature = RunCommand({"openssl", "crl", "-in", crl, "-CAfile", chain, "-noout"});
  ASSERT_TRUE(signature);
  EXPECT_EQ(signature->exit_status, 0) << signature->err;
  EXPECT_THAT(signature->out + signature->err, HasSubstr("verify OK"));
  auto verify = RunCommand(
      {"openssl", "verify", "-crl_check", "-CAfile", chain, "-CRLfile", crl, Prefix("CW0008") + ".pem"});
  ASSERT_TRUE(verify);
  EXPECT_NE(verify->exit_status, 0);
  EXPECT_THAT(verify->out + verify->err, HasSubstr("certificate revoked"));
  std::string again = (temp_.path() / "again.pem").string();
  auto written = Idevid({"factory", "crl", "--dir", Dir(), "--out", again}, {{"IDEVID_PKCS11_PIN", kPin}});
  ASSERT_EQ(written.exit_status, 0) << written.err;
  EXPECT_THAT(written.out, HasSubstr("CRL number 2 (1 revoked"));
}

}  // namespace
}  // namespace idevid
