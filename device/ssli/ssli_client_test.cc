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

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"

#include "device/ssli/testing/ssli_test_peer.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::StartsWith;

class SsliClientLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = testing::TestCa::CreateWithServerAndClient(dir_.path());
    ASSERT_TRUE(ca) << ca.error().ToString();
    ca_ = std::move(*ca);
    config_.ca_profiles["ca"] = {.name = "ca", .certificate = ca_->certificate().string()};
    config_.local_certificates["client"] = {.id = "client",
                                            .certificate = ca_->Pem("client").string(),
                                            .private_key = ca_->Key("client").string(),
                                            .ca_profile = "ca"};
    config_.ssl_profiles["file"] = {
        .name = "file", .client_certificate = "client", .trusted_ca = "ca", .handshake_timeout_seconds = 1};
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
  EXPECT_THAT(result, testing::ResultIs(ErrorDomain::kPeer, PeerCode::kTooLarge,
                                        StartsWith("the cloud's response exceeds 65536 bytes")))
      << "a 50 MB answer was taken whole";
  EXPECT_LT(grown_kib, 16 * 1024) << "reading the answer grew the client by " << grown_kib << " KiB";
}

TEST_F(SsliClientLimitsTest, TheResponseCapIsAnOption) {
  auto server = testing::StartMisbehavingServer(dir_.path(), "server", "huge");
  ASSERT_TRUE(server) << server.error().ToString();
  EXPECT_THAT(Connect(server->port, {.max_response_bytes = 1000}),
              testing::ResultIs(ErrorDomain::kPeer, PeerCode::kTooLarge,
                                StartsWith("the cloud's response exceeds 1000 bytes")));
}

TEST_F(SsliClientLimitsTest, AnAnswerTrickledBelowThePerReadTimeoutEndsAtTheSessionDeadline) {
  auto server = testing::StartMisbehavingServer(dir_.path(), "server", "trickle");
  ASSERT_TRUE(server) << server.error().ToString();
  auto start = std::chrono::steady_clock::now();
  auto result = Connect(server->port, {.deadline = seconds(2)});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(result, testing::ResultIs(ErrorDomain::kPeer, PeerCode::kTimeout,
                                        StartsWith("waiting for the answer of 127.0.0.1: the session did not "
                                                   "finish within its deadline of 2 s")))
      << "a trickled answer held the client for " << std::chrono::duration_cast<milliseconds>(took).count()
      << " ms";
  EXPECT_GE(took, milliseconds(1900));
  EXPECT_LT(took, seconds(5)) << "the deadline bounds the whole session";
}

// A cloud that accepts the connection and then says nothing is a peer that timed out, not a
// failed unit: the profile's handshake-timeout (1 s here) bounds the wait.
TEST_F(SsliClientLimitsTest, ASilentCloudIsAPeerTimeout) {
  auto silent = testing::SilentListener::Start();
  ASSERT_THAT(silent, testing::IsOk());
  auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(
      Connect(silent->port()),
      testing::ResultIs(ErrorDomain::kPeer, PeerCode::kTimeout,
                        StartsWith(fmt::format("TLS handshake with 127.0.0.1:{} failed: the cloud did not "
                                               "answer within the profile's handshake-timeout of 1 s",
                                               silent->port()))));
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
}

TEST_F(SsliClientLimitsTest, NobodyListeningIsAnUnreachablePeer) {
  std::uint16_t port = 0;
  {
    auto gone = testing::SilentListener::Start();  // a port that was free a moment ago
    ASSERT_THAT(gone, testing::IsOk());
    port = gone->port();
  }
  EXPECT_THAT(Connect(port), testing::ResultIs(ErrorDomain::kPeer, PeerCode::kUnreachable,
                                               fmt::format("connecting to the cloud at 127.0.0.1:{}: cannot "
                                                           "connect: Connection refused",
                                                           port)));
}

TEST_F(SsliClientLimitsTest, ACloudThatClosesWithoutAnAnswerIsAClosedPeer) {
  auto server = testing::StartMisbehavingServer(dir_.path(), "server", "close");
  ASSERT_TRUE(server) << server.error().ToString();
  EXPECT_THAT(Connect(server->port),
              testing::ResultIs(ErrorDomain::kPeer, PeerCode::kClosed,
                                "the cloud at 127.0.0.1 closed the connection before it answered"));
}

// The cloud's HTTP 403 is its verdict on the identity: a result that says refused and why
// (escaped), not an error.
TEST_F(SsliClientLimitsTest, AForbiddenAnswerIsARefusalWithTheCloudsReason) {
  auto server = testing::StartMisbehavingServer(dir_.path(), "server", "forbidden");
  ASSERT_TRUE(server) << server.error().ToString();
  auto result = Connect(server->port);
  ASSERT_THAT(result, testing::IsOk());
  EXPECT_FALSE(result->accepted());
  ASSERT_TRUE(result->refused());
  EXPECT_EQ(result->refusal->kind, SsliRefusal::Kind::kHttpVerdict);
  EXPECT_EQ(result->refusal->reason, "HTTP 403: serial CW1 is not in the inventory\\x1b[2J");
  EXPECT_EQ(result->http_status, 403);
}

