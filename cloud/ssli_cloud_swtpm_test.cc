// SSL-I from the device to the cloud on a provisioned swtpm behind tpm2-abrmd: TPM mode through
// the idevid-signer provider, file mode, tpm2-openssl as an interop peer, and the ways a session
// must fail.
#include <cstring>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "cloud/cloud_server.h"
#include "cloud/testing/server_certificate.h"
#include "core/file_io.h"
#include "core/idevid_profile.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_keys.h"
#include "core/unique_fd.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "device/config/config_parser.h"
#include "device/ssli/ssli_client.h"
#include "engine/ports.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"
#include "provisioning/provisioner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace idevid {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::IsOk;
using testing::ResultInDomain;
using testing::ResultIs;

class SsliCloudTest : public testing::TpmTestBase, public ::testing::Test {
 protected:
  void SetUp() override {
    StartTpm(testing::TpmAccess::kAbrmd, /*manufacture=*/true);
    factory_ = *InitFactory({.dir = dir() / "factory"});
    cloud_ca_ = *InitFactory({.dir = dir() / "cloud-ca", .manufacturer = "Cloud"});
    auto unit = ProvisionUnit(tpm(), *factory_, {.serial = "CW9876543210", .model = "SRX4300"});
    ASSERT_TRUE(unit) << unit.error().ToString();
    testing::WriteCloudServerCertificate(*cloud_ca_, dir());
    WriteFileCertificate();
    WriteFileCertificate("expired", "20210101000000Z");
    ASSERT_TRUE(WriteFileAtomic(dir() / "device.conf", Config()));
    config_ = *LoadDeviceConfig(dir() / "device.conf");
  }
  void TearDown() override {
    cloud_.reset();
    StopTpm();
  }

  // A file-system certificate in the same profile, issued by the factory to a software key.
  void WriteFileCertificate(const std::string& name = "fs-cert", const std::string& not_after = "") {
    auto key = GenerateKey(KeyAlgorithm::kEccP256);
    auto spec = IdevidCertificateSpec({"FS0001", "SRX4300", "Example Networks", Bytes(32, 1)});
    if (!not_after.empty()) {
      spec->not_before = "20200101000000Z";
      spec->not_after = not_after;
    }
    auto cert = IssueCertificate(*spec, **key, factory_->issuing.get(), *factory_->issuing_key);
    ASSERT_TRUE(cert);
    ASSERT_TRUE(WriteFileAtomic(dir() / (name + ".pem"), *CertificatePem(**cert)));
    ASSERT_TRUE(WritePrivateKeyPem(dir() / (name + ".key"), **key));
  }
  std::string Config() const {
    return fmt::format(
        "set security pki ca-profile cloud-ca certificate {0}/cloud-ca/root-ca.pem\n"
        "set security pki node-local local-certificate fs-cert certificate {0}/fs-cert.pem\n"
        "set security pki node-local local-certificate fs-cert private-key {0}/fs-cert.key\n"
        "set services ssl initiation profile tpm13 client-certificate idev-id\n"
        "set services ssl initiation profile tpm13 crypto-hardware-offload tpm\n"
        "set services ssl initiation profile tpm13 trusted-ca cloud-ca\n"
        "set services ssl initiation profile tpm13 server-name cloud.example\n"
        "set services ssl initiation profile tpm13 protocol-version tls13\n"
        "set services ssl initiation profile tpm12 client-certificate idev-id\n"
        "set services ssl initiation profile tpm12 crypto-hardware-offload tpm\n"
        "set services ssl initiation profile tpm12 trusted-ca cloud-ca\n"
        "set services ssl initiation profile tpm12 protocol-version tls12\n"
        "set services ssl initiation profile file client-certificate fs-cert\n"
        "set services ssl initiation profile file trusted-ca cloud-ca\n"
        "set security pki node-local local-certificate expired certificate {0}/expired.pem\n"
        "set security pki node-local local-certificate expired private-key {0}/expired.key\n"
        "set services ssl initiation profile expired client-certificate expired\n"
        "set services ssl initiation profile expired trusted-ca cloud-ca\n"
        "set services ssl initiation profile quick client-certificate fs-cert\n"
        "set services ssl initiation profile quick trusted-ca cloud-ca\n"
        "set services ssl initiation profile quick handshake-timeout 1\n",
        dir().string());
  }
  void StartCloud(const std::string& factory_ca, std::optional<std::string> inventory = std::nullopt,
                  std::chrono::milliseconds io_timeout = std::chrono::seconds(10)) {
    CloudOptions options{"127.0.0.1",          0,          dir() / "server.pem",
                         dir() / "server.key", factory_ca, std::nullopt,
                         dir() / "cloud.log",  io_timeout};
    if (inventory) {
      ASSERT_TRUE(WriteFileAtomic(dir() / "inventory.csv", *inventory));
      options.inventory = dir() / "inventory.csv";
    }
    auto cloud = CloudServer::Start(options);
    ASSERT_TRUE(cloud) << cloud.error().ToString();
    cloud_ = std::move(*cloud);
  }
  std::string FactoryCa() const { return FactoryFiles::Chain(dir() / "factory").string(); }
  Result<SsliResult> Connect(const std::string& profile, std::string tcti = "") {
    return SsliConnect({&*config_, profile, std::nullopt, tcti.empty() ? swtpm().tcti() : tcti, "127.0.0.1",
                        cloud_->port()});
  }
  std::vector<nlohmann::json> CloudLog() {
    std::vector<nlohmann::json> lines;
    std::istringstream in(ReadFileText(dir() / "cloud.log").value_or(""));
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }

