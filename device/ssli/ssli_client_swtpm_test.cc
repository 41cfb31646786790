// The SSL-I client in TPM mode against `openssl s_server` on a provisioned swtpm (behind
// tpm2-abrmd): the server must prove the expected name (the profile's server-name, else the host
// dialled) before the TPM signs anything, and a resumed session spares the TPM a signature.
#include "device/ssli/ssli_client.h"

#include <openssl/ssl.h>

#include <fmt/format.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"

#include "device/ssli/testing/ssli_test_peer.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

class SsliClientTpmTest : public testing::TpmTestBase, public ::testing::Test {
 protected:
  void SetUp() override {
    StartTpm(testing::TpmAccess::kAbrmd, /*manufacture=*/true);
    auto factory = InitFactory({.dir = dir() / "factory"});
    ASSERT_TRUE(factory) << factory.error().ToString();
    auto unit = ProvisionUnit(tpm(), *factory, {.serial = "CW0000000042", .model = "SRX4300"});
    ASSERT_TRUE(unit) << unit.error().ToString();
    auto ca = testing::TestCa::Create(dir(), "cloud-ca");
    ASSERT_TRUE(ca) << ca.error().ToString();
    ca_ = std::move(*ca);
    ASSERT_TRUE(ca_->IssueServer("localhost", "DNS:localhost"));
    ASSERT_TRUE(ca_->IssueServer("cloud.example", "DNS:cloud.example"));
    ASSERT_TRUE(ca_->IssueServer("loopback", "IP:127.0.0.1"));
    ASSERT_TRUE(ca_->IssueServer("elsewhere", "DNS:localhost,IP:192.0.2.7"));
    config_.ca_profiles["cloud-ca"] = {.name = "cloud-ca", .certificate = ca_->certificate().string()};
    AddProfile("tpm", "", TlsVersions::kAll);
    AddProfile("tpm12", "", TlsVersions::kTls12);
    AddProfile("named", "cloud.example", TlsVersions::kAll);
    AddProfile("misnamed", "other.example", TlsVersions::kAll);
  }
  void TearDown() override { StopTpm(); }

  void AddProfile(const std::string& name, const std::string& server_name, TlsVersions versions) {
    config_.ssl_profiles[name] = {.name = name,
                                  .client_certificate = kIdevidCertificateId,
                                  .tpm_offload = true,
                                  .trusted_ca = "cloud-ca",
                                  .server_name = server_name,
                                  .versions = versions};
  }
  // s_server with the server certificate `name`, asking for the unit's idev-id.
  testing::TlsPeer Serve(const std::string& name) {
    auto peer = testing::StartOpensslServer(dir(), name, FactoryFiles::Chain(dir() / "factory"));
    EXPECT_TRUE(peer) << peer.error().ToString();
    return peer ? std::move(*peer) : testing::TlsPeer{};
  }
  std::unique_ptr<SsliClient> Client(const std::string& profile, const std::string& host, std::uint16_t port,
                                     const SsliClientOptions& options = {}) {
    auto client = SsliClient::Create({&config_, profile, std::nullopt, swtpm().tcti(), host, port}, options);
    EXPECT_TRUE(client) << client.error().ToString();
    return client ? std::move(*client) : nullptr;
  }
  static void ExpectRefusedBeforeSigning(const Result<SsliResult>& result, const SsliClient& client,
                                         const std::string& message_start) {
    // The bench's peer failed the device's check of it: an error (kVerify), never a verdict on the unit.
    EXPECT_THAT(result, testing::ResultInDomain(ErrorDomain::kVerify, ::testing::StartsWith(message_start)))
        << "a server without the expected name was accepted";
    EXPECT_EQ(client.tpm_signatures(), 0u) << "the TPM signed for a server that did not prove its name";
  }

  std::optional<testing::TestCa> ca_;
  DeviceConfig config_;
};

TEST_F(SsliClientTpmTest, AServerWithTheDialledDnsNameIsAcceptedAndTheTpmSigns) {
  auto server = Serve("localhost");
  auto client = Client("tpm", "localhost", server.port);
  ASSERT_TRUE(client);
  auto result = client->Connect();
  ASSERT_TRUE(result) << result.error().ToString() << LogTail(server.log);
  EXPECT_EQ(result->http_status, 200);
  EXPECT_EQ(result->tpm_signatures, 1u) << "s_server asked for the client certificate";
  EXPECT_NE(result->body.find("serialNumber=CW0000000042"), std::string::npos) << result->body;
}

TEST_F(SsliClientTpmTest, AServerWithAnotherDnsNameIsRefusedBeforeTheTpmSigns) {
  auto server = Serve("cloud.example");  // a certificate from the trusted CA, for another name
  auto client = Client("tpm", "localhost", server.port);
  ASSERT_TRUE(client);
  ExpectRefusedBeforeSigning(
      client->Connect(), *client,
      fmt::format("TLS handshake with localhost:{} failed: the server's certificate is not for name "
                  "\"localhost\" (it is for DNS:cloud.example); set server-name in ssl initiation "
                  "profile tpm, or connect to the cloud by the name in its certificate",
                  server.port));
}

TEST_F(SsliClientTpmTest, TlsVersion12AlsoRefusesTheWrongNameBeforeSigning) {
  auto server = Serve("cloud.example");
  auto client = Client("tpm12", "localhost", server.port);
  ASSERT_TRUE(client);
  ExpectRefusedBeforeSigning(client->Connect(), *client,
                             fmt::format("TLS handshake with localhost:{} failed: the server's "
                                         "certificate is not for name \"localhost\"",
                                         server.port));
}

