// The cloud peer against the clients users hold (curl, openssl s_client) and against raw and
// in-process TLS clients that misbehave on purpose, with a file-mode device identity (no TPM):
// session resumption, deadlines, HTTP answers and the connection log.
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <thread>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "cloud/cloud_server.h"
#include "cloud/testing/doubtful_identities.h"
#include "cloud/testing/server_certificate.h"
#include "core/file_io.h"
#include "core/idevid_profile.h"
#include "core/testing/result_matchers.h"
#include "core/unique_fd.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"

namespace idevid {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

UniqueFd ConnectTcp(std::uint16_t port) {
  auto fd = OpenSocket(AF_INET, SOCK_STREAM);
  EXPECT_TRUE(fd);
  if (!fd) return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  EXPECT_EQ(::connect(fd->get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return std::move(*fd);
}

// A TLS client in this process with the device's file identity, which sends what a test says
// as slowly as the test says.
class TlsClient {
 public:
  TlsClient(std::uint16_t port, const std::filesystem::path& dir) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    EXPECT_EQ(SSL_CTX_use_certificate_file(ctx_.get(), (dir / "device.pem").c_str(), SSL_FILETYPE_PEM), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx_.get(), (dir / "device.key").c_str(), SSL_FILETYPE_PEM), 1);
    socket_ = ConnectTcp(port);
    fd_ = socket_.get();
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    EXPECT_EQ(SSL_connect(ssl_.get()), 1) << "the handshake failed";
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }

  // False once the cloud has closed the connection.
  bool Send(std::string_view bytes) {
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      int n = SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size()));
      if (n == static_cast<int>(bytes.size())) return true;
      if (SSL_get_error(ssl_.get(), n) != SSL_ERROR_WANT_WRITE) break;
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, 50);
    }
    ERR_clear_error();
    return false;
  }
  // Reads until the cloud closes or `wait` passes; nullopt when it did not close in time.
  std::optional<std::string> ReadToClose(std::chrono::milliseconds wait) {
    std::string data;
    auto deadline = Clock::now() + wait;
    while (Clock::now() < deadline) {
      char buffer[4096];
      int n = SSL_read(ssl_.get(), buffer, sizeof buffer);
      if (n > 0) {
        data.append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      if (SSL_get_error(ssl_.get(), n) != SSL_ERROR_WANT_READ) {
        ERR_clear_error();
        return data;
      }
      pollfd p{fd_, POLLIN, 0};
      ::poll(&p, 1, 50);
    }
    return std::nullopt;
  }

 private:
  ossl::UniquePtr<SSL_CTX> ctx_;
  ossl::UniquePtr<SSL> ssl_;
  UniqueFd socket_;
  int fd_ = -1;  // socket_'s
};

class CloudServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);  // the in-process clients write to connections the cloud closed
    factory_ = *InitFactory({.dir = dir() / "factory"});
    cloud_ca_ = *InitFactory({.dir = dir() / "cloud-ca", .manufacturer = "Cloud"});
    testing::WriteCloudServerCertificate(*cloud_ca_, dir());
    WriteDeviceCertificate();
  }

  const std::filesystem::path& dir() const { return temp_.path(); }

  // The unit FS0001's identity as files (a file-mode device), issued by the factory; `spec`
  // replaces its certificate's profile.
  void WriteDeviceCertificate(std::optional<CertificateSpec> spec = std::nullopt) {
    auto key = GenerateKey(KeyAlgorithm::kEccP256);
    if (!spec) spec = *IdevidCertificateSpec({"FS0001", "SRX4300", "Example Networks", Bytes(32, 1)});
    auto cert = IssueCertificate(*spec, **key, factory_->issuing.get(), *factory_->issuing_key);
    ASSERT_TRUE(cert);
    device_fingerprint_ = *Sha256Fingerprint(**cert);
    ASSERT_TRUE(WriteFileAtomic(dir() / "device.pem", *CertificatePem(**cert)));
    ASSERT_TRUE(WritePrivateKeyPem(dir() / "device.key", **key));
  }

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
  void WriteInventory(const std::string& text) {
    ASSERT_TRUE(WriteFileAtomic(dir() / "inventory.csv", text));
  }

  std::string Url(const std::string& path) const {
    return fmt::format("https://127.0.0.1:{}{}", cloud_->port(), path);
  }
  std::string Peer() const { return fmt::format("127.0.0.1:{}", cloud_->port()); }

  // curl with the device's identity, trusting the cloud's CA.
  CommandOutput Curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl",     "-sS",
                                     "--cacert", (dir() / "cloud-ca" / "root-ca.pem").string(),
                                     "--cert",   (dir() / "device.pem").string(),
                                     "--key",    (dir() / "device.key").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto run = RunCommand(argv, {}, 30s);
    EXPECT_TRUE(run);
    return run.value_or(CommandOutput{});
  }
  // openssl s_client with the device's identity sending GET /v1/identity; stdin is then closed
  // and -ign_eof keeps it reading until the cloud closes.
  CommandOutput SClient(std::vector<std::string> args) {
    std::vector<std::string> argv = {"openssl",  "s_client",
                                     "-connect", Peer(),
                                     "-cert",    (dir() / "device.pem").string(),
                                     "-key",     (dir() / "device.key").string(),
                                     "-CAfile",  (dir() / "cloud-ca" / "root-ca.pem").string(),
                                     "-ign_eof"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto run = RunCommand(argv, {}, 30s, "GET /v1/identity HTTP/1.1\r\nHost: cloud.example\r\n\r\n");
    EXPECT_TRUE(run);
    return run.value_or(CommandOutput{});
  }

  // The cloud's log lines, once the cloud has stopped (every connection logged).
  std::vector<nlohmann::json> StopAndReadLog() {
    cloud_->Stop();
    std::vector<nlohmann::json> lines;
    std::istringstream in(ReadFileText(dir() / "cloud.log").value_or(""));
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }

  testing::TempDir temp_;
  std::optional<Factory> factory_, cloud_ca_;
  std::string device_fingerprint_;
  std::unique_ptr<CloudServer> cloud_;
};

TEST_F(CloudServerTest, DoubtfulHardwareIdentitiesAreRefusedWithTheirReasonInTheLog) {
  StartCloud(Options());
  auto doubtful = testing::DoubtfulIdentities();
  for (const auto& identity : doubtful) {
    WriteDeviceCertificate(testing::IdevidSpecWithHwSerials("FS0001", identity.hw_serials));
    CommandOutput run = Curl({"-i", Url("/v1/identity")});
    EXPECT_EQ(run.out.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << identity.name << run.out << run.err;
    EXPECT_NE(run.out.find(identity.reason), std::string::npos) << identity.name << run.out;
  }
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), doubtful.size());
  for (std::size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i]["verdict"], "rejected") << log[i].dump();
    EXPECT_EQ(log[i]["reason"].get<std::string>().rfind(doubtful[i].reason, 0), 0u) << log[i].dump();
    EXPECT_LT(log[i].dump().size(), 2000u) << "the log echoes a 60 KB hwSerialNum";
  }
}

// --- Session resumption (RFC 5077, RFC 8446 2.2) ---

TEST_F(CloudServerTest, CurlWithTwoUrlsResumesTheSessionOnTheSecond) {
  StartCloud(Options());
  for (auto tls12 : {false, true}) {
    std::vector<std::string> args = {"-v", Url("/v1/identity"), Url("/v1/identity")};
    if (tls12) args.insert(args.begin(), {"--tlsv1.2", "--tls-max", "1.2"});
    CommandOutput run = Curl(args);
    EXPECT_EQ(run.exit_status, 0) << run.err;
    EXPECT_NE(run.err.find("SSL re-using session ID"), std::string::npos) << run.err;
    EXPECT_EQ(run.out.find("internal error"), std::string::npos) << run.out;
  }
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(log[i]["verdict"], "accepted") << log[i].dump();
    EXPECT_EQ(log[i]["status"], 200) << log[i].dump();
    EXPECT_EQ(log[i]["resumed"], i % 2 == 1) << log[i].dump();
    EXPECT_EQ(log[i]["fingerprint"], device_fingerprint_) << log[i].dump();
  }
  EXPECT_EQ(log[1]["protocol"], "TLSv1.3");
  EXPECT_EQ(log[3]["protocol"], "TLSv1.2");
}