  std::optional<Factory> factory_, cloud_ca_;
  std::optional<DeviceConfig> config_;
  std::unique_ptr<CloudServer> cloud_;
};

TEST_F(SsliCloudTest, TpmModeIsAcceptedAsTheUnitOverTls13AndTls12) {
  StartCloud(FactoryCa());
  for (auto [profile, protocol] : {std::pair{"tpm13", "TLSv1.3"}, std::pair{"tpm12", "TLSv1.2"}}) {
    auto result = Connect(profile);
    ASSERT_TRUE(result) << result.error().ToString();
    EXPECT_TRUE(result->accepted()) << result->verdict.dump();
    EXPECT_TRUE(result->tpm_mode);
    EXPECT_EQ(result->protocol, protocol);
    EXPECT_EQ(result->signature_scheme, "ECDSA+SHA256");
    EXPECT_EQ(result->tpm_signatures, 1u) << "the TPM signed the handshake";
    EXPECT_EQ(result->verdict["serial"], "CW9876543210");
    EXPECT_EQ(result->verdict["model"], "SRX4300");
    EXPECT_EQ(result->server_subject, "CN=cloud.example");
  }
  auto log = CloudLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0]["verdict"], "accepted");
  EXPECT_EQ(log[0]["serial"], "CW9876543210");
}

// Our client resumes with our cloud: the TPM signs the first handshake only, and each resumed
// session is judged again from the certificate of the full handshake, against the inventory as
// it is now.
TEST_F(SsliCloudTest, OurClientResumesAndEachResumedSessionIsJudgedAgainstTheInventory) {
  StartCloud(FactoryCa(), "CW9876543210,SRX4300\n");
  for (const char* profile : {"tpm13", "tpm12"}) {
    SCOPED_TRACE(profile);
    auto client =
        SsliClient::Create({&*config_, profile, std::nullopt, swtpm().tcti(), "127.0.0.1", cloud_->port()},
                           {.resume_sessions = true});
    ASSERT_TRUE(client) << client.error().ToString();
    auto first = (*client)->Connect();
    ASSERT_TRUE(first) << first.error().ToString();
    EXPECT_FALSE(first->resumed);
    EXPECT_TRUE(first->accepted()) << first->verdict.dump();
    auto second = (*client)->Connect();
    ASSERT_TRUE(second) << second.error().ToString();
    EXPECT_TRUE(second->resumed);
    EXPECT_TRUE(second->accepted()) << second->verdict.dump();
    EXPECT_EQ(second->verdict["serial"], "CW9876543210");
    EXPECT_EQ((*client)->tpm_signatures(), 1u) << "a resumed session is not signed again";

    ASSERT_TRUE(WriteFileAtomic(dir() / "inventory.csv", "CW0000000001,SRX4300\n"));
    ASSERT_TRUE(cloud_->ReloadInventory());
    auto removed = (*client)->Connect();
    ASSERT_TRUE(removed) << removed.error().ToString();
    EXPECT_TRUE(removed->resumed);
    EXPECT_EQ(removed->http_status, 403);
    EXPECT_EQ(removed->verdict["reason"], "serial CW9876543210 is not in the inventory");
    ASSERT_TRUE(WriteFileAtomic(dir() / "inventory.csv", "CW9876543210,SRX4300\n"));
    ASSERT_TRUE(cloud_->ReloadInventory());
  }
  auto log = CloudLog();
  ASSERT_EQ(log.size(), 6u);
  for (std::size_t i : {1u, 2u, 4u, 5u}) EXPECT_EQ(log[i]["resumed"], true) << log[i].dump();
  EXPECT_EQ(log[2]["verdict"], "rejected");
  EXPECT_EQ(log[2]["serial"], "CW9876543210");
}

