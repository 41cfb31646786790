// Remote attestation end to end: a unit enrolled with an IAK on a swtpm behind tpm2-abrmd, booted
// (its PCRs 0-9 measured and its event log written), connects to a cloud with a measured-boot
// policy over SSL-I in TPM mode; the cloud challenges the session and judges the IAK quote bound
// to it.
#include <sstream>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloud/attest_policy.h"
#include "cloud/cloud_server.h"
#include "cloud/testing/server_certificate.h"
#include "core/event_log.h"
#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "device/config/config_parser.h"
#include "device/ssli/ssli_client.h"
#include "engine/boot_profile.h"
#include "engine/synthetic_boot.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/enrolment_authority.h"
#include "provisioning/enrolment_station.h"
#include "provisioning/factory.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;
using testing::ResultIs;
using ::testing::StartsWith;

constexpr char kSerial[] = "CW0000000042";

class AttestationTest : public testing::TpmTestBase, public ::testing::Test {
 protected:
  void SetUp() override {
    StartTpm(testing::TpmAccess::kAbrmd, /*manufacture=*/true);
    auto boot = BootUnitAndWriteLog(swtpm().tcti(), DefaultBootProfile(), LogPath());
    ASSERT_THAT(boot, IsOk());
    ASSERT_THAT(InitFactory({.dir = dir() / "factory"}), IsOk());
    auto factory = LoadFactory(dir() / "factory");
    ASSERT_THAT(factory, IsOk());
    auto authority =
        EnrolmentAuthority::Create(std::move(*factory), {.tpm_vendor_cas = {swtpm().vendor_ca()}});
    ASSERT_THAT(authority, IsOk());
    auto enrolled = EnrolUnit(tpm(), **authority, {.serial = kSerial, .model = "SRX4300"});
    ASSERT_THAT(enrolled, IsOk());
    ASSERT_FALSE(enrolled->refusal) << enrolled->refusal->reason;
    cloud_ca_ = *InitFactory({.dir = dir() / "cloud-ca", .manufacturer = "Cloud"});
    testing::WriteCloudServerCertificate(*cloud_ca_, dir());
    AttestPolicy policy = PolicyFromLog(*boot, "golden", BootPcrSelection());
    ASSERT_THAT(WriteFileAtomic(dir() / "policy.yaml", AttestPolicyYaml(policy)), IsOk());
  }
  void TearDown() override {
    cloud_.reset();
    StopTpm();
  }

  std::filesystem::path LogPath() const { return dir() / "boot-log.bin"; }

  // The unit's configuration: TPM mode over TLS 1.3, attesting with `pcrs` when given.
  DeviceConfig Config(bool attest = true, const std::string& pcrs = "") {
    std::string text = fmt::format(
        "set security pki ca-profile cloud-ca certificate {0}/cloud-ca/root-ca.pem\n"
        "set services ssl initiation profile tpm client-certificate idev-id\n"
        "set services ssl initiation profile tpm crypto-hardware-offload tpm\n"
        "set services ssl initiation profile tpm trusted-ca cloud-ca\n"
        "set services ssl initiation profile tpm server-name cloud.example\n"
        "set services ssl initiation profile tpm protocol-version tls13\n",
        dir().string());
    if (attest)
      text += fmt::format("set security pki node-local attestation event-log {}\n", LogPath().string());
    if (!pcrs.empty()) text += fmt::format("set security pki node-local attestation pcrs {}\n", pcrs);
    auto config = ParseDeviceConfig(text, "device.conf");
    EXPECT_THAT(config, IsOk());
    return *config;
  }
  void StartCloud(bool with_policy = true) {
    CloudOptions options{.certificate = dir() / "server.pem",
                         .private_key = dir() / "server.key",
                         .factory_ca = FactoryFiles::Chain(dir() / "factory"),
                         .log = dir() / "cloud.log"};
    if (with_policy) options.attest_policy = dir() / "policy.yaml";
    auto cloud = CloudServer::Start(options);
    ASSERT_THAT(cloud, IsOk());
    cloud_ = std::move(*cloud);
  }
  Result<SsliResult> Connect(const DeviceConfig& config, AttestationHook prove = nullptr) {
    return SsliConnect({&config, "tpm", std::nullopt, swtpm().tcti(), "127.0.0.1", cloud_->port()},
                       {.prove = std::move(prove)});
  }
  std::vector<nlohmann::json> CloudLog() {
    std::vector<nlohmann::json> lines;
    std::istringstream in(ReadFileText(dir() / "cloud.log").value_or(""));
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }

  std::optional<Factory> cloud_ca_;
  std::unique_ptr<CloudServer> cloud_;
};