class CloudResumptionTest : public CloudServerTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(CloudResumptionTest, SClientSessOutThenSessInResumes) {
  StartCloud(Options());
  std::string session = (dir() / "session.pem").string();
  CommandOutput first = SClient({GetParam(), "-sess_out", session});
  EXPECT_NE(first.out.find("\"verdict\":\"accepted\""), std::string::npos) << first.out << first.err;
  EXPECT_NE(first.out.find("New, TLSv1."), std::string::npos) << first.out;
  CommandOutput second = SClient({GetParam(), "-sess_in", session});
  EXPECT_NE(second.out.find("Reused, TLSv1."), std::string::npos) << second.out << second.err;
  EXPECT_NE(second.out.find("\"verdict\":\"accepted\""), std::string::npos) << second.out << second.err;
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0]["resumed"], false);
  EXPECT_EQ(log[1]["resumed"], true);
  EXPECT_EQ(log[1]["serial"], "FS0001");
  EXPECT_EQ(log[1]["fingerprint"], device_fingerprint_);
}

TEST_F(CloudServerTest, EveryRuleACertificateBreaksIsInTheAnswerAndTheLog) {
  WriteInventory("serial,model\nCW1,SRX4300\n");
  CloudOptions options = Options();
  options.inventory = dir() / "inventory.csv";
  StartCloud(options);
  WriteDeviceCertificate(testing::IdevidSpecWithHwSerials("FS0001", {Bytes{}}));
  CommandOutput run = Curl({Url("/v1/identity")});
  auto answer = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(answer.is_discarded()) << run.out << run.err;
  EXPECT_EQ(answer["verdict"], "rejected");
  EXPECT_EQ(answer["reason"], "hardwareModuleName hwSerialNum is empty");
  ASSERT_EQ(answer["findings"].size(), 2u) << answer.dump();
  EXPECT_EQ(answer["findings"][0]["id"], "hw-serial-empty");
  EXPECT_EQ(answer["findings"][1]["id"], "serial-not-in-inventory");
  EXPECT_EQ(answer["findings"][1]["evidence"], "serial FS0001 is not in the inventory");
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["reason"], "hardwareModuleName hwSerialNum is empty");
  EXPECT_EQ(log[0]["findings"], answer["findings"]);
}

TEST_P(CloudResumptionTest, AUnitRemovedFromTheInventoryIsRefusedOnResumption) {
  WriteInventory("serial,model\nFS0001,SRX4300\n");
  CloudOptions options = Options();
  options.inventory = dir() / "inventory.csv";
  StartCloud(options);
  std::string session = (dir() / "session.pem").string();
  CommandOutput first = SClient({GetParam(), "-sess_out", session});
  EXPECT_NE(first.out.find("HTTP/1.1 200 OK"), std::string::npos) << first.out << first.err;
  WriteInventory("serial,model\nCW1,SRX4300\n");
  ASSERT_TRUE(cloud_->ReloadInventory());
  CommandOutput second = SClient({GetParam(), "-sess_in", session});
  EXPECT_NE(second.out.find("Reused, TLSv1."), std::string::npos) << second.out << second.err;
  EXPECT_NE(second.out.find("HTTP/1.1 403 Forbidden"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("serial FS0001 is not in the inventory"), std::string::npos) << second.out;
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1]["resumed"], true);
  EXPECT_EQ(log[1]["verdict"], "rejected");
  EXPECT_EQ(log[1]["reason"], "serial FS0001 is not in the inventory");
}