TEST_F(SsliCloudTest, FileModeIsAcceptedAsTheFileCertificatesUnit) {
  StartCloud(FactoryCa());
  auto result = Connect("file");
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_TRUE(result->accepted()) << result->verdict.dump();
  EXPECT_FALSE(result->tpm_mode);
  EXPECT_EQ(result->verdict["serial"], "FS0001");
}

TEST_F(SsliCloudTest, Tpm2OpensslWithTheSameTpmKeyIsAcceptedToo) {
  StartCloud(FactoryCa());
  auto der = dir() / "idevid.der";
  ASSERT_EQ(RunTool({"tpm2_nvread", "0x01C90000", "-o", der.string()}).exit_status, 0);
  auto pem = dir() / "idevid.pem";
  ASSERT_TRUE(WriteFileAtomic(pem, *CertificatePem(**LoadCertificateFile(der))));
  auto env = swtpm().ClientEnvironment();
  env["TPM2OPENSSL_TCTI"] = swtpm().tcti();
  auto run = RunCommand(
      {"openssl", "s_client", "-provider", "tpm2", "-provider", "default", "-key", "handle:0x81020000",
       "-cert", pem.string(), "-CAfile", (dir() / "cloud-ca" / "root-ca.pem").string(), "-connect",
       fmt::format("127.0.0.1:{}", cloud_->port()), "-quiet"},
      env, std::chrono::seconds(60), "GET /v1/identity HTTP/1.1\r\nHost: cloud.example\r\n\r\n");
  ASSERT_TRUE(run);
  EXPECT_NE(run->out.find(R"("serial":"CW9876543210","verdict":"accepted")"), std::string::npos)
      << run->out << run->err;
}

TEST_F(SsliCloudTest, ACloudWithoutTheFactoryCaRefusesTheHandshake) {
  StartCloud(FactoryFiles::Chain(dir() / "cloud-ca").string());
  auto result = Connect("tpm13");
  // TLS 1.3: the refusal is the server's alert after the client's Finished: a verdict on the
  // unit, not an error.
  ASSERT_THAT(result, IsOk());
  ASSERT_TRUE(result->refused());
  EXPECT_EQ(result->refusal->kind, SsliRefusal::Kind::kTlsAlert);
  EXPECT_EQ(result->refusal->alert, 48) << result->refusal->reason;  // unknown_ca, RFC 8446 6.2
  EXPECT_FALSE(result->accepted());
  cloud_->Stop();
  auto log = CloudLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["verdict"], "rejected");
  EXPECT_NE(log[0]["reason"].get<std::string>().find("unable to get local issuer certificate"),
            std::string::npos)
      << log[0].dump();
}

