// The cloud with the factory's CRL and ledger, against curl and openssl s_client holding file-mode
// device identities (no TPM): revoked units and clones refused on full and resumed handshakes, a
// CRL replaced while the cloud runs taken, a bad replacement kept out.
#include <signal.h>

#include <chrono>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cloud/cloud_server.h"
#include "cloud/testing/server_certificate.h"
#include "core/file_io.h"
#include "core/ledger.h"
#include "core/testing/result_matchers.h"
#include "core/utc_time.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "core/x509_crl.h"
#include "engine/postgres_instance.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"
#include "provisioning/file_identity.h"

namespace idevid {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class CloudRevocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    factory_ = *InitFactory({.dir = dir() / "factory"});
    auto cloud_ca = InitFactory({.dir = dir() / "cloud-ca", .manufacturer = "Cloud"});
    ASSERT_TRUE(cloud_ca);
    testing::WriteCloudServerCertificate(*cloud_ca, dir());
    device_ = WriteIdentity("device", "CW0001");
  }

  const std::filesystem::path& dir() const { return temp_.path(); }

  // A file-mode identity of unit `serial` issued by the factory, as NAME.pem and NAME.key.
  ossl::Cert WriteIdentity(const std::string& name, const std::string& serial) {
    auto identity = IssueFileIdentity(*factory_, {.serial = serial, .model = "SRX4300"});
    EXPECT_TRUE(identity) << identity.error().ToString();
    EXPECT_TRUE(WriteFileAtomic(dir() / (name + ".pem"), *CertificatePem(*identity->certificate)));
    EXPECT_TRUE(WritePrivateKeyPem(dir() / (name + ".key"), *identity->key));
    return std::move(identity->certificate);
  }

  // The factory's CRL number `number` listing `revoked` (keyCompromise), signed by `signer`
  // (the factory by default), written atomically to crl.pem.
  void WriteCrl(std::uint64_t number, const std::vector<const X509*>& revoked,
                const Factory* signer = nullptr, CrlClock::time_point next_update = CrlClock::now() + 24h) {
    signer = signer != nullptr ? signer : &*factory_;
    CrlContent content{.number = number, .this_update = now_ - 1h, .next_update = next_update};
    for (const X509* cert : revoked) {
      content.entries.push_back({CertificateSerialHex(*cert), RevocationReason::kKeyCompromise, revoked_at_});
    }
    auto crl = BuildCrl(content, *signer->issuing, *signer->issuing_key);
    ASSERT_TRUE(crl) << crl.error().ToString();
    ASSERT_TRUE(WriteFileAtomic(CrlPath(), *CrlPem(**crl)));
  }
  std::filesystem::path CrlPath() const { return dir() / "crl.pem"; }

  CloudOptions Options() const {
    return {.host = "127.0.0.1",
            .certificate = dir() / "server.pem",
            .private_key = dir() / "server.key",
            .factory_ca = FactoryFiles::Chain(dir() / "factory"),
            .log = dir() / "cloud.log"};
  }
  void StartCloud(CloudOptions options) {
    auto cloud = CloudServer::Start(options);
    ASSERT_TRUE(cloud) << cloud.error().ToString();
    cloud_ = std::move(*cloud);
  }

  // curl with identity NAME: the HTTP answer, headers first.
  std::string Curl(const std::string& name = "device") {
    auto run =
        RunCommand({"curl", "-sS", "-i", "--cacert", (dir() / "cloud-ca" / "root-ca.pem").string(), "--cert",
                    (dir() / (name + ".pem")).string(), "--key", (dir() / (name + ".key")).string(),
                    fmt::format("https://127.0.0.1:{}/v1/identity", cloud_->port())},
                   {}, 30s);
    EXPECT_TRUE(run);
    return run ? run->out + run->err : "";
  }
  // openssl s_client with the device's identity sending GET /v1/identity.
  std::string SClient(std::vector<std::string> args) {
    std::vector<std::string> argv = {"openssl",  "s_client",
                                     "-connect", fmt::format("127.0.0.1:{}", cloud_->port()),
                                     "-cert",    (dir() / "device.pem").string(),
                                     "-key",     (dir() / "device.key").string(),
                                     "-CAfile",  (dir() / "cloud-ca" / "root-ca.pem").string(),
                                     "-ign_eof"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto run = RunCommand(argv, {}, 30s, "GET /v1/identity HTTP/1.1\r\nHost: cloud.example\r\n\r\n");
    EXPECT_TRUE(run);
    return run ? run->out + run->err : "";
  }
  std::vector<nlohmann::json> StopAndReadLog() {
    cloud_->Stop();
    std::vector<nlohmann::json> lines;
    std::istringstream in(ReadFileText(dir() / "cloud.log").value_or(""));
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }
  std::string RevokedEvidence() const { return "revoked: keyCompromise since " + UtcTimestamp(revoked_at_); }

  testing::TempDir temp_;
  std::optional<Factory> factory_;
  ossl::Cert device_;
  std::unique_ptr<CloudServer> cloud_;
  CrlClock::time_point now_ = std::chrono::floor<std::chrono::seconds>(CrlClock::now());
  CrlClock::time_point revoked_at_ = now_ - 30min;
};

