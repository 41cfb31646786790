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
#include "core/idevid_profile.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_keys.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "device/config/config_parser.h"
#include "device/ssli/ssli_client.h"
#include "engine/boot_profile.h"
#include "engine/process.h"
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

// The hook's other inputs, as the scenarios use them: a quote by another key than the IAK, and
// evidence larger than the cloud reads.
TEST_F(AttestationTest, AQuoteByTheIdevidKeyIsRefusedWithQuoteSignature) {
  StartCloud();
  DeviceConfig config = Config();
  auto result = Connect(config, [](const AttestationChallenge& challenge,
                                   std::span<const std::uint8_t> exporter, const AttestationProver& genuine) {
    return genuine.Make({0x81020000, challenge.pcrs, SessionBinding(challenge.nonce, exporter)});
  });
  ASSERT_THAT(result, IsOk());
  ASSERT_TRUE(result->refused()) << result->body;
  EXPECT_THAT(result->refusal->reason, StartsWith("HTTP 403: quote-signature: "));
}

TEST_F(AttestationTest, EvidenceOverTheLimitIsRefusedWith413) {
  StartCloud();
  DeviceConfig config = Config();
  auto result =
      Connect(config,
              [](const AttestationChallenge& challenge, std::span<const std::uint8_t> exporter,
                 const AttestationProver& genuine) -> Result<AttestationEvidence> {
                IDEVID_ASSIGN_OR_RETURN(AttestationEvidence evidence, genuine.Prove(challenge, exporter));
                evidence.event_log.resize(kMaxEvidenceBytes);
                return evidence;
              });
  ASSERT_THAT(result, IsOk());
  ASSERT_TRUE(result->refused()) << result->body;
  EXPECT_EQ(result->http_status, 413);
  EXPECT_THAT(result->refusal->reason, StartsWith("HTTP 413: evidence-too-large: the evidence of "));
  auto log = CloudLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["attestation_findings"][0]["id"], "evidence-too-large");
}

// A python3 ssl client holding a file-mode identity of the factory: GET /v1/identity, the
// challenge read by its Content-Length on the open connection, then `second` sent as is; prints
// the challenge's status line and headers, then the answer to `second`.
constexpr const char* kRawClient = R"PY(
import socket, ssl, sys
cert, key, port, second = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
context.load_cert_chain(cert, key)
tls = context.wrap_socket(socket.create_connection(("127.0.0.1", port)))
tls.sendall(b"GET /v1/identity HTTP/1.1\r\nHost: cloud.example\r\n\r\n")
data = b""
while b"\r\n\r\n" not in data:
    data += tls.recv(4096)
head, body = data.split(b"\r\n\r\n", 1)
length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
while len(body) < length:
    body += tls.recv(4096)
print(head.decode())
tls.sendall(second)
answer = b""
while True:
    chunk = tls.recv(4096)
    if not chunk:
        break
    answer += chunk
print(answer.decode())
)PY";

TEST_F(AttestationTest, AnHttpClientSeesTheChallengeAndTheRefusalsOfBadEvidenceRequests) {
  StartCloud();
  auto factory = LoadFactory(dir() / "factory");
  ASSERT_THAT(factory, IsOk());
  auto key = GenerateKey(KeyAlgorithm::kEccP256);
  auto spec = IdevidCertificateSpec({"FS0001", "SRX4300", "Example Networks", Bytes(32, 1)});
  auto cert = IssueCertificate(*spec, **key, factory->issuing.get(), *factory->issuing_key);
  ASSERT_THAT(cert, IsOk());
  ASSERT_THAT(WriteFileAtomic(dir() / "fs.pem", *CertificatePem(**cert)), IsOk());
  ASSERT_THAT(WritePrivateKeyPem(dir() / "fs.key", **key), IsOk());
  ASSERT_THAT(WriteFileAtomic(dir() / "client.py", kRawClient), IsOk());
  auto run = [&](const std::string& second) {
    auto ran = RunCommand({"python3", (dir() / "client.py").string(), (dir() / "fs.pem").string(),
                           (dir() / "fs.key").string(), std::to_string(cloud_->port()), second});
    EXPECT_THAT(ran, IsOk());
    EXPECT_EQ(ran->exit_status, 0) << ran->err;
    return ran->out;
  };
  std::string malformed =
      run("POST /v1/attestation HTTP/1.1\r\nHost: cloud.example\r\nContent-Length: 1\r\n\r\n{");
  EXPECT_THAT(malformed, StartsWith("HTTP/1.1 401 Unauthorized\r\n"));
  EXPECT_THAT(malformed, HasSubstr("\r\nWWW-Authenticate: IDevID-Attestation version=\"1\""));
  EXPECT_THAT(malformed, HasSubstr("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(malformed, HasSubstr("\"reason\":\"evidence-malformed: "));
  std::string wrong_method = run("GET /v1/attestation HTTP/1.1\r\nHost: cloud.example\r\n\r\n");
  EXPECT_THAT(wrong_method, HasSubstr("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_THAT(wrong_method, HasSubstr("\r\nAllow: POST\r\n"));
  EXPECT_THAT(wrong_method, HasSubstr("\"reason\":\"evidence-request: method \\\"GET\\\" is not allowed"));
  auto log = CloudLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0]["attestation_findings"][0]["id"], "evidence-malformed");
  EXPECT_EQ(log[1]["status"], 405);
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