TEST_F(SsliCloudTest, AnInventoryMismatchIsRefusedWithAJsonReason) {
  StartCloud(FactoryCa(), "serial,model\nCW9876543210,SRX1500\nFS0001,SRX4300\n");
  auto result = Connect("tpm13");
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_FALSE(result->accepted());
  EXPECT_EQ(result->http_status, 403);
  EXPECT_EQ(result->verdict["verdict"], "rejected");
  EXPECT_EQ(result->verdict["reason"], "serial CW9876543210 is a SRX1500 in the inventory, not a SRX4300");
}

TEST_F(SsliCloudTest, AKeyThatDoesNotMatchIdevidFailsBeforeTheHandshake) {
  StartCloud(FactoryCa());
  ASSERT_TRUE(UnpersistKey(tpm(), 0x81020000));
  TPM2B_PUBLIC other = IdevidKeyTemplate(KeyAlgorithm::kEccP256);
  std::memcpy(other.publicArea.unique.ecc.x.buffer, "OTHER!", 6);
  auto key = CreatePrimary(tpm(), ESYS_TR_RH_ENDORSEMENT, other);
  ASSERT_TRUE(key);
  ASSERT_TRUE(PersistKey(tpm(), key->object, 0x81020000));
  auto result = Connect("tpm13");
  EXPECT_THAT(result,
              ResultInDomain(ErrorDomain::kVerify, HasSubstr("does not match the idev-id certificate")));
  EXPECT_EQ(cloud_->connections(), 0u);
}

TEST_F(SsliCloudTest, AnUnreachableTpmFailsBeforeTheHandshake) {
  StartCloud(FactoryCa());
  auto result = Connect("tpm13", "swtpm:host=127.0.0.1,port=1");
  EXPECT_THAT(result, ResultInDomain(ErrorDomain::kTss, HasSubstr("swtpm:host=127.0.0.1,port=1")));
  EXPECT_EQ(cloud_->connections(), 0u);
}