// --- The CRL ---

TEST_F(CloudRevocationTest, ARevokedUnitIsRefusedWithItsReasonAndAGoodOneAccepted) {
  WriteIdentity("good", "CW0002");
  WriteCrl(1, {device_.get()});
  CloudOptions options = Options();
  options.crl = CrlPath();
  StartCloud(options);
  std::string revoked = Curl();
  EXPECT_THAT(revoked, HasSubstr("HTTP/1.1 403 Forbidden"));
  EXPECT_THAT(revoked, HasSubstr(RevokedEvidence()));
  std::string good = Curl("good");
  EXPECT_THAT(good, HasSubstr("HTTP/1.1 200 OK"));
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0]["verdict"], "rejected");
  EXPECT_EQ(log[0]["reason"], RevokedEvidence());
  ASSERT_EQ(log[0]["findings"].size(), 1u) << log[0].dump();
  EXPECT_EQ(log[0]["findings"][0]["id"], "revoked");
  EXPECT_EQ(log[1]["verdict"], "accepted");
  EXPECT_EQ(log[1]["serial"], "CW0002");
}

TEST_F(CloudRevocationTest, ACloudRefusesToStartWithACrlThatDoesNotVerify) {
  auto other = InitFactory({.dir = dir() / "other"});
  ASSERT_TRUE(other);
  WriteCrl(1, {device_.get()}, &*other);
  CloudOptions options = Options();
  options.crl = CrlPath();
  EXPECT_THAT(CloudServer::Start(options), testing::ResultIs(ErrorDomain::kConfig, ConfigCode::kFile,
                                                             HasSubstr("signature does not verify")));
  WriteCrl(1, {device_.get()}, nullptr, now_ - 10min);
  EXPECT_THAT(CloudServer::Start(options),
              testing::ResultIs(ErrorDomain::kConfig, ConfigCode::kFile, HasSubstr("the CRL is stale")));
}

TEST_F(CloudRevocationTest, ACrlReplacedWhileTheCloudRunsIsTakenAndABadReplacementKeptOut) {
  WriteCrl(1, {});
  CloudOptions options = Options();
  options.crl = CrlPath();
  StartCloud(options);
  EXPECT_THAT(Curl(), HasSubstr("HTTP/1.1 200 OK"));
  WriteCrl(2, {device_.get()});  // a new file: picked up before the next connection is judged
  EXPECT_THAT(Curl(), HasSubstr(RevokedEvidence()));
  auto other = InitFactory({.dir = dir() / "other"});
  ASSERT_TRUE(other);
  WriteCrl(3, {}, &*other);  // signed by another key: the CRL number 2 stays
  EXPECT_THAT(Curl(), HasSubstr(RevokedEvidence()));
  EXPECT_THAT(cloud_->ReloadCrl(), testing::ResultIs(ErrorDomain::kConfig, ConfigCode::kFile,
                                                     HasSubstr("signature does not verify")));
  EXPECT_THAT(Curl(), HasSubstr(RevokedEvidence()));
  WriteCrl(4, {});  // a good one again, read on demand (as SIGHUP does)
  ASSERT_TRUE(cloud_->ReloadCrl());
  EXPECT_THAT(Curl(), HasSubstr("HTTP/1.1 200 OK"));
}

TEST_F(CloudRevocationTest, ACrlThatGoesStaleStillAppliesAndTheCloudWarnsOfIt) {
  WriteIdentity("good", "CW0002");
  auto next_update = std::chrono::ceil<std::chrono::seconds>(CrlClock::now()) + 2s;
  WriteCrl(7, {device_.get()}, nullptr, next_update);
  CloudOptions options = Options();
  options.crl = CrlPath();
  StartCloud(options);
  // The CRL's time runs out while the cloud holds it (a wait for the clock, not for readiness).
  std::this_thread::sleep_until(next_update + 1100ms);
  EXPECT_THAT(Curl(), HasSubstr(RevokedEvidence()));
  std::string good = Curl("good");
  EXPECT_THAT(good, HasSubstr("HTTP/1.1 200 OK"));
  auto stale = fmt::format("the CRL number 7 is stale since {}", UtcTimestamp(next_update));
  EXPECT_THAT(good, HasSubstr(stale));
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1]["verdict"], "accepted");
  ASSERT_EQ(log[1]["findings"].size(), 1u) << log[1].dump();
  EXPECT_EQ(log[1]["findings"][0]["id"], "crl-stale");
  EXPECT_EQ(log[1]["findings"][0]["severity"], "warning");
}