TEST_F(SsliClientTpmTest, AServerWithTheDialledIpAddressIsAccepted) {
  auto server = Serve("loopback");
  auto client = Client("tpm", "127.0.0.1", server.port);
  ASSERT_TRUE(client);
  auto result = client->Connect();
  ASSERT_TRUE(result) << result.error().ToString() << LogTail(server.log);
  EXPECT_EQ(result->http_status, 200);
  EXPECT_EQ(result->tpm_signatures, 1u);
}

TEST_F(SsliClientTpmTest, AServerWithAnotherIpAddressIsRefusedBeforeTheTpmSigns) {
  auto server = Serve("elsewhere");  // DNS:localhost does not stand for 127.0.0.1
  auto client = Client("tpm", "127.0.0.1", server.port);
  ASSERT_TRUE(client);
  ExpectRefusedBeforeSigning(
      client->Connect(), *client,
      fmt::format("TLS handshake with 127.0.0.1:{} failed: the server's certificate is not for "
                  "address \"127.0.0.1\" (it is for DNS:localhost, IP:192.0.2.7)",
                  server.port));
}

TEST_F(SsliClientTpmTest, TheProfilesServerNameOverridesTheDialledHost) {
  auto server = Serve("cloud.example");  // no IP address in it
  auto client = Client("named", "127.0.0.1", server.port);
  ASSERT_TRUE(client);
  auto result = client->Connect();
  ASSERT_TRUE(result) << result.error().ToString() << LogTail(server.log);
  EXPECT_EQ(result->tpm_signatures, 1u);
  auto refused = Client("misnamed", "127.0.0.1", server.port);
  ASSERT_TRUE(refused);
  ExpectRefusedBeforeSigning(
      refused->Connect(), *refused,
      fmt::format("TLS handshake with 127.0.0.1:{} failed: the server's certificate is not for name "
                  "\"other.example\" (it is for DNS:cloud.example); set server-name in ssl "
                  "initiation profile misnamed to a name the server's certificate carries",
                  server.port));
}

class SsliResumptionTest : public SsliClientTpmTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(SsliResumptionTest, TheSecondSessionIsResumedAndTheTpmSignsOnce) {
  auto server = Serve("loopback");
  auto client = Client(GetParam(), "127.0.0.1", server.port, {.resume_sessions = true});
  ASSERT_TRUE(client);
  auto first = client->Connect();
  ASSERT_TRUE(first) << first.error().ToString() << LogTail(server.log);
  EXPECT_FALSE(first->resumed);
  EXPECT_EQ(first->tpm_signatures, 1u);
  for (int i = 0; i < 2; ++i) {
    auto again = client->Connect();
    ASSERT_TRUE(again) << again.error().ToString() << LogTail(server.log);
    EXPECT_TRUE(again->resumed) << "session " << i + 2 << " was a full handshake";
    EXPECT_EQ(again->tpm_signatures, 0u);
    EXPECT_EQ(again->http_status, 200);
    EXPECT_EQ(again->server_subject, first->server_subject);
    // s_server still knows the client: the session carries the certificate it verified.
    EXPECT_NE(again->body.find("serialNumber=CW0000000042"), std::string::npos) << again->body;
  }
  EXPECT_EQ(client->tpm_signatures(), 1u) << "the TPM signed once for three sessions";
}

TEST_P(SsliResumptionTest, AServerThatCannotResumeTheSessionMustProveItsNameAgain) {
  auto server = Serve("loopback");
  std::uint16_t port = server.port;
  auto client = Client(GetParam(), "127.0.0.1", port, {.resume_sessions = true});
  ASSERT_TRUE(client);
  auto first = client->Connect();
  ASSERT_TRUE(first) << first.error().ToString() << LogTail(server.log);
  server.process.Stop();
  // Another holder of a certificate from the trusted CA takes the port: it does not know the
  // session, so the handshake is a full one and the name check refuses it before the TPM signs.
  auto impostor =
      testing::StartOpensslServer(dir(), "elsewhere", FactoryFiles::Chain(dir() / "factory"), {}, port);
  ASSERT_TRUE(impostor) << impostor.error().ToString();
  EXPECT_THAT(client->Connect(),
              testing::ResultInDomain(ErrorDomain::kVerify, ::testing::StartsWith(fmt::format(
                                                                "TLS handshake with 127.0.0.1:{} failed: the "
                                                                "server's certificate is not for address "
                                                                "\"127.0.0.1\"",
                                                                port))))
      << "the client resumed with a server that did not prove its name";
  EXPECT_EQ(client->tpm_signatures(), 1u) << "the TPM signed for the impostor";
}

TEST_P(SsliResumptionTest, WithoutTheOptionEverySessionIsAFullHandshake) {
  auto server = Serve("loopback");
  auto client = Client(GetParam(), "127.0.0.1", server.port);
  ASSERT_TRUE(client);
  for (int i = 0; i < 2; ++i) {
    auto result = client->Connect();
    ASSERT_TRUE(result) << result.error().ToString() << LogTail(server.log);
    EXPECT_FALSE(result->resumed);
    EXPECT_EQ(result->tpm_signatures, 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, SsliResumptionTest, ::testing::Values("tpm", "tpm12"),
                         [](const auto& test) {
                           return std::string(test.param) == "tpm" ? "Tls13" : "Tls12";
                         });

}  // namespace
}  // namespace idevid
