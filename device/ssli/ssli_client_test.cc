// The SSL-I client's limits against a python3 TLS server that misbehaves on purpose: an answer
// larger than any verdict is cut off at the cap, and an answer trickled below the per-read
// timeout still ends at the session's deadline. File mode: no TPM is involved.
#include "device/ssli/ssli_client.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "device/ssli/testing/ssli_test_peer.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class SsliClientLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = testing::TestCa::Create(dir_.path());
    ASSERT_TRUE(ca) << ca.error().ToString();
    ca_ = std::move(*ca);
    ASSERT_TRUE(ca_->IssueServer("server", "IP:127.0.0.1"));
    ASSERT_TRUE(ca_->IssueClient("client"));
    config_.ca_profiles["ca"] = {.name = "ca", .certificate = ca_->certificate().string()};
    config_.local_certificates["client"] = {.id = "client", .certificate = ca_->Pem("client").string(),
                                            .private_key = ca_->Key("client").string(), .ca_profile = "ca"};
    config_.ssl_profiles["file"] = {.name = "file", .client_certificate = "client", .trusted_ca = "ca",
                                    .handshake_timeout_seconds = 1};
  }
  Result<SsliResult> Connect(std::uint16_t port, const SsliClientOptions& options = {}) {
    return SsliConnect({&config_, "file", std::nullopt, "", "127.0.0.1", port}, options);
  }
  static long MaxRssKib() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
  }

  testing::TempDir dir_;
  std::optional<testing::TestCa> ca_;
  DeviceConfig config_;
};

TEST_F(SsliClientLimitsTest, AHugeAnswerIsCutOffAtTheCapWithBoundedMemory) {
  auto server = testing::StartMisbehavingServer(dir_.path(), "server", "huge");
  ASSERT_TRUE(server) << server.error().ToString();
  long before = MaxRssKib();
  auto result = Connect(server->port);
  long grown_kib = MaxRssKib() - before;
  ASSERT_FALSE(result) << "a 50 MB answer was taken whole";
  EXPECT_EQ(result.error().domain(), ErrorDomain::kTls) << result.error().ToString();
  EXPECT_EQ(result.error().message().rfind("the cloud's response exceeds 65536 bytes", 0), 0u)
      << result.error().message();
  EXPECT_LT(grown_kib, 16 * 1024) << "reading the answer grew the client by " << grown_kib << " KiB";
}

TEST_F(SsliClientLimitsTest, TheResponseCapIsAnOption) {
  auto server = testing::StartMisbehavingServer(dir_.path(), "server", "huge");
  ASSERT_TRUE(server) << server.error().ToString();
  auto result = Connect(server->port, {.max_response_bytes = 1000});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message().rfind("the cloud's response exceeds 1000 bytes", 0), 0u)
      << result.error().message();
}

TEST_F(SsliClientLimitsTest, AnAnswerTrickledBelowThePerReadTimeoutEndsAtTheSessionDeadline) {
  auto server = testing::StartMisbehavingServer(dir_.path(), "server", "trickle");
  ASSERT_TRUE(server) << server.error().ToString();
  auto start = std::chrono::steady_clock::now();
  auto result = Connect(server->port, {.deadline = seconds(2)});
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(result) << "a trickled answer held the client for " << std::chrono::duration_cast<milliseconds>(took).count() << " ms";
  EXPECT_EQ(result.error().domain(), ErrorDomain::kTls) << result.error().ToString();
  EXPECT_EQ(result.error().message().rfind("waiting for the answer of 127.0.0.1: the session did not finish "
                                           "within its deadline of 2 s", 0), 0u)
      << result.error().message();
  EXPECT_GE(took, milliseconds(1900));
  EXPECT_LT(took, seconds(5)) << "the deadline bounds the whole session";
}

TEST_F(SsliClientLimitsTest, TheDefaultDeadlineIsThirtySeconds) {
  EXPECT_EQ(SsliClientOptions{}.deadline, seconds(30));
  EXPECT_EQ(SsliClientOptions{}.max_response_bytes, 65536u);
  EXPECT_FALSE(SsliClientOptions{}.resume_sessions);
}

// After the session, the client waits for the cloud to close: a peer that keeps sending a byte
// now and then after its close_notify does not hold the device longer than a second or so.
TEST(CloseAfterPeerTest, APeerThatKeepsTricklingBytesIsLeftAfterASecond) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    while (!stop && ::send(fds[1], "x", 1, MSG_NOSIGNAL) == 1) {
      std::this_thread::sleep_for(milliseconds(200));  // the pace of the misbehaving peer
    }
  });
  auto start = std::chrono::steady_clock::now();
  CloseAfterPeer(fds[0]);
  auto took = std::chrono::steady_clock::now() - start;
  stop = true;
  trickler.join();
  ::close(fds[1]);
  EXPECT_GE(took, milliseconds(900));
  EXPECT_LT(took, milliseconds(2500)) << "a trickling peer held the client";
}

TEST(CloseAfterPeerTest, APeerThatClosesIsLeftAtOnce) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ::close(fds[1]);
  auto start = std::chrono::steady_clock::now();
  CloseAfterPeer(fds[0]);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500));
}

}  // namespace
}  // namespace idevid
