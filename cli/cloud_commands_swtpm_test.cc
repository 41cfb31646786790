// `idevid cloud`, `idevid pkid` and `idevid ssli connect` as separate processes, as on a bench:
// TPM mode through pkid's certificate and key reference, exit codes, and a clean stop.
#include <signal.h>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;

class CloudCommandsTest : public testing::TpmTestBase, public ::testing::Test {
 protected:
  void SetUp() override {
    StartTpm(testing::TpmAccess::kAbrmd, /*manufacture=*/true);
    factory_ = *InitFactory({.dir = dir() / "factory"});
    ASSERT_TRUE(ProvisionUnit(tpm(), *factory_, {.serial = "CW7", .model = "SRX4300"}));
    auto key = GenerateKey(KeyAlgorithm::kEccP256);
    // The cloud is reached as 127.0.0.1, the name SSL-I checks by default.
    auto cert = IssueCertificate({.subject = {{"CN", "cloud"}},
                                  .not_after = "20991231235959Z",
                                  .extensions = {{"subjectAltName", "IP:127.0.0.1"}}},
                                 **key, factory_->issuing.get(), *factory_->issuing_key);
    ASSERT_TRUE(
        WriteFileAtomic(dir() / "server.pem", *CertificatePem(**cert) + *CertificatePem(*factory_->issuing)));
    ASSERT_TRUE(WritePrivateKeyPem(dir() / "server.key", **key));
    ASSERT_TRUE(
        WriteFileAtomic(dir() / "device.conf",
                        fmt::format("set security pki ca-profile ca certificate {0}/factory/root-ca.pem\n"
                                    "set services ssl initiation profile tpm client-certificate idev-id\n"
                                    "set services ssl initiation profile tpm crypto-hardware-offload tpm\n"
                                    "set services ssl initiation profile tpm trusted-ca ca\n",
                                    dir().string())));
  }
  void TearDown() override {
    pkid_.Stop();
    cloud_.Stop();
    StopTpm();
  }
  ChildProcess Start(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), IDEVID_BINARY);
    auto env = swtpm().ClientEnvironment();
    env["TSS2_LOG"] = "all+NONE";
    auto child = ChildProcess::Spawn({.argv = args, .log = dir() / (name + ".log"), .env = env});
    EXPECT_TRUE(child);
    return std::move(*child);
  }
  std::uint16_t StartCloud() {
    cloud_ = Start("cloud", {"cloud", "--cert", (dir() / "server.pem").string(), "--key",
                             (dir() / "server.key").string(), "--factory-ca",
                             FactoryFiles::Chain(dir() / "factory").string(), "--log",
                             (dir() / "cloud.jsonl").string()});
    std::string prefix = "listening on 127.0.0.1:";
    EXPECT_TRUE(PollUntil([&] { return LogTail(dir() / "cloud.log").find(prefix) != std::string::npos; },
                          std::chrono::seconds(10)));
    std::string log = LogTail(dir() / "cloud.log");
    return static_cast<std::uint16_t>(std::stoi(log.substr(log.find(prefix) + prefix.size())));
  }
  void StartPkid(const std::string& tcti) {
    pkid_ = Start(
        "pkid", {"pkid", "--tcti", tcti, "--config", (dir() / "device.conf").string(), "--socket", Socket()});
    EXPECT_TRUE(PollUntil([&] { return std::filesystem::exists(Socket()); }, std::chrono::seconds(10)));
  }
  CommandOutput Connect(std::uint16_t port) {
    auto out = RunCommand({IDEVID_BINARY, "ssli", "connect", "--config", (dir() / "device.conf").string(),
                           "--profile", "tpm", "--socket", Socket(), "--tcti", swtpm().tcti(), "--peer",
                           fmt::format("127.0.0.1:{}", port), "--json"},
                          swtpm().ClientEnvironment(), std::chrono::seconds(60));
    EXPECT_TRUE(out);
    return out.value_or(CommandOutput{});
  }
  std::string Socket() const { return (dir() / "pkid.sock").string(); }

  std::optional<Factory> factory_;
  ChildProcess cloud_, pkid_;
};

TEST_F(CloudCommandsTest, TpmModeThroughPkidIsAcceptedAndTheCloudStopsCleanly) {
  std::uint16_t port = StartCloud();
  StartPkid(swtpm().tcti());
  auto connected = Connect(port);
  ASSERT_EQ(connected.exit_status, 0) << connected.out << connected.err;
  auto result = nlohmann::json::parse(connected.out);
  EXPECT_EQ(result["mode"], "tpm");
  EXPECT_EQ(result["cloud"]["serial"], "CW7");
  EXPECT_EQ(result["cloud"]["verdict"], "accepted");
  EXPECT_EQ(result["tpm_signatures"], 1);
  ::kill(cloud_.pid(), SIGTERM);
  ASSERT_TRUE(PollUntil([&] { return cloud_.Ended().has_value(); }, std::chrono::seconds(10)));
  EXPECT_EQ(*cloud_.Ended(), "exited with status 0");
  EXPECT_THAT(LogTail(dir() / "cloud.log"), HasSubstr("stopped after 1 connections"));
}

TEST_F(CloudCommandsTest, IdevidNotLoadedInPkidFailsBeforeTheHandshake) {
  std::uint16_t port = StartCloud();
  StartPkid("swtpm:host=127.0.0.1,port=1");
  auto connected = Connect(port);
  EXPECT_EQ(connected.exit_status, 1);
  EXPECT_THAT(connected.err,
              HasSubstr("pkid cannot give certificate-id idev-id: certificate-id idev-id is not loaded"));
  EXPECT_EQ(ReadFileText(dir() / "cloud.jsonl").value_or(""), "") << "no connection was made";
}

}  // namespace
}  // namespace idevid