// The cloud's HTTP 503 says it could not decide (its ledger is down): neither accepted nor a refusal
// of the unit.
TEST_F(SsliClientLimitsTest, AnUnavailableAnswerIsUndecidedNotARefusal) {
  auto server = testing::StartMisbehavingServer(dir_.path(), "server", "unavailable");
  ASSERT_TRUE(server) << server.error().ToString();
  auto result = Connect(server->port);
  ASSERT_THAT(result, testing::IsOk());
  EXPECT_FALSE(result->accepted());
  EXPECT_FALSE(result->refused());
  EXPECT_TRUE(result->undecided());
  EXPECT_EQ(result->http_status, 503);
  EXPECT_EQ(result->verdict["verdict"], "unavailable");
}

// A cloud with an attestation policy answers GET /v1/identity with a challenge and keeps the
// session open (its 401 is framed by Content-Length): a device not configured for attestation
// reads the challenge without waiting for a close, refuses it as a verdict naming what is
// missing, and sends no evidence.
TEST_F(SsliClientLimitsTest, AChallengeToADeviceWithoutAttestationIsARefusalThatSaysSo) {
  auto server = testing::StartMisbehavingServer(dir_.path(), "server", "challenge");
  ASSERT_TRUE(server) << server.error().ToString();
  auto start = std::chrono::steady_clock::now();
  auto result = Connect(server->port, {.deadline = seconds(5)});
  ASSERT_THAT(result, testing::IsOk());
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(2)) << "the client waited for the close";
  EXPECT_FALSE(result->accepted());
  EXPECT_FALSE(result->attested());
  ASSERT_TRUE(result->refused());
  EXPECT_EQ(result->refusal->kind, SsliRefusal::Kind::kHttpVerdict);
  EXPECT_EQ(result->refusal->reason,
            "HTTP 401: the cloud asks for attestation, and this device is not configured for attestation "
            "(set security pki node-local attestation ...)");
  EXPECT_EQ(result->http_status, 401);
  ASSERT_TRUE(result->challenge);
  EXPECT_EQ((*result->challenge)["type"], "attestation-challenge");
  std::string log;
  for (auto until = std::chrono::steady_clock::now() + seconds(5);
       log.find("after the challenge") == std::string::npos && std::chrono::steady_clock::now() < until;) {
    log = ReadFileText(server->log).value_or("");
  }
  EXPECT_THAT(log, ::testing::HasSubstr("after the challenge: b''")) << "the device sent evidence";
}

// A server that refuses the client certificate with an alert has refused the identity: a result,
// with the alert. Here openssl s_server trusts another CA of the same name, so the signature on
// the client's certificate does not verify: decrypt_error (RFC 8446 6.2).
TEST_F(SsliClientLimitsTest, AnAlertAboutTheClientCertificateIsARefusal) {
  auto other = testing::TestCa::Create(dir_.path(), "other-ca");
  ASSERT_THAT(other, testing::IsOk());
  for (const char* version : {"-tls1_3", "-tls1_2"}) {
    auto server = testing::StartOpensslServer(dir_.path(), "server", other->certificate(),
                                              {version, "-verify_return_error"});
    ASSERT_THAT(server, testing::IsOk());
    auto result = Connect(server->port);
    ASSERT_THAT(result, testing::IsOk()) << version;
    ASSERT_TRUE(result->refused()) << version;
    EXPECT_FALSE(result->accepted());
    EXPECT_EQ(result->refusal->kind, SsliRefusal::Kind::kTlsAlert);
    EXPECT_EQ(result->refusal->alert, 51) << version << ": " << result->refusal->reason;
    EXPECT_EQ(result->refusal->reason, "TLS alert decrypt error (51)");
  }
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
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd mine(fds[0]), theirs(fds[1]);
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    while (!stop && ::send(theirs.get(), "x", 1, MSG_NOSIGNAL) == 1) {
      std::this_thread::sleep_for(milliseconds(200));  // the pace of the misbehaving peer
    }
  });
  auto start = std::chrono::steady_clock::now();
  CloseAfterPeer(std::move(mine));
  auto took = std::chrono::steady_clock::now() - start;
  stop = true;
  trickler.join();
  EXPECT_GE(took, milliseconds(900));
  EXPECT_LT(took, milliseconds(2500)) << "a trickling peer held the client";
}

TEST(CloseAfterPeerTest, APeerThatClosesIsLeftAtOnce) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd mine(fds[0]);
  UniqueFd(fds[1]).reset();  // the peer closes
  auto start = std::chrono::steady_clock::now();
  CloseAfterPeer(std::move(mine));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500));
}

}  // namespace
}  // namespace idevid