class CloudRevocationResumptionTest : public CloudRevocationTest,
                                      public ::testing::WithParamInterface<std::string> {};

TEST_P(CloudRevocationResumptionTest, AUnitRevokedSinceItsFullHandshakeIsRefusedOnResumption) {
  WriteCrl(1, {});
  CloudOptions options = Options();
  options.crl = CrlPath();
  StartCloud(options);
  std::string session = (dir() / "session.pem").string();
  std::string first = SClient({GetParam(), "-sess_out", session});
  ASSERT_THAT(first, HasSubstr("HTTP/1.1 200 OK"));
  WriteCrl(2, {device_.get()});
  std::string second = SClient({GetParam(), "-sess_in", session});
  EXPECT_THAT(second, HasSubstr("Reused, TLSv1."));
  EXPECT_THAT(second, HasSubstr("HTTP/1.1 403 Forbidden"));
  EXPECT_THAT(second, HasSubstr(RevokedEvidence()));
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1]["resumed"], true);
  EXPECT_EQ(log[1]["reason"], RevokedEvidence());
}

INSTANTIATE_TEST_SUITE_P(Tls, CloudRevocationResumptionTest, ::testing::Values("-tls1_3", "-tls1_2"),
                         [](const auto& test) { return test.param == "-tls1_3" ? "Tls13" : "Tls12"; });

// --- The ledger ---

class CloudLedgerTest : public CloudRevocationTest {
 protected:
  void SetUp() override {
    CloudRevocationTest::SetUp();
    UseLedger("sqlite:" + (dir() / "ledger.sqlite").string());
  }
  // Opens the ledger `spec` and records the device in it.
  void UseLedger(std::string spec) {
    spec_ = std::move(spec);
    auto ledger = OpenLedger(spec_);
    ASSERT_TRUE(ledger) << ledger.error().ToString();
    ledger_ = std::move(*ledger);
    Record("CW0001", *device_, 1);
  }
  // Records unit `serial` with `cert` as the line does: reserved, issued, committed.
  void Record(const std::string& serial, const X509& cert, int tpm) {
    std::string ek = fmt::format("{:064x}", tpm);
    ASSERT_TRUE(ledger_->Reserve({.serial = serial, .model = "SRX4300", .station = "st-1", .ek_sha256 = ek}));
    auto issued = ledger_->RecordIssued({.serial = serial,
                                         .ek_sha256 = ek,
                                         .station = "st-1",
                                         .idevid_key_sha256 = *PublicKeySha256(*X509_get0_pubkey(&cert)),
                                         .certificate_serial = CertificateSerialHex(cert),
                                         .certificate = *CertificateDer(cert)});
    ASSERT_TRUE(issued && std::holds_alternative<UnitRow>(*issued));
    auto committed = ledger_->Commit(
        {.serial = serial, .ek_sha256 = ek, .station = "st-1", .line_check = "PASS", .record = {}});
    ASSERT_TRUE(committed && std::holds_alternative<UnitRow>(*committed));
  }
  CloudOptions LedgerOptions() const {
    CloudOptions options = Options();
    options.ledger = spec_;
    return options;
  }

  std::string spec_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(CloudLedgerTest, TheLedgersUnitIsAcceptedAndASecondIdentityWithItsSerialIsAClone) {
  // The same factory CA, the same serial, issued outside the ledger: a valid chain, a clone.
  ossl::Cert clone = WriteIdentity("clone", "CW0001");
  StartCloud(LedgerOptions());
  EXPECT_THAT(Curl(), HasSubstr("HTTP/1.1 200 OK"));
  std::string refused = Curl("clone");
  EXPECT_THAT(refused, HasSubstr("HTTP/1.1 403 Forbidden"));
  std::string evidence = fmt::format(
      "clone: serial CW0001 is held by another identity (certificate serial {}, EK "
      "sha256 {:064x})",
      CertificateSerialHex(*device_), 1);
  EXPECT_THAT(refused, HasSubstr(evidence));
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1]["findings"][0]["id"], "clone");
  EXPECT_EQ(log[1]["reason"], evidence);
}