TEST_F(AttestationTest, AGoodUnitIsAttestedOnTheSessionOfItsIdentity) {
  StartCloud();
  DeviceConfig config = Config();
  auto result = Connect(config);
  ASSERT_THAT(result, IsOk());
  EXPECT_TRUE(result->attested()) << result->body;
  EXPECT_TRUE(result->accepted());
  EXPECT_FALSE(result->refused());
  ASSERT_TRUE(result->challenge);
  EXPECT_EQ((*result->challenge)["pcrs"], "sha256:0,1,2,3,4,5,6,7,8,9");
  EXPECT_EQ(result->http_status, 200);
  EXPECT_EQ(result->verdict["policy"], "golden");
  EXPECT_EQ(result->verdict["serial"], kSerial);
  auto log = CloudLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["verdict"], "accepted");
  EXPECT_EQ(log[0]["attestation"], "attested");
  EXPECT_EQ(log[0]["attestation_policy"], "golden");
  EXPECT_EQ(log[0]["status"], 200);
  EXPECT_EQ(log[0]["served"], "/v1/attestation");
}

TEST_F(AttestationTest, ALogWithOneDigestChangedIsRefusedWithEventLogReplay) {
  StartCloud();
  DeviceConfig config = Config();
  auto result =
      Connect(config,
              [](const AttestationChallenge& challenge, std::span<const std::uint8_t> exporter,
                 const AttestationProver& genuine) -> Result<AttestationEvidence> {
                IDEVID_ASSIGN_OR_RETURN(AttestationEvidence evidence, genuine.Prove(challenge, exporter));
                IDEVID_ASSIGN_OR_RETURN(EventLog log, ParseEventLog(evidence.event_log));
                for (LogEvent& event : log.events) {
                  if (event.type != kEvNoAction && event.pcr == 4) {
                    event.digests[kAlgSha256][0] ^= 0x01;
                    break;
                  }
                }
                evidence.event_log = EncodeEventLog(log.events);
                return evidence;
              });
  ASSERT_THAT(result, IsOk());
  EXPECT_FALSE(result->attested());
  ASSERT_TRUE(result->refused()) << result->body;
  EXPECT_EQ(result->refusal->kind, SsliRefusal::Kind::kHttpVerdict);
  EXPECT_THAT(result->refusal->reason, StartsWith("HTTP 403: event-log-replay: "));
  auto log = CloudLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["attestation"], "refused");
  EXPECT_EQ(log[0]["attestation_findings"][0]["id"], "event-log-replay") << log[0].dump();
}

TEST_F(AttestationTest, EvidenceReplayedFromAnEarlierSessionIsRefusedWithQualifyingData) {
  StartCloud();
  DeviceConfig config = Config();
  std::optional<AttestationEvidence> earlier;
  auto first =
      Connect(config,
              [&](const AttestationChallenge& challenge, std::span<const std::uint8_t> exporter,
                  const AttestationProver& genuine) -> Result<AttestationEvidence> {
                IDEVID_ASSIGN_OR_RETURN(AttestationEvidence evidence, genuine.Prove(challenge, exporter));
                earlier = evidence;
                return evidence;
              });
  ASSERT_THAT(first, IsOk());
  ASSERT_TRUE(first->attested()) << first->body;
  ASSERT_TRUE(earlier);
  auto replayed = Connect(config,
                          [&](const AttestationChallenge&, std::span<const std::uint8_t>,
                              const AttestationProver&) -> Result<AttestationEvidence> { return *earlier; });
  ASSERT_THAT(replayed, IsOk());
  ASSERT_TRUE(replayed->refused()) << replayed->body;
  EXPECT_THAT(replayed->refusal->reason, StartsWith("HTTP 403: qualifying-data: "));
}

TEST_F(AttestationTest, ACloudWithoutAPolicyAnswersTheIdentityAsBefore) {
  StartCloud(/*with_policy=*/false);
  DeviceConfig config = Config();
  auto result = Connect(config);
  ASSERT_THAT(result, IsOk());
  EXPECT_TRUE(result->accepted()) << result->body;
  EXPECT_FALSE(result->challenge);
  EXPECT_FALSE(result->attested());
  EXPECT_EQ(result->verdict["verdict"], "accepted");
  auto log = CloudLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_FALSE(log[0].contains("attestation"));
  EXPECT_EQ(log[0]["served"], "/v1/identity");
}

TEST_F(AttestationTest, ADeviceWithoutAttestationRefusesTheChallenge) {
  StartCloud();
  DeviceConfig config = Config(/*attest=*/false);
  auto result = Connect(config);
  ASSERT_THAT(result, IsOk());
  ASSERT_TRUE(result->refused());
  EXPECT_THAT(result->refusal->reason, HasSubstr("this device is not configured for attestation"));
}

TEST_F(AttestationTest, AChallengeForPcrsTheDeviceDoesNotAllowIsRefusedByTheDevice) {
  StartCloud();
  DeviceConfig config = Config(/*attest=*/true, "sha256:0,1,2,3,4,5,6,7");
  EXPECT_THAT(
      Connect(config),
      ResultIs(ErrorDomain::kConfig, ConfigCode::kConflict,
               HasSubstr("the cloud asks for a quote of sha256:0,1,2,3,4,5,6,7,8,9, but the attestation "
                         "configuration allows sha256:0,1,2,3,4,5,6,7 only (not PCR 8,9)")));
}

}  // namespace
}  // namespace idevid
