// `idevid factory revoke`, `idevid factory crl` and `idevid cloud --crl` as separate processes:
// exit codes, what OpenSSL's tools read in the CRL, and a running cloud that reads it again on SIGHUP.
#include <signal.h>

#include <chrono>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cloud/testing/server_certificate.h"
#include "core/file_io.h"
#include "core/ledger.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "core/x509_crl.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"
#include "provisioning/file_identity.h"

namespace idevid {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class RevocationCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto factory = InitFactory({.dir = dir() / "factory"});
    ASSERT_TRUE(factory);
    factory_ = std::move(*factory);
    unit_ = Issue("unit", "CW0001");
    auto ledger = OpenLedger(factory_->ledger);
    ASSERT_TRUE(ledger) << ledger.error().ToString();
    std::string ek(64, 'e');
    ASSERT_TRUE(
        (*ledger)->Reserve({.serial = "CW0001", .model = "SRX4300", .station = "st", .ek_sha256 = ek}));
    ASSERT_TRUE(
        (*ledger)->RecordIssued({.serial = "CW0001",
                                 .ek_sha256 = ek,
                                 .station = "st",
                                 .idevid_key_sha256 = *PublicKeySha256(*X509_get0_pubkey(unit_.get())),
                                 .certificate_serial = CertificateSerialHex(*unit_),
                                 .certificate = *CertificateDer(*unit_)}));
    ASSERT_TRUE(
        (*ledger)->Commit({.serial = "CW0001", .ek_sha256 = ek, .station = "st", .line_check = "PASS"}));
    // A unit reserved and never issued: nothing to revoke.
    ASSERT_TRUE((*ledger)->Reserve(
        {.serial = "CW0002", .model = "SRX4300", .station = "st", .ek_sha256 = std::string(64, 'f')}));
  }
  void TearDown() override { cloud_.Stop(); }

  const std::filesystem::path& dir() const { return temp_.path(); }
  std::string Factory() const { return (dir() / "factory").string(); }

  ossl::Cert Issue(const std::string& name, const std::string& serial) {
    auto identity = IssueFileIdentity(*factory_, {.serial = serial, .model = "SRX4300"});
    EXPECT_TRUE(identity);
    EXPECT_TRUE(WriteFileAtomic(dir() / (name + ".pem"), *CertificatePem(*identity->certificate)));
    EXPECT_TRUE(WritePrivateKeyPem(dir() / (name + ".key"), *identity->key));
    return std::move(identity->certificate);
  }
  static CommandOutput Run(const std::vector<std::string>& argv) {
    auto out = RunCommand(argv, {}, 60s);
    EXPECT_TRUE(out) << out.error().ToString();
    return out.value_or(CommandOutput{});
  }
  static CommandOutput Idevid(std::vector<std::string> args) {
    args.insert(args.begin(), IDEVID_BINARY);
    return Run(args);
  }
  CommandOutput Revoke(const std::string& serial, const std::string& reason,
                       std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"factory",  "revoke", "--dir",    Factory(),
                                     "--serial", serial,   "--reason", reason};
    args.insert(args.end(), extra.begin(), extra.end());
    return Idevid(args);
  }
  CommandOutput OpensslVerify(const std::string& crl, const std::string& cert) {
    return Run({"openssl", "verify", "-crl_check", "-CAfile", FactoryFiles::Chain(Factory()).string(),
                "-CRLfile", crl, cert});
  }

  // `idevid cloud --crl CRL` on a free port; returns the port.
  std::uint16_t StartCloud(const std::filesystem::path& crl) {
    auto cloud_ca = InitFactory({.dir = dir() / "cloud-ca", .manufacturer = "Cloud"});
    EXPECT_TRUE(cloud_ca);
    testing::WriteCloudServerCertificate(*cloud_ca, dir());
    auto child =
        ChildProcess::Spawn({.argv = {IDEVID_BINARY, "cloud", "--cert", (dir() / "server.pem").string(),
                                      "--key", (dir() / "server.key").string(), "--factory-ca",
                                      FactoryFiles::Chain(Factory()).string(), "--crl", crl.string()},
                             .log = dir() / "cloud.log"});
    EXPECT_TRUE(child);
    cloud_ = std::move(*child);
    std::string prefix = "listening on 127.0.0.1:";
    EXPECT_TRUE(
        PollUntil([&] { return LogTail(dir() / "cloud.log").find(prefix) != std::string::npos; }, 10s));
    std::string log = LogTail(dir() / "cloud.log");
    return static_cast<std::uint16_t>(std::stoi(log.substr(log.find(prefix) + prefix.size())));
  }
  std::string Curl(std::uint16_t port) {
    auto run = Run({"curl", "-sS", "--cacert", (dir() / "cloud-ca" / "root-ca.pem").string(), "--cert",
                    (dir() / "unit.pem").string(), "--key", (dir() / "unit.key").string(),
                    fmt::format("https://127.0.0.1:{}/v1/identity", port)});
    return run.out + run.err;
  }

  testing::TempDir temp_;
  std::optional<idevid::Factory> factory_;
  ossl::Cert unit_;
  ChildProcess cloud_;
};