TEST_P(CloudResumptionTest, ACertificateThatExpiredSinceTheFullHandshakeIsRefusedOnResumption) {
  auto spec = *IdevidCertificateSpec({"FS0001", "SRX4300", "Example Networks", Bytes(32, 1)});
  auto expiry = std::chrono::system_clock::now() + 3s;
  spec.not_before = "20200101000000Z";
  spec.not_after = fmt::format("{:%Y%m%d%H%M%S}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(expiry)));
  WriteDeviceCertificate(spec);
  StartCloud(Options());
  std::string session = (dir() / "session.pem").string();
  CommandOutput first = SClient({GetParam(), "-sess_out", session});
  ASSERT_NE(first.out.find("HTTP/1.1 200 OK"), std::string::npos) << first.out << first.err;
  // The certificate's time runs out between the two connections (a wait for the clock, not for
  // readiness).
  std::this_thread::sleep_until(expiry + 1100ms);
  CommandOutput second = SClient({GetParam(), "-sess_in", session});
  EXPECT_NE(second.out.find("Reused, TLSv1."), std::string::npos) << second.out << second.err;
  EXPECT_NE(second.out.find("HTTP/1.1 403 Forbidden"), std::string::npos) << second.out;
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1]["resumed"], true);
  EXPECT_EQ(log[1]["reason"], "the certificate of the resumed session has expired");
}

INSTANTIATE_TEST_SUITE_P(Tls, CloudResumptionTest, ::testing::Values("-tls1_3", "-tls1_2"),
                         [](const auto& test) { return test.param == "-tls1_3" ? "Tls13" : "Tls12"; });

TEST_F(CloudServerTest, ReloadingAMalformedInventoryKeepsTheOldOne) {
  WriteInventory("FS0001,SRX4300\n");
  CloudOptions options = Options();
  options.inventory = dir() / "inventory.csv";
  StartCloud(options);
  WriteInventory("FS0001\n");
  EXPECT_THAT(cloud_->ReloadInventory(),
              testing::ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                                ::testing::HasSubstr("expected 'serial,model', got 'FS0001'")));
  CommandOutput run = Curl({Url("/v1/identity")});
  EXPECT_NE(run.out.find("\"verdict\":\"accepted\""), std::string::npos) << run.out << run.err;
}

// --- Deadlines per connection, not per read ---

TEST_F(CloudServerTest, AHandshakeTrickledByteByByteIsClosedAtItsDeadline) {
  CloudOptions options = Options();
  options.io_timeout = 1000ms;
  options.handshake_deadline = 1500ms;
  StartCloud(options);
  UniqueFd socket = ConnectTcp(cloud_->port());
  int fd = socket.get();
  auto start = Clock::now();
  // A TLS handshake record header announcing 512 bytes, then one byte each 200 ms: never idle
  // for a whole io_timeout.
  const unsigned char header[] = {0x16, 0x03, 0x01, 0x02, 0x00};
  ASSERT_EQ(::send(fd, header, sizeof header, MSG_NOSIGNAL), 5);
  bool closed = false;
  while (!closed && Clock::now() - start < 8s) {
    pollfd p{fd, POLLIN, 0};
    char byte = 1;
    if (::poll(&p, 1, 200) > 0) closed = ::recv(fd, &byte, 1, 0) <= 0;
    if (!closed) closed = ::send(fd, &byte, 1, MSG_NOSIGNAL) != 1;
  }
  auto held = Clock::now() - start;
  socket.reset();
  EXPECT_TRUE(closed) << "a trickling client held the connection for 8 s";
  EXPECT_GE(held, 1400ms);
  EXPECT_LT(held, 3000ms);
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["outcome"], "stalled");
  EXPECT_EQ(log[0]["phase"], "handshake");
  EXPECT_TRUE(log[0]["verdict"].is_null()) << log[0].dump();
  EXPECT_TRUE(log[0]["status"].is_null()) << log[0].dump();
  EXPECT_EQ(log[0]["reason"], "the client stalled: the handshake took longer than its deadline of 1500 ms");
}

