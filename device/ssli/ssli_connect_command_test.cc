// `idevid ssli connect` as a user runs it, in file mode: a cloud that refuses the identity is a
// failed check (exit 1), a cloud that cannot be talked to is infrastructure (exit 2).
#include <chrono>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "device/ssli/testing/ssli_test_peer.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

class SsliConnectCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = testing::TestCa::CreateWithServerAndClient(dir_.path());
    ASSERT_TRUE(ca) << ca.error().ToString();
    ca_ = std::move(*ca);
    ASSERT_TRUE(WriteFileAtomic(
        Config(),
        fmt::format("set security pki ca-profile ca certificate {0}\n"
                    "set security pki node-local local-certificate client certificate {1}\n"
                    "set security pki node-local local-certificate client private-key {2}\n"
                    "set security pki node-local local-certificate client ca-profile ca\n"
                    "set services ssl initiation profile file client-certificate client\n"
                    "set services ssl initiation profile file trusted-ca ca\n"
                    "set services ssl initiation profile file handshake-timeout 1\n",
                    ca_->certificate().string(), ca_->Pem("client").string(), ca_->Key("client").string())));
  }
  std::filesystem::path Config() const { return dir_.path() / "device.conf"; }
  CommandOutput Connect(std::uint16_t port) {
    auto out = RunCommand({IDEVID_BINARY, "ssli", "connect", "--config", Config().string(), "--profile",
                           "file", "--peer", fmt::format("127.0.0.1:{}", port)},
                          {}, std::chrono::seconds(30));
    EXPECT_TRUE(out);
    return out.value_or(CommandOutput{});
  }

  testing::TempDir dir_;
  std::optional<testing::TestCa> ca_;
};

// A real TCP listener that accepts (the kernel completes the connection) and never says a word.
TEST_F(SsliConnectCommandTest, APeerThatAcceptsAndSaysNothingExitsTwo) {
  auto silent = testing::SilentListener::Start();
  ASSERT_TRUE(silent) << silent.error().ToString();
  auto start = std::chrono::steady_clock::now();
  auto run = Connect(silent->port());
  EXPECT_EQ(run.exit_status, 2) << run.err;
  EXPECT_NE(run.err.find("the cloud did not answer within the profile's handshake-timeout of 1 s"),
            std::string::npos)
      << run.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(SsliConnectCommandTest, NobodyListeningExitsTwo) {
  std::uint16_t port = 0;
  {
    auto gone = testing::SilentListener::Start();
    ASSERT_TRUE(gone) << gone.error().ToString();
    port = gone->port();
  }
  auto run = Connect(port);
  EXPECT_EQ(run.exit_status, 2) << run.err;
  EXPECT_NE(run.err.find("Connection refused"), std::string::npos) << run.err;
}

TEST_F(SsliConnectCommandTest, ACloudThatRefusesTheIdentityExitsOne) {
  auto server = testing::StartMisbehavingServer(dir_.path(), "server", "forbidden");
  ASSERT_TRUE(server) << server.error().ToString();
  auto run = Connect(server->port);
  EXPECT_EQ(run.exit_status, 1) << run.out << run.err;
  EXPECT_NE(run.out.find("HTTP 403"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace idevid