TEST_F(RevocationCommandsTest, RevokeWritesTheCrlThatOpensslReadsAsOurs) {
  CommandOutput revoked = Revoke("CW0001", "keyCompromise");
  ASSERT_EQ(revoked.exit_status, 0) << revoked.out << revoked.err;
  EXPECT_THAT(revoked.out, HasSubstr("revoked CW0001 (certificate serial " + CertificateSerialHex(*unit_) +
                                     "): keyCompromise since "));
  std::string crl = (dir() / "factory" / "crl.pem").string();
  EXPECT_THAT(revoked.out, HasSubstr("CRL number 1 (1 revoked, next update "));
  EXPECT_THAT(revoked.out, HasSubstr(crl));
  CommandOutput text = Run({"openssl", "crl", "-in", crl, "-noout", "-text"});
  EXPECT_THAT(text.out, HasSubstr("Key Compromise"));
  EXPECT_THAT(text.out, HasSubstr("X509v3 CRL Number: \n                1"));
  CommandOutput verify = OpensslVerify(crl, (dir() / "unit.pem").string());
  EXPECT_NE(verify.exit_status, 0);
  EXPECT_THAT(verify.out + verify.err, HasSubstr("certificate revoked"));
  Issue("other", "CW0003");
  CommandOutput other = OpensslVerify(crl, (dir() / "other.pem").string());
  EXPECT_EQ(other.exit_status, 0) << other.out << other.err;
}

TEST_F(RevocationCommandsTest, RevokingAgainKeepsTheFirstReasonAndTakesANewCrlNumber) {
  ASSERT_EQ(Revoke("CW0001", "keyCompromise").exit_status, 0);
  CommandOutput again = Revoke("CW0001", "superseded", {"--json"});
  ASSERT_EQ(again.exit_status, 0) << again.err;
  auto j = nlohmann::json::parse(again.out);
  EXPECT_EQ(j["reason"], "keyCompromise");
  EXPECT_EQ(j["earlier"], true);
  EXPECT_EQ(j["crl"]["number"], 2);
  EXPECT_EQ(j["crl"]["entries"], 1);
}

TEST_F(RevocationCommandsTest, AnUnknownOrNeverIssuedSerialIsARefusalNotAnError) {
  CommandOutput unknown = Revoke("CW9999", "keyCompromise");
  EXPECT_EQ(unknown.exit_status, 1) << unknown.out << unknown.err;
  EXPECT_THAT(unknown.out, HasSubstr("refused: unknown-serial: no unit has serial \"CW9999\""));
  CommandOutput reserved = Revoke("CW0002", "keyCompromise");
  EXPECT_EQ(reserved.exit_status, 1) << reserved.out << reserved.err;
  EXPECT_THAT(reserved.out, HasSubstr("refused: wrong-state:"));
  EXPECT_FALSE(std::filesystem::exists(dir() / "factory" / "crl.pem"));
}

TEST_F(RevocationCommandsTest, AnUnknownReasonIsAUsageErrorListingRfc5280sNames) {
  CommandOutput run = Revoke("CW0001", "stolen");
  EXPECT_EQ(run.exit_status, 4);
  EXPECT_THAT(run.err,
              HasSubstr("--reason: \"stolen\" is not a revocation reason (RFC 5280 5.3.1); use one of "
                        "unspecified, keyCompromise, cACompromise"));
  CommandOutput remove = Revoke("CW0001", "removeFromCRL");
  EXPECT_EQ(remove.exit_status, 4);
  EXPECT_THAT(remove.err, HasSubstr("not a reason to revoke"));
}