TEST_F(CloudServerTest, ARequestTrickledByteByByteIsClosedAtItsDeadline) {
  CloudOptions options = Options();
  options.io_timeout = 1000ms;
  options.request_deadline = 1500ms;
  StartCloud(options);
  TlsClient client(cloud_->port(), dir());
  auto start = Clock::now();
  std::string request = "GET /v1/identity HTTP/1.1\r\nHost: cloud.example\r\nX-Slow: 0123456789\r\n\r\n";
  std::optional<std::string> answer;
  for (char c : request) {
    if (!client.Send({&c, 1})) break;
    if ((answer = client.ReadToClose(200ms))) break;
  }
  auto held = Clock::now() - start;
  ASSERT_TRUE(answer) << "a trickling client held the connection for " << request.size() * 200 << " ms";
  EXPECT_EQ(*answer, "") << "nothing is answered to a stalled request";
  EXPECT_GE(held, 1400ms);
  EXPECT_LT(held, 3000ms);
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["outcome"], "stalled");
  EXPECT_EQ(log[0]["phase"], "request");
  EXPECT_TRUE(log[0]["verdict"].is_null()) << log[0].dump();
  EXPECT_EQ(log[0]["reason"], "the client stalled: the request took longer than its deadline of 1500 ms");
  EXPECT_EQ(log[0]["fingerprint"], device_fingerprint_);
}

TEST_F(CloudServerTest, AnIdleClientIsDroppedAsStalledNotAccepted) {
  CloudOptions options = Options();
  options.io_timeout = 500ms;
  StartCloud(options);
  TlsClient client(cloud_->port(), dir());
  EXPECT_TRUE(client.ReadToClose(5s)) << "the cloud did not drop a client that sent no request";
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["outcome"], "stalled");
  EXPECT_EQ(log[0]["phase"], "request");
  EXPECT_TRUE(log[0]["verdict"].is_null()) << log[0].dump();
  EXPECT_EQ(log[0]["reason"], "the client stalled: nothing for 500 ms during the request");
  EXPECT_EQ(log[0]["serial"], "FS0001");
}

TEST_F(CloudServerTest, AConnectionClosedBeforeAnyByteIsLoggedAsClosedNotRejected) {
  StartCloud(Options());
  ConnectTcp(cloud_->port()).reset();
  ASSERT_TRUE(PollUntil([&] { return cloud_->connections() == 1; }, 10s));
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["outcome"], "closed");
  EXPECT_EQ(log[0]["phase"], "handshake");
  EXPECT_TRUE(log[0]["verdict"].is_null()) << log[0].dump();
  EXPECT_EQ(log[0]["reason"], "the client closed the connection during the handshake");
}

// --- HTTP answers ---

TEST_F(CloudServerTest, PostIsMethodNotAllowedWithAllowGet) {
  StartCloud(Options());
  CommandOutput run = Curl({"-i", "-X", "POST", "--data", "x", Url("/v1/identity")});
  EXPECT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(run.out.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << run.out;
  EXPECT_NE(run.out.find("\r\nAllow: GET\r\n"), std::string::npos) << run.out;
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["status"], 405);
  EXPECT_EQ(log[0]["outcome"], "method-not-allowed");
  EXPECT_TRUE(log[0]["verdict"].is_null()) << log[0].dump();
  EXPECT_TRUE(log[0]["served"].is_null()) << log[0].dump();
  EXPECT_EQ(log[0]["request"], "POST /v1/identity HTTP/1.1");
}

TEST_F(CloudServerTest, PlainHttpOnTheTlsPortIsAnswered400) {
  StartCloud(Options());
  auto run = RunCommand({"curl", "-sS", "-i", fmt::format("http://127.0.0.1:{}/", cloud_->port())}, {}, 30s);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->exit_status, 0) << run->err;
  EXPECT_EQ(run->out.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << run->out;
  EXPECT_NE(run->out.find("plain HTTP sent to the HTTPS port"), std::string::npos) << run->out;
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["outcome"], "plain-http");
  EXPECT_EQ(log[0]["status"], 400);
  EXPECT_TRUE(log[0]["verdict"].is_null()) << log[0].dump();
  EXPECT_EQ(log[0]["request"], "GET / HTTP/1.1");
}

// --- An honest log ---