TEST_F(CloudLedgerTest, ASerialTheLedgerDoesNotKnowIsRefused) {
  WriteIdentity("stranger", "CW0999");
  StartCloud(LedgerOptions());
  std::string refused = Curl("stranger");
  EXPECT_THAT(refused, HasSubstr("HTTP/1.1 403 Forbidden"));
  EXPECT_THAT(refused, HasSubstr("serial CW0999 is unknown to the ledger"));
}

TEST_F(CloudLedgerTest, AUnitRevokedInTheLedgerIsRefusedAtOnceAlsoOnResumption) {
  StartCloud(LedgerOptions());
  std::string session = (dir() / "session.pem").string();
  ASSERT_THAT(SClient({"-sess_out", session}), HasSubstr("HTTP/1.1 200 OK"));
  auto revoked = ledger_->Revoke("CW0001", RevocationReason::kKeyCompromise, revoked_at_);
  ASSERT_TRUE(revoked && std::holds_alternative<UnitRow>(*revoked));
  EXPECT_THAT(Curl(), HasSubstr(RevokedEvidence()));
  std::string resumed = SClient({"-sess_in", session});
  EXPECT_THAT(resumed, HasSubstr("Reused, TLSv1."));
  EXPECT_THAT(resumed, HasSubstr(RevokedEvidence()));
}

TEST_F(CloudLedgerTest, WithBothTheCrlAndTheLedgerARevokedUnitHasOneFinding) {
  ASSERT_TRUE(ledger_->Revoke("CW0001", RevocationReason::kKeyCompromise, revoked_at_));
  WriteCrl(1, {device_.get()});
  CloudOptions options = LedgerOptions();
  options.crl = CrlPath();
  StartCloud(options);
  EXPECT_THAT(Curl(), HasSubstr(RevokedEvidence()));
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["findings"].size(), 1u) << log[0].dump();
}

TEST_F(CloudLedgerTest, ALedgerThatCannotBeOpenedStopsTheStart) {
  CloudOptions options = Options();
  options.ledger = "mysql://nowhere";
  EXPECT_THAT(CloudServer::Start(options),
              testing::ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("mysql")));
}

// The same with the ledger on PostgreSQL, as for many stations: and while the database is away the
// cloud cannot decide (503 with Retry-After, verdict "unavailable", the finding ledger-unavailable
// in its log) rather than refuse the unit; once it is back, units are judged again.
class CloudPostgresLedgerTest : public CloudLedgerTest {
 protected:
  void SetUp() override {
    CloudRevocationTest::SetUp();
    auto started = PostgresInstance::Start();
    ASSERT_TRUE(started) << started.error().ToString();
    postgres_.emplace(std::move(*started));
    auto spec = postgres_->CreateDatabase("cloud");
    ASSERT_TRUE(spec) << spec.error().ToString();
    UseLedger(*spec);
  }
  void TearDown() override {
    if (cloud_) cloud_->Stop();
    cloud_.reset();
    ledger_.reset();
  }
  std::optional<PostgresInstance> postgres_;
};

TEST_F(CloudPostgresLedgerTest, ACloneIsRefusedAndADatabaseThatIsGoneIsUnavailableUntilItIsBack) {
  WriteIdentity("clone", "CW0001");
  StartCloud(LedgerOptions());
  EXPECT_THAT(Curl(), HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(Curl("clone"), HasSubstr("clone: serial CW0001 is held by another identity"));
  ASSERT_TRUE(postgres_->StopServer());
  std::string gone = Curl();
  EXPECT_THAT(gone, HasSubstr("HTTP/1.1 503 Service Unavailable"));
  EXPECT_THAT(gone, HasSubstr("Retry-After: 5"));
  EXPECT_THAT(gone, HasSubstr(R"("verdict":"unavailable")"));
  EXPECT_THAT(gone, HasSubstr("cannot be asked about serial CW0001"));
  ASSERT_TRUE(postgres_->StartServer());
  EXPECT_THAT(Curl(), HasSubstr("HTTP/1.1 200 OK"));
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[1]["verdict"], "rejected");
  EXPECT_EQ(log[2]["verdict"], "unavailable");
  EXPECT_EQ(log[2]["status"], 503);
  ASSERT_EQ(log[2]["findings"].size(), 1u) << log[2].dump();
  EXPECT_EQ(log[2]["findings"][0]["id"], "ledger-unavailable");
  EXPECT_EQ(log[3]["verdict"], "accepted");
}

}  // namespace
}  // namespace idevid