TEST_F(RevocationCommandsTest, CrlWritesTheCurrentCrlAsPemOrDer) {
  ASSERT_EQ(Revoke("CW0001", "cessationOfOperation").exit_status, 0);
  std::string der = (dir() / "crl.der").string();
  CommandOutput made =
      Idevid({"factory", "crl", "--dir", Factory(), "--out", der, "--der", "--next-update", "2"});
  ASSERT_EQ(made.exit_status, 0) << made.err;
  EXPECT_THAT(made.out, HasSubstr("CRL number 2 (1 revoked"));
  CommandOutput text = Run({"openssl", "crl", "-inform", "DER", "-in", der, "-noout", "-text"});
  EXPECT_THAT(text.out, HasSubstr("Cessation Of Operation"));
  auto crl = LoadCrlFile(der);
  ASSERT_TRUE(crl);
  auto content = ReadCrl(**crl);
  ASSERT_TRUE(content);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::hours>(content->next_update - content->this_update), 48h);
}

TEST_F(RevocationCommandsTest, TheCloudRefusesToStartWithACrlOfAnotherFactory) {
  auto other = InitFactory({.dir = dir() / "other"});
  ASSERT_TRUE(other);
  auto crl = BuildCrl({.number = 1, .this_update = CrlClock::now(), .next_update = CrlClock::now() + 24h},
                      *other->issuing, *other->issuing_key);
  ASSERT_TRUE(crl);
  ASSERT_TRUE(WriteFileAtomic(dir() / "other.crl", *CrlPem(**crl)));
  auto cloud_ca = InitFactory({.dir = dir() / "cloud-ca", .manufacturer = "Cloud"});
  testing::WriteCloudServerCertificate(*cloud_ca, dir());
  CommandOutput run = Idevid(
      {"cloud", "--cert", (dir() / "server.pem").string(), "--key", (dir() / "server.key").string(),
       "--factory-ca", FactoryFiles::Chain(Factory()).string(), "--crl", (dir() / "other.crl").string()});
  EXPECT_EQ(run.exit_status, 4);
  EXPECT_THAT(run.err, HasSubstr("signature does not verify"));
}

TEST_F(RevocationCommandsTest, ARunningCloudReadsTheCrlAgainOnSighup) {
  CommandOutput first = Idevid({"factory", "crl", "--dir", Factory(), "--out", (dir() / "crl.pem").string()});
  ASSERT_EQ(first.exit_status, 0) << first.err;
  std::uint16_t port = StartCloud(dir() / "crl.pem");
  EXPECT_THAT(Curl(port), HasSubstr("\"verdict\":\"accepted\""));
  ASSERT_EQ(Revoke("CW0001", "keyCompromise").exit_status, 0);
  // The factory's new CRL copied over the cloud's, and SIGHUP (the cloud would also see the file
  // change before the next connection).
  ASSERT_TRUE(std::filesystem::copy_file(dir() / "factory" / "crl.pem", dir() / "crl.pem",
                                         std::filesystem::copy_options::overwrite_existing));
  ::kill(cloud_.pid(), SIGHUP);
  EXPECT_TRUE(PollUntil(
      [&] { return LogTail(dir() / "cloud.log").find("CRL read again") != std::string::npos; }, 10s))
      << LogTail(dir() / "cloud.log");
  EXPECT_THAT(Curl(port), HasSubstr("revoked: keyCompromise since "));
  // A CRL that does not verify: reported, and the one held stays.
  ASSERT_TRUE(WriteFileAtomic(dir() / "crl.pem", std::string("not a CRL")));
  ::kill(cloud_.pid(), SIGHUP);
  EXPECT_TRUE(
      PollUntil([&] { return LogTail(dir() / "cloud.log").find("is not taken") != std::string::npos; }, 10s))
      << LogTail(dir() / "cloud.log");
  EXPECT_THAT(Curl(port), HasSubstr("revoked: keyCompromise since "));
}

}  // namespace
}  // namespace idevid