TEST_F(CloudServerTest, TheLogSaysWhatWasServedToWhichCertificate) {
  StartCloud(Options());
  EXPECT_EQ(Curl({Url("/v1/identity")}).exit_status, 0);
  CommandOutput missing = Curl({"-i", Url("/nope")});
  EXPECT_EQ(missing.out.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << missing.out;
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0]["outcome"], "served");
  EXPECT_EQ(log[0]["status"], 200);
  EXPECT_EQ(log[0]["served"], "/v1/identity");
  EXPECT_EQ(log[0]["verdict"], "accepted");
  EXPECT_EQ(log[0]["reason"], "ok");
  EXPECT_EQ(log[0]["serial"], "FS0001");
  EXPECT_EQ(log[0]["model"], "SRX4300");
  EXPECT_EQ(log[0]["hw_serial"], Hex(Bytes(32, 1)));
  EXPECT_EQ(log[0]["fingerprint"], device_fingerprint_);
  EXPECT_EQ(log[1]["outcome"], "not-found");
  EXPECT_EQ(log[1]["status"], 404);
  EXPECT_TRUE(log[1]["served"].is_null()) << log[1].dump();
  EXPECT_TRUE(log[1]["verdict"].is_null()) << log[1].dump();
  EXPECT_EQ(log[1]["fingerprint"], device_fingerprint_);
}

TEST_F(CloudServerTest, AnOversizeRequestIsABadRequestNotAnAcceptance) {
  StartCloud(Options());
  TlsClient client(cloud_->port(), dir());
  std::string path = "/" + std::string(100 * 1024, 'a');
  ASSERT_TRUE(client.Send("GET " + path.substr(0, 20000)));
  auto answer = client.ReadToClose(10s);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << answer->substr(0, 200);
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["outcome"], "bad-request");
  EXPECT_EQ(log[0]["status"], 400);
  EXPECT_TRUE(log[0]["verdict"].is_null()) << log[0].dump();
  EXPECT_EQ(log[0]["reason"], "the request head is larger than 8192 bytes");
  std::string logged = log[0]["request"];
  EXPECT_LT(logged.size(), 200u) << "the log echoes the whole request line";
  EXPECT_NE(logged.find("bytes)"), std::string::npos) << logged;
}

// --- Outside input is escaped and cut short ---

TEST_F(CloudServerTest, AnEscapeSequenceInThePathIsEscapedInTheAnswerAndTheLog) {
  StartCloud(Options());
  TlsClient client(cloud_->port(), dir());
  ASSERT_TRUE(client.Send("GET /\x1b[2J\x1b]0;pwned\x07 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto answer = client.ReadToClose(10s);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << *answer;
  EXPECT_EQ(answer->find('\x1b'), std::string::npos) << *answer;
  EXPECT_NE(answer->find(R"(no resource \"/\\x1b[2J\\x1b]0;pwned\\x07\")"), std::string::npos) << *answer;
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 1u);
  std::string request = log[0]["request"];
  EXPECT_EQ(request, "GET /\\x1b[2J\\x1b]0;pwned\\x07 HTTP/1.1");
}

TEST_F(CloudServerTest, AHundredKilobytePathIsCutShortInTheAnswerAndTheLog) {
  StartCloud(Options());
  TlsClient client(cloud_->port(), dir());
  std::string path = "/" + std::string(100 * 1024, 'p');
  // Within the head limit the path is answered 404; its echo is cut short all the same.
  ASSERT_TRUE(client.Send("GET " + path.substr(0, 8000) + " HTTP/1.1\r\n\r\n"));
  auto answer = client.ReadToClose(10s);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << answer->substr(0, 200);
  EXPECT_LT(answer->size(), 600u) << "the answer echoes the whole path";
  EXPECT_NE(answer->find("(8000 bytes)"), std::string::npos) << *answer;
  auto log = StopAndReadLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_LT(log[0]["request"].get<std::string>().size(), 200u);
  EXPECT_LT(log[0]["reason"].get<std::string>().size(), 300u);
}

}  // namespace
}  // namespace idevid