// A TCP peer on loopback that is not a TLS server: it lets connections queue and, when asked,
// accepts one, reads what the client sends and closes (a cloud that dies mid-handshake).
class FakePeer {
 public:
  FakePeer() {
    auto opened = OpenSocket(AF_INET, SOCK_STREAM);
    EXPECT_TRUE(opened);
    if (opened) listener_ = std::move(*opened);
    int fd = listener_.get();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(::listen(fd, 4), 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~FakePeer() {
    if (closer_.joinable()) closer_.join();
  }
  std::uint16_t port() const { return port_; }
  void CloseAfterClientHello() {
    closer_ = std::thread([this] {
      UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      char buf[512];
      (void)::read(client.get(), buf, sizeof(buf));
    });
  }

 private:
  UniqueFd listener_;
  std::uint16_t port_ = 0;
  std::thread closer_;
};

TEST_F(SsliCloudTest, ACloudThatNeverAnswersFailsTheSessionAtTheProfilesHandshakeTimeout) {
  FakePeer silent;
  auto start = std::chrono::steady_clock::now();
  auto result = SsliConnect({&*config_, "quick", std::nullopt, swtpm().tcti(), "127.0.0.1", silent.port()});
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(result,
              ResultIs(ErrorDomain::kPeer, PeerCode::kTimeout,
                       HasSubstr("the cloud did not answer within the profile's handshake-timeout of 1 s")));
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  EXPECT_LT(waited, std::chrono::seconds(10)) << "the wait has a deadline";
}

TEST_F(SsliCloudTest, ACloudThatDiesMidHandshakeIsACleanTlsError) {
  FakePeer dying;
  dying.CloseAfterClientHello();
  auto result = SsliConnect({&*config_, "quick", std::nullopt, swtpm().tcti(), "127.0.0.1", dying.port()});
  EXPECT_THAT(result, ResultIs(ErrorDomain::kPeer, PeerCode::kClosed,
                               HasSubstr("the cloud closed the connection during the handshake")));
}

TEST_F(SsliCloudTest, FinishedConnectionThreadsAreReapedNotKept) {
  StartCloud(FactoryCa());
  for (int i = 0; i < 60; ++i) {
    auto session = Connect("file");
    ASSERT_TRUE(session && session->accepted());
  }
  EXPECT_EQ(cloud_->connections(), 60u);
  EXPECT_LT(cloud_->workers(), 5u) << "the cloud keeps a thread for every connection it ever had";
}

TEST_F(SsliCloudTest, EightClientsTimesFiftyTpmModeHandshakesAreAllAccepted) {
  StartCloud(FactoryCa());
  std::atomic<int> accepted{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&] {
      auto client =
          SsliClient::Create({&*config_, "tpm13", std::nullopt, swtpm().tcti(), "127.0.0.1", cloud_->port()});
      if (!client) return;
      for (int i = 0; i < 50; ++i) {
        auto result = (*client)->Connect();
        if (result && result->accepted()) ++accepted;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(accepted, 400);
  EXPECT_EQ(cloud_->connections(), 400u);
}

TEST_F(SsliCloudTest, TheCloudRejectsEachBadClientWithItsReasonInTheLog) {
  StartCloud(FactoryCa(), "serial,model\nFS0001,SRX4300\n");
  auto unknown = Connect("tpm13");  // CW9876543210 is not in the inventory
  ASSERT_TRUE(unknown) << unknown.error().ToString();
  EXPECT_EQ(unknown->http_status, 403);
  auto expired = Connect("expired");
  ASSERT_THAT(expired, IsOk());
  ASSERT_TRUE(expired->refused()) << "an expired identity is refused, a verdict on the unit";
  EXPECT_EQ(expired->refusal->kind, SsliRefusal::Kind::kTlsAlert);
  auto anonymous =
      RunCommand({"openssl", "s_client", "-connect", fmt::format("127.0.0.1:{}", cloud_->port()), "-quiet"},
                 {}, std::chrono::seconds(30), "GET /v1/identity HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->out.find("accepted"), std::string::npos) << anonymous->out;
  cloud_->Stop();
  auto log = CloudLog();
  ASSERT_EQ(log.size(), 3u);
  std::vector<std::string> reasons;
  for (const auto& line : log) {
    EXPECT_EQ(line["verdict"], "rejected") << line.dump();
    reasons.push_back(line["reason"]);
  }
  auto has = [&](const std::string& part) {
    return std::any_of(reasons.begin(), reasons.end(),
                       [&](const std::string& r) { return r.find(part) != std::string::npos; });
  };
  EXPECT_TRUE(has("serial CW9876543210 is not in the inventory")) << ::testing::PrintToString(reasons);
  EXPECT_TRUE(has("certificate has expired")) << ::testing::PrintToString(reasons);
  EXPECT_TRUE(has("peer did not return a certificate")) << ::testing::PrintToString(reasons);
}

// The cloud's own refusals of what only a broken or hostile client sends: TLS older than 1.2, a
// CA certificate (whose key the client holds) as its identity, and a handshake that never comes.
TEST_F(SsliCloudTest, TheCloudRefusesOldTlsACaAsLeafAndAStalledHandshake) {
  StartCloud(FactoryCa(), std::nullopt, std::chrono::milliseconds(500));
  std::string peer = fmt::format("127.0.0.1:{}", cloud_->port());
  auto tls11 = RunCommand(
      {"openssl", "s_client", "-connect", peer, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-cert",
       (dir() / "fs-cert.pem").string(), "-key", (dir() / "fs-cert.key").string(), "-quiet"},
      {}, std::chrono::seconds(30), "GET /v1/identity HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(tls11);
  EXPECT_EQ(tls11->out.find("accepted"), std::string::npos) << tls11->out;
  auto ca = RunCommand({"openssl", "s_client", "-connect", peer, "-cert",
                        FactoryFiles::IssuingCert(dir() / "factory").string(), "-key",
                        FactoryFiles::IssuingKey(dir() / "factory").string(), "-quiet"},
                       {}, std::chrono::seconds(30), "GET /v1/identity HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(ca);
  EXPECT_EQ(ca->out.find("\"accepted\""), std::string::npos) << ca->out;
  auto silent_socket = OpenSocket(AF_INET, SOCK_STREAM);
  ASSERT_TRUE(silent_socket);
  int silent = silent_socket->get();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(cloud_->port());
  ASSERT_EQ(::connect(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  char byte;
  timeval tv{5, 0};
  ::setsockopt(silent, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  EXPECT_EQ(::read(silent, &byte, 1), 0) << "the cloud did not drop a client that sent nothing";
  silent_socket->reset();
  cloud_->Stop();
  std::vector<std::string> reasons;
  auto log = CloudLog();
  for (const auto& line : log) reasons.push_back(line["reason"]);
  ASSERT_EQ(reasons.size(), 3u) << ::testing::PrintToString(reasons);
  EXPECT_EQ(log[0]["verdict"], "rejected") << log[0].dump();
  EXPECT_EQ(log[1]["verdict"], "rejected") << log[1].dump();
  EXPECT_TRUE(log[2]["verdict"].is_null()) << "a client that never presented itself was not judged";
  EXPECT_EQ(log[2]["outcome"], "stalled");
  EXPECT_NE(reasons[0].find("unsupported protocol"), std::string::npos) << reasons[0];
  EXPECT_EQ(reasons[1], "handshake refused: unsuitable certificate purpose");
  EXPECT_EQ(reasons[2], "the client stalled: nothing for 500 ms during the handshake");
}

TEST_F(SsliCloudTest, TpmModeNeedsTheTpmWhileFileModeDoesNot) {
  StartCloud(FactoryCa());
  // No private key of idev-id exists anywhere in the test's files: only the file certificates'.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir())) {
    if (!entry.is_regular_file()) continue;
    std::string text = ReadFileText(entry.path()).value_or("");
    if (text.find("PRIVATE KEY") == std::string::npos) continue;
    std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "fs-cert.key" || name == "expired.key" || name == "server.key" ||
                name == "root-ca.key" || name == "issuing-ca.key" ||
                entry.path().string().find("localca") != std::string::npos)
        << "unexpected private key " << entry.path();
  }
  auto client =
      SsliClient::Create({&*config_, "tpm13", std::nullopt, swtpm().tcti(), "127.0.0.1", cloud_->port()});
  ASSERT_TRUE(client) << client.error().ToString();
  ASSERT_TRUE((*client)->Connect());
  StopTpmNow();
  auto tpm_mode = (*client)->Connect();
  // A TPM-mode handshake fails without the TPM: the TPM's failure (infrastructure), not a TLS
  // verdict about the unit.
  EXPECT_THAT(tpm_mode, ResultInDomain(ErrorDomain::kTss, HasSubstr("the TPM could not sign")));
  auto file_mode = Connect("file");
  ASSERT_TRUE(file_mode) << file_mode.error().ToString();
  EXPECT_TRUE(file_mode->accepted());
}

TEST_F(SsliCloudTest, TpmModeInteroperatesWithOpensslSServerAsThePeer) {
  auto port = FindFreePort();
  ASSERT_TRUE(port);
  auto server =
      ChildProcess::Spawn({.argv = {"openssl", "s_server", "-accept", std::to_string(*port), "-cert",
                                    (dir() / "server.pem").string(), "-key", (dir() / "server.key").string(),
                                    "-cert_chain", (dir() / "cloud-ca" / "issuing-ca.pem").string(),
                                    "-Verify", "1", "-CAfile", FactoryCa(), "-www"},
                           .log = dir() / "s_server.log"});
  ASSERT_TRUE(server);
  ASSERT_TRUE(PollUntil([&] { return PortAcceptsConnections(*port); }, std::chrono::seconds(10)));
  auto result = SsliConnect({&*config_, "tpm13", std::nullopt, swtpm().tcti(), "127.0.0.1", *port});
  ASSERT_TRUE(result) << result.error().ToString() << LogTail(dir() / "s_server.log");
  EXPECT_EQ(result->http_status, 200);
  EXPECT_EQ(result->protocol, "TLSv1.3");
  EXPECT_EQ(result->tpm_signatures, 1u);
  // s_server -www prints the client certificate it verified.
  EXPECT_NE(result->body.find("Subject: O=Example Networks, CN=SRX4300/serialNumber=CW9876543210"),
            std::string::npos)
      << result->body;
}

}  // namespace
}  // namespace idevid
