// The enrolment service over HTTPS and its client, with an authority that records what it got
// and answers what a test sets (no TPM): the exchange end to end, refusals, station
// certificates, the client's trust and name checks, connections that fail, malformed requests,
// the request log, and the clients users hold (curl, Python's ssl and http.client).
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "core/unique_fd.h"
#include "core/work_dir.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "engine/process.h"
#include "provisioning/enrolment_wire.h"
#include "provisioning/factory.h"
#include "provisioning/factory_client.h"
#include "provisioning/factory_service.h"
#include "provisioning/service_certificate.h"

namespace idevid {
namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::IsOk;
using ::testing::Not;
using testing::ResultIs;
using ::testing::StartsWith;
using Json = nlohmann::json;

Bytes EveryByte() {
  Bytes bytes(512);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return bytes;
}

// An authority that records every call and answers what the test set (thread-safe).
class FakeAuthority : public EnrolmentChannel {
 public:
  Result<EnrolmentAnswer<EnrolmentSession>> Begin(const EnrolmentOrder& order) override {
    std::lock_guard lock(mutex_);
    orders.push_back(order);
    if (failure) return Fail(*failure);
    return begin_answer;
  }
  Result<EnrolmentAnswer<Credential>> Submit(const std::string& session,
                                             std::span<const std::uint8_t> csr) override {
    std::lock_guard lock(mutex_);
    submitted.emplace_back(session, Bytes(csr.begin(), csr.end()));
    return submit_answer;
  }
  Result<EnrolmentAnswer<EnrolmentCertificates>> Activate(const std::string& session,
                                                          std::span<const std::uint8_t> secret) override {
    std::lock_guard lock(mutex_);
    activated.emplace_back(session, Bytes(secret.begin(), secret.end()));
    return activate_answer;
  }
  Result<EnrolmentAnswer<EnrolmentCommitted>> Commit(const std::string& session,
                                                     const EnrolmentCommit& commit) override {
    std::lock_guard lock(mutex_);
    committed.emplace_back(session, commit);
    return commit_answer;
  }
  std::size_t calls() {
    std::lock_guard lock(mutex_);
    return orders.size() + submitted.size() + activated.size() + committed.size();
  }

  // Set before the service runs; read after the calls returned.
  EnrolmentAnswer<EnrolmentSession> begin_answer = EnrolmentSession{"s-0001", Bytes{1, 2, 3, 0, 255}};
  EnrolmentAnswer<Credential> submit_answer = Credential{Bytes{9, 8, 7}, Bytes(256, 0xA5)};
  EnrolmentAnswer<EnrolmentCertificates> activate_answer =
      EnrolmentCertificates{Bytes{0x30, 0x82, 1}, Bytes{0x30, 2}};
  EnrolmentAnswer<EnrolmentCommitted> commit_answer = EnrolmentCommitted{"CW1"};
  std::optional<Error> failure;
  std::vector<EnrolmentOrder> orders;
  std::vector<std::pair<std::string, EnrolmentCommit>> committed;
  std::vector<std::pair<std::string, Bytes>> submitted;
  std::vector<std::pair<std::string, Bytes>> activated;

 private:
  std::mutex mutex_;
};

class FactoryServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    factory_ = *InitFactory({.dir = dir() / "factory"});
    auto identity = IssueServiceCertificate(*factory_, "127.0.0.1");
    ASSERT_THAT(identity, IsOk());
    ASSERT_THAT(WriteServiceIdentity(*identity, dir()), IsOk());
  }

  const std::filesystem::path& dir() const { return temp_.path(); }
  std::filesystem::path Trust() const { return FactoryFiles::Chain(dir() / "factory"); }
  std::filesystem::path LogPath() const { return dir() / "service.log"; }

  FactoryServiceOptions ServiceOptions() const {
    return {.certificate = ServiceFiles::Certificate(dir()),
            .private_key = ServiceFiles::Key(dir()),
            .log = LogPath()};
  }
  void StartService(const FactoryServiceOptions& options) {
    auto service = FactoryService::Start(options, authority_);
    ASSERT_THAT(service, IsOk());
    service_ = std::move(*service);
  }
  std::string Url(const std::string& host = "127.0.0.1") const {
    return fmt::format("https://{}:{}", host, service_->port());
  }
  FactoryClientOptions ClientOptions() const {
    return {.url = service_ ? Url() : "https://127.0.0.1:1",
            .trust = Trust(),
            .connect_timeout = 5s,
            .read_timeout = 10s};
  }
  std::unique_ptr<HttpsEnrolmentChannel> Client(const FactoryClientOptions& options) {
    auto client = HttpsEnrolmentChannel::Connect(options);
    EXPECT_THAT(client, IsOk());
    return client ? std::move(*client) : nullptr;
  }

  // A CA of its own (a factory directory) and a client certificate from it, as DIR/NAME.pem/.key.
  void WriteStationCertificate(const std::string& ca_name, const std::string& organization,
                               const std::string& cn) {
    auto ca = InitFactory({.dir = dir() / ca_name, .manufacturer = organization});
    ASSERT_THAT(ca, IsOk());
    auto key = GenerateKey(KeyAlgorithm::kEccP256);
    ASSERT_THAT(key, IsOk());
    auto cert = IssueCertificate({.subject = {{"CN", cn}},
                                  .not_after = "20991231235959Z",
                                  .extensions = {{"basicConstraints", "critical,CA:FALSE"},
                                                 {"keyUsage", "critical,digitalSignature"},
                                                 {"extendedKeyUsage", "clientAuth"}}},
                                 **key, ca->issuing.get(), *ca->issuing_key);
    ASSERT_THAT(cert, IsOk());
    ASSERT_THAT(WriteFileAtomic(dir() / (cn + ".pem"), *CertificatePem(**cert)), IsOk());
    ASSERT_THAT(WritePrivateKeyPem(dir() / (cn + ".key"), **key), IsOk());
  }

  // A request as any HTTPS client may send it, trusting the factory CA.
  httplib::Result Raw(const std::string& method, const std::string& path, const std::string& body) {
    httplib::SSLClient client("127.0.0.1", service_->port());
    client.set_ca_cert_path(Trust().string());
    client.enable_server_certificate_verification(true);
    if (method == "GET") return client.Get(path.c_str());
    return client.Post(path.c_str(), body, "application/json");
  }

  // The log's lines, each parsed, once the service has stopped (every line is written then).
  std::vector<Json> LogLines() {
    service_->Stop();
    std::vector<Json> lines;
    std::istringstream text(ReadFileText(LogPath()).value_or(""));
    for (std::string line; std::getline(text, line);) {
      lines.push_back(Json::parse(line, nullptr, false));
      EXPECT_FALSE(lines.back().is_discarded()) << line;
    }
    return lines;
  }

  WorkDir temp_ = *WorkDir::Create("factory-service-test");
  std::optional<Factory> factory_;
  FakeAuthority authority_;  // outlives the service
  std::unique_ptr<FactoryService> service_;
};

TEST_F(FactoryServiceTest, ThreeStepsCarryTheBytesIntact) {
  authority_.begin_answer = EnrolmentSession{"s-0042", EveryByte()};
  authority_.submit_answer = Credential{EveryByte(), Bytes(300, 0)};
  authority_.activate_answer = EnrolmentCertificates{EveryByte(), Bytes{0x30, 0x03, 0x02, 0x01, 0x00}};
  StartService(ServiceOptions());
  auto client = Client(ClientOptions());
  ASSERT_NE(client, nullptr);

  auto begun = client->Begin({.serial = "FS0001", .model = "SRX4300", .station = "line-3"});
  ASSERT_THAT(begun, IsOk());
  const auto& session = std::get<EnrolmentSession>(*begun);
  EXPECT_EQ(session.id, "s-0042");
  EXPECT_EQ(session.nonce, EveryByte());

  Bytes csr = EveryByte();
  csr.push_back(0);
  auto submitted = client->Submit(session.id, csr);
  ASSERT_THAT(submitted, IsOk());
  EXPECT_EQ(std::get<Credential>(*submitted).blob, EveryByte());
  EXPECT_EQ(std::get<Credential>(*submitted).encrypted_secret, Bytes(300, 0));

  auto activated = client->Activate(session.id, Bytes{0, 1, 2, 0xFF});
  ASSERT_THAT(activated, IsOk());
  EXPECT_EQ(std::get<EnrolmentCertificates>(*activated).idevid_certificate, EveryByte());
  EXPECT_EQ(std::get<EnrolmentCertificates>(*activated).iak_certificate,
            (Bytes{0x30, 0x03, 0x02, 0x01, 0x00}));

  ASSERT_EQ(authority_.orders.size(), 1u);
  EXPECT_EQ(authority_.orders[0].serial, "FS0001");
  EXPECT_EQ(authority_.orders[0].model, "SRX4300");
  EXPECT_EQ(authority_.orders[0].station, "line-3");  // no station CA: what the station says
  ASSERT_EQ(authority_.submitted.size(), 1u);
  EXPECT_EQ(authority_.submitted[0], std::make_pair(std::string("s-0042"), csr));
  ASSERT_EQ(authority_.activated.size(), 1u);
  EXPECT_EQ(authority_.activated[0], std::make_pair(std::string("s-0042"), Bytes{0, 1, 2, 0xFF}));

  nlohmann::json record = {{"kind", "enrol"}, {"outcome", "PASS"}, {"unit", {{"serial", "FS0001"}}}};
  auto committed = client->Commit(session.id, {.station = "line-3", .line_check = "PASS", .record = record});
  ASSERT_THAT(committed, IsOk());
  EXPECT_EQ(std::get<EnrolmentCommitted>(*committed).serial, "CW1");
  ASSERT_EQ(authority_.committed.size(), 1u);
  EXPECT_EQ(authority_.committed[0].first, "s-0042");
  EXPECT_EQ(authority_.committed[0].second.station, "line-3");
  EXPECT_EQ(authority_.committed[0].second.line_check, "PASS");
  EXPECT_EQ(authority_.committed[0].second.record, record);
}

TEST_F(FactoryServiceTest, ARefusedCommitComesBackAsTheSameRefusal) {
  authority_.commit_answer = EnrolmentRefusal{"wrong-state", "serial \"FS0001\" is not issued"};
  StartService(ServiceOptions());
  auto committed = Client(ClientOptions())->Commit("s-1", {.line_check = "FAIL", .record = {{"a", 1}}});
  ASSERT_THAT(committed, IsOk());
  ASSERT_TRUE(std::holds_alternative<EnrolmentRefusal>(*committed));
  EXPECT_EQ(std::get<EnrolmentRefusal>(*committed).reason, "wrong-state");
  EXPECT_EQ(std::get<EnrolmentRefusal>(*committed).detail, "serial \"FS0001\" is not issued");
}

TEST_F(FactoryServiceTest, EachStepsRefusalComesBackAsTheSameRefusal) {
  EnrolmentRefusal ek{"ek-chain", "the EK certificate of unit \"FS0001\" does not chain to a TPM vendor CA"};
  EnrolmentRefusal csr{"idevid-attributes", "the IDevID key is not fixedTPM (attributes 0x00040072)"};
  EnrolmentRefusal secret{"credential", "the secret does not match: the TPM holds another EK"};
  authority_.begin_answer = ek;
  authority_.submit_answer = csr;
  authority_.activate_answer = secret;
  StartService(ServiceOptions());
  auto client = Client(ClientOptions());
  ASSERT_NE(client, nullptr);

  auto begun = client->Begin({.serial = "FS0001", .model = "SRX4300"});
  ASSERT_THAT(begun, IsOk());
  ASSERT_TRUE(std::holds_alternative<EnrolmentRefusal>(*begun));
  EXPECT_EQ(std::get<EnrolmentRefusal>(*begun).reason, ek.reason);
  EXPECT_EQ(std::get<EnrolmentRefusal>(*begun).detail, ek.detail);

  auto submitted = client->Submit("s-1", Bytes{1});
  ASSERT_THAT(submitted, IsOk());
  ASSERT_TRUE(std::holds_alternative<EnrolmentRefusal>(*submitted));
  EXPECT_EQ(std::get<EnrolmentRefusal>(*submitted).reason, csr.reason);
  EXPECT_EQ(std::get<EnrolmentRefusal>(*submitted).detail, csr.detail);

  auto activated = client->Activate("s-1", Bytes{2});
  ASSERT_THAT(activated, IsOk());
  ASSERT_TRUE(std::holds_alternative<EnrolmentRefusal>(*activated));
  EXPECT_EQ(std::get<EnrolmentRefusal>(*activated).reason, secret.reason);
  EXPECT_EQ(std::get<EnrolmentRefusal>(*activated).detail, secret.detail);
}

TEST_F(FactoryServiceTest, ARefusalWithControlCharactersReachesTheStationEscaped) {
  authority_.begin_answer = EnrolmentRefusal{"ek-chain\x1b[2J", "unit \"A\\x01\" \xff"};
  StartService(ServiceOptions());
  auto begun = Client(ClientOptions())->Begin({.serial = "A", .model = "B"});
  ASSERT_THAT(begun, IsOk());
  const auto& refusal = std::get<EnrolmentRefusal>(*begun);
  EXPECT_EQ(refusal.reason, "ek-chain\\x1b[2J");
  // The authority's own escapes stay as they are; bytes that are not UTF-8 became U+FFFD.
  EXPECT_EQ(refusal.detail, "unit \"A\\x01\" \xEF\xBF\xBD");
}

TEST_F(FactoryServiceTest, AnAuthorityThatFailsIsA500WhoseErrorStaysInTheLog) {
  authority_.failure = Error(ErrorDomain::kIo, 5, "the ledger /var/lib/factory/ledger.db cannot be written");
  StartService(ServiceOptions());
  auto begun = Client(ClientOptions())->Begin({.serial = "A", .model = "B"});
  EXPECT_THAT(begun, ResultIs(ErrorDomain::kPeer, PeerCode::kMalformed,
                              AllOf(HasSubstr("answered HTTP 500 to POST /v1/enrol/begin"),
                                    HasSubstr("the enrolment authority failed"), Not(HasSubstr("ledger")))));
  auto lines = LogLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["status"], 500);
  EXPECT_THAT(lines[0]["error"].get<std::string>(), HasSubstr("ledger.db cannot be written"));
}

// How a TLS 1.3 service refuses a station's certificate: with an alert after the station's side
// of the handshake is done, which the station reads (kTls naming the alert) unless the reset of
// the connection got there first (kPeer/kClosed).
auto RefusedByTls(const char* alert) {
  return ::testing::AnyOf(
      ResultIs(ErrorDomain::kTls, SSL_ERROR_SSL,
               AllOf(StartsWith("POST /v1/enrol/begin: the TLS session with"), HasSubstr(alert))),
      ResultIs(ErrorDomain::kPeer, PeerCode::kClosed,
               HasSubstr("a service that requires a station certificate does so when it does not accept")));
}

class StationCaTest : public FactoryServiceTest {
 protected:
  void SetUp() override {
    FactoryServiceTest::SetUp();
    WriteStationCertificate("station-ca", "Line", "station-07");
    WriteStationCertificate("other-ca", "Elsewhere", "intruder");
    auto options = ServiceOptions();
    options.station_ca = FactoryFiles::Chain(dir() / "station-ca");
    StartService(options);
  }
  FactoryClientOptions WithCertificate(const std::string& cn) const {
    auto options = ClientOptions();
    options.certificate = dir() / (cn + ".pem");
    options.private_key = dir() / (cn + ".key");
    return options;
  }
};

TEST_F(StationCaTest, AClientWithoutACertificateIsRefused) {
  auto begun = Client(ClientOptions())->Begin({.serial = "A", .model = "B"});
  EXPECT_THAT(begun, RefusedByTls("certificate required"));
  EXPECT_EQ(authority_.calls(), 0u);
}

TEST_F(StationCaTest, AStationCertificateFromTheStationCaNamesTheStation) {
  auto client = Client(WithCertificate("station-07"));
  auto begun = client->Begin({.serial = "FS0001", .model = "SRX4300", .station = "line-1 (forged)"});
  ASSERT_THAT(begun, IsOk());
  ASSERT_EQ(authority_.orders.size(), 1u);
  EXPECT_EQ(authority_.orders[0].station, "station-07");
  EXPECT_THAT(client->Submit("s-0001", Bytes{1}), IsOk());
  // A commit is in the certificate's station's name too, whatever the request says.
  EXPECT_THAT(
      client->Commit(
          "s-0001", {.station = "line-1 (forged)", .line_check = "PASS", .record = nlohmann::json::object()}),
      IsOk());
  ASSERT_EQ(authority_.committed.size(), 1u);
  EXPECT_EQ(authority_.committed[0].second.station, "station-07");
  auto lines = LogLines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["station"], "station-07");
  EXPECT_EQ(lines[1]["station"], "station-07");
  EXPECT_EQ(lines[2]["station"], "station-07");
}

TEST_F(StationCaTest, AStationCertificateFromAnotherCaIsRefused) {
  auto begun = Client(WithCertificate("intruder"))->Begin({.serial = "A", .model = "B"});
  EXPECT_THAT(begun, RefusedByTls("unknown ca"));
  EXPECT_EQ(authority_.calls(), 0u);
}

TEST_F(FactoryServiceTest, TheClientRefusesAServiceFromAnotherCaBeforeSendingAnything) {
  StartService(ServiceOptions());
  auto other = InitFactory({.dir = dir() / "other-factory"});
  ASSERT_THAT(other, IsOk());
  auto options = ClientOptions();
  options.trust = FactoryFiles::Chain(dir() / "other-factory");
  auto begun = Client(options)->Begin({.serial = "A", .model = "B"});
  EXPECT_THAT(begun, ResultIs(ErrorDomain::kVerify, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                              HasSubstr("is not trusted, nothing was sent to it")));
  EXPECT_EQ(authority_.calls(), 0u);
  EXPECT_TRUE(LogLines().empty());  // no request reached the service
}

TEST_F(FactoryServiceTest, TheClientRefusesAServiceReachedByANameItsCertificateDoesNotHold) {
  // A certificate for 127.0.0.1 only (no DNS:localhost), reached as localhost.
  auto key = GenerateKey(KeyAlgorithm::kEccP256);
  auto cert = IssueCertificate(
      {.subject = {{"CN", "127.0.0.1"}},
       .not_after = "20991231235959Z",
       .extensions = {{"extendedKeyUsage", "serverAuth"}, {"subjectAltName", "IP:127.0.0.1"}}},
      **key, factory_->issuing.get(), *factory_->issuing_key);
  ASSERT_THAT(cert, IsOk());
  ASSERT_THAT(
      WriteFileAtomic(dir() / "ip-only.pem", *CertificatePem(**cert) + *CertificatePem(*factory_->issuing)),
      IsOk());
  ASSERT_THAT(WritePrivateKeyPem(dir() / "ip-only.key", **key), IsOk());
  auto service_options = ServiceOptions();
  service_options.certificate = dir() / "ip-only.pem";
  service_options.private_key = dir() / "ip-only.key";
  StartService(service_options);

  auto options = ClientOptions();
  options.url = Url("localhost");
  auto begun = Client(options)->Begin({.serial = "A", .model = "B"});
  EXPECT_THAT(begun, ResultIs(ErrorDomain::kVerify, X509_V_ERR_HOSTNAME_MISMATCH,
                              HasSubstr("nothing was sent to it")));
  EXPECT_EQ(authority_.calls(), 0u);
  // The same service by the name its certificate holds is trusted.
  EXPECT_THAT(Client(ClientOptions())->Begin({.serial = "A", .model = "B"}), IsOk());
}

TEST_F(FactoryServiceTest, TheClientDoesNotFallBackToTheCommonNameWhenTheCertificateHasNames) {
  // RFC 6125 6.4.4: CN = localhost does not count when subjectAltName names another host.
  auto key = GenerateKey(KeyAlgorithm::kEccP256);
  auto cert = IssueCertificate(
      {.subject = {{"CN", "localhost"}},
       .not_after = "20991231235959Z",
       .extensions = {{"extendedKeyUsage", "serverAuth"}, {"subjectAltName", "DNS:factory.example"}}},
      **key, factory_->issuing.get(), *factory_->issuing_key);
  ASSERT_THAT(cert, IsOk());
  ASSERT_THAT(WriteFileAtomic(dir() / "cn-only.pem", *CertificatePem(**cert)), IsOk());
  ASSERT_THAT(WritePrivateKeyPem(dir() / "cn-only.key", **key), IsOk());
  auto service_options = ServiceOptions();
  service_options.certificate = dir() / "cn-only.pem";
  service_options.private_key = dir() / "cn-only.key";
  StartService(service_options);
  auto options = ClientOptions();
  options.url = Url("localhost");
  EXPECT_THAT(
      Client(options)->Begin({.serial = "A", .model = "B"}),
      ResultIs(ErrorDomain::kVerify, X509_V_ERR_HOSTNAME_MISMATCH, HasSubstr("nothing was sent to it")));
  EXPECT_EQ(authority_.calls(), 0u);
}

TEST_F(FactoryServiceTest, AStoppedServiceIsUnreachable) {
  StartService(ServiceOptions());
  auto client = Client(ClientOptions());
  service_->Stop();
  EXPECT_THAT(client->Begin({.serial = "A", .model = "B"}),
              ResultIs(ErrorDomain::kPeer, PeerCode::kUnreachable,
                       HasSubstr("cannot connect to https://127.0.0.1:")));
}

TEST_F(FactoryServiceTest, AServiceThatNeverAnswersTimesOut) {
  // A listening socket: the kernel accepts connections on it, and nothing ever speaks.
  auto listener = OpenSocket(AF_INET, SOCK_STREAM);
  ASSERT_THAT(listener, IsOk());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener->get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener->get(), 8), 0);
  socklen_t length = sizeof addr;
  ASSERT_EQ(::getsockname(listener->get(), reinterpret_cast<sockaddr*>(&addr), &length), 0);

  auto options = ClientOptions();
  options.url = fmt::format("https://127.0.0.1:{}", ntohs(addr.sin_port));
  options.connect_timeout = 300ms;
  options.read_timeout = 300ms;
  auto started = std::chrono::steady_clock::now();
  auto begun = Client(options)->Begin({.serial = "A", .model = "B"});
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_THAT(begun,
              ResultIs(ErrorDomain::kPeer, PeerCode::kTimeout, HasSubstr("said nothing within 300 ms")));
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 3s);
}

struct MalformedCase {
  const char* path;
  std::string body;
  const char* error;
};

TEST_F(FactoryServiceTest, MalformedBodiesAre400NamingTheProblem) {
  StartService(ServiceOptions());
  const std::vector<MalformedCase> cases = {
      {kEnrolBeginPath, "serial=FS0001", "the body is not JSON (RFC 8259; syntax error at byte 1)"},
      {kEnrolBeginPath, "[1,2]", "the body is not a JSON object"},
      {kEnrolBeginPath, R"({"serial":"A","model":"B"})", "the field \"version\" is missing"},
      {kEnrolBeginPath, R"({"version":"1","serial":"A","model":"B"})",
       "the field \"version\" is not an integer"},
      {kEnrolBeginPath, R"({"version":2,"serial":"A","model":"B"})",
       "version 2 is not spoken here (version 1 is)"},
      {kEnrolBeginPath, R"({"version":1,"serial":"A"})", "the field \"model\" is missing"},
      {kEnrolBeginPath, R"({"version":1,"serial":7,"model":"B"})", "the field \"serial\" is not a string"},
      {kEnrolRequestPath, R"({"version":1,"session":"s","csr":"abc"})",
       "the field \"csr\": is not padded base64 (RFC 4648 §4): 3 characters, not a multiple of 4"},
      {kEnrolRequestPath, R"({"version":1,"session":"s","csr":"ab\u001b="})",
       "the field \"csr\": is not base64 (RFC 4648 §4): character 2 is \"\\x1b\""},
      {kEnrolActivatePath, R"({"version":1,"session":"s","secret":"QQ==="})",
       "the field \"secret\": is not padded base64 (RFC 4648 §4): 5 characters, not a multiple of 4"},
      {kEnrolActivatePath, R"({"version":1,"secret":"QQ=="})", "the field \"session\" is missing"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    auto res = Raw("POST", c.path, c.body);
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 400);
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    auto body = Json::parse(res->body, nullptr, false);
    EXPECT_EQ(body["version"], 1);
    EXPECT_EQ(body["error"], c.error);
  }
  EXPECT_EQ(authority_.calls(), 0u);
}

TEST_F(FactoryServiceTest, ABodyOver256KiBIs413) {
  StartService(ServiceOptions());
  std::string body = EncodeSubmitRequest("s", Bytes(200 * 1024, 1));
  ASSERT_GT(body.size(), kEnrolmentBodyMaxBytes);
  auto res = Raw("POST", kEnrolRequestPath, body);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(Json::parse(res->body, nullptr, false)["error"], "the body is larger than 262144 bytes");
  EXPECT_EQ(authority_.calls(), 0u);
  // Just under the limit is read.
  auto fits = Raw("POST", kEnrolRequestPath, EncodeSubmitRequest("s", Bytes(150 * 1024, 1)));
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 200);
}

TEST_F(FactoryServiceTest, AnUnknownPathIs404AndAnotherMethodIs405) {
  StartService(ServiceOptions());
  auto unknown = Raw("POST", "/v1/enrol/finish", "{}");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_THAT(Json::parse(unknown->body, nullptr, false)["error"].get<std::string>(),
              StartsWith("no resource \"/v1/enrol/finish\""));
  auto get = Raw("GET", kEnrolBeginPath, "");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(get->get_header_value("Allow"), "POST");
  EXPECT_EQ(Json::parse(get->body, nullptr, false)["error"],
            "\"GET\" \"/v1/enrol/begin\" is not allowed; only POST is");
  EXPECT_EQ(authority_.calls(), 0u);
}

TEST_F(FactoryServiceTest, TheClientSaysWhatTheServiceAnsweredToABodyItRefused) {
  StartService(ServiceOptions());
  auto submitted = Client(ClientOptions())->Submit("s-0001", Bytes(200 * 1024, 7));
  EXPECT_THAT(submitted,
              ResultIs(ErrorDomain::kPeer, PeerCode::kMalformed,
                       HasSubstr("answered HTTP 413 to POST /v1/enrol/request: the body is larger than "
                                 "262144 bytes")));
  EXPECT_EQ(authority_.calls(), 0u);
}

TEST_F(FactoryServiceTest, AnAnswerOutsideTheWireFormatIsMalformed) {
  // A service that speaks HTTPS with the right certificate and answers nonsense.
  httplib::SSLServer server(ServiceFiles::Certificate(dir()).c_str(), ServiceFiles::Key(dir()).c_str());
  ASSERT_TRUE(server.is_valid());
  server.Post(kEnrolBeginPath, [](const httplib::Request& req, httplib::Response& res) {
    if (ParseBeginRequest(req.body)->serial == "big") {
      res.set_content(EncodeSession({"s-1", Bytes(kEnrolmentBodyMaxBytes, 1)}), "application/json");
    } else {
      res.set_content(R"({"version":1,"session":"s\n1","nonce":""})", "application/json");
    }
  });
  server.Post(kEnrolRequestPath, [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hello", "text/plain");
  });
  server.Post(kEnrolActivatePath, [](const httplib::Request&, httplib::Response& res) {
    res.status = 403;
    res.set_content(R"({"version":1})", "application/json");
  });
  int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread thread([&] { server.listen_after_bind(); });
  ASSERT_TRUE(PollUntil([&] { return server.is_running(); }, 10s));
  auto options = ClientOptions();
  options.url = fmt::format("https://127.0.0.1:{}", port);
  auto client = Client(options);

  EXPECT_THAT(
      client->Begin({.serial = "A", .model = "B"}),
      ResultIs(ErrorDomain::kPeer, PeerCode::kMalformed, HasSubstr("answered a session id that is empty")));
  EXPECT_THAT(client->Begin({.serial = "big", .model = "B"}),
              ResultIs(ErrorDomain::kPeer, PeerCode::kTooLarge, HasSubstr("more than the 262144")));
  EXPECT_THAT(client->Submit("s", Bytes{1}),
              ResultIs(ErrorDomain::kPeer, PeerCode::kMalformed,
                       AllOf(HasSubstr("to POST /v1/enrol/request is not enrolment version 1"),
                             HasSubstr("the body is not JSON"))));
  EXPECT_THAT(client->Activate("s", Bytes{1}),
              ResultIs(ErrorDomain::kPeer, PeerCode::kMalformed,
                       AllOf(HasSubstr("the refusal of https://127.0.0.1:"),
                             HasSubstr("the field \"refused\" is missing"))));
  server.stop();
  thread.join();
}

TEST_F(FactoryServiceTest, TheLogHasOneJsonLinePerRequest) {
  authority_.submit_answer = EnrolmentRefusal{"tcg-csr", "the CSR's signature does not verify"};
  StartService(ServiceOptions());
  auto client = Client(ClientOptions());
  ASSERT_THAT(client->Begin({.serial = "FS0001", .model = "SRX4300", .station = "line\n9"}), IsOk());
  ASSERT_THAT(client->Submit("s-0001", Bytes{1}), IsOk());
  ASSERT_TRUE(Raw("POST", kEnrolActivatePath, "{"));
  ASSERT_TRUE(Raw("POST", "/nowhere", "{}"));

  auto lines = LogLines();
  ASSERT_EQ(lines.size(), 4u);
  for (const auto& line : lines) {
    for (const char* key :
         {"time", "peer", "station", "method", "path", "status", "session", "reason", "error"}) {
      EXPECT_TRUE(line.contains(key)) << key << " in " << line.dump();
    }
    EXPECT_THAT(line["peer"].get<std::string>(), StartsWith("127.0.0.1:"));
  }
  EXPECT_EQ(lines[0]["path"], "/v1/enrol/begin");
  EXPECT_EQ(lines[0]["status"], 200);
  EXPECT_EQ(lines[0]["session"], "s-0001");
  EXPECT_EQ(lines[0]["station"], "line\\n9");  // what the station claimed, escaped
  EXPECT_EQ(lines[1]["path"], "/v1/enrol/request");
  EXPECT_EQ(lines[1]["status"], 403);
  EXPECT_EQ(lines[1]["session"], "s-0001");
  EXPECT_EQ(lines[1]["reason"], "tcg-csr");
  EXPECT_EQ(lines[2]["status"], 400);
  EXPECT_THAT(lines[2]["error"].get<std::string>(), StartsWith("the body is not JSON"));
  EXPECT_EQ(lines[3]["status"], 404);
  EXPECT_EQ(lines[3]["path"], "/nowhere");
}

TEST_F(FactoryServiceTest, StationsAreServedAtOnce) {
  StartService(ServiceOptions());
  std::vector<std::thread> stations;
  std::atomic<int> enrolled{0};
  for (int s = 0; s < 4; ++s) {
    stations.emplace_back([&, s] {
      auto client = HttpsEnrolmentChannel::Connect(ClientOptions());
      if (!client) return;
      for (int i = 0; i < 5; ++i) {
        auto begun = (*client)->Begin({.serial = fmt::format("FS{}{}", s, i), .model = "SRX4300"});
        if (begun && std::holds_alternative<EnrolmentSession>(*begun)) ++enrolled;
      }
    });
  }
  for (auto& t : stations) t.join();
  EXPECT_EQ(enrolled, 20);
  EXPECT_EQ(authority_.calls(), 20u);
}

TEST_F(FactoryServiceTest, CurlGetsTheDocumentedJson) {
  StartService(ServiceOptions());
  auto run = RunCommand(
      {"curl", "--cacert", Trust().string(), "-sS", "-X", "POST", "-H", "Content-Type: application/json",
       "-d", R"({"version":1,"serial":"FS0001","model":"SRX4300"})", "-w", "\n%{http_code} %{content_type}",
       Url() + "/v1/enrol/begin"},
      {}, 30s);
  ASSERT_THAT(run, IsOk());
  ASSERT_EQ(run->exit_status, 0) << run->err;
  auto newline = run->out.rfind('\n');
  ASSERT_NE(newline, std::string::npos) << run->out;
  EXPECT_EQ(run->out.substr(newline + 1), "200 application/json");
  auto body = Json::parse(run->out.substr(0, newline), nullptr, false);
  EXPECT_EQ(body, Json({{"version", 1}, {"session", "s-0001"}, {"nonce", "AQIDAP8="}}));
  ASSERT_EQ(authority_.orders.size(), 1u);
  EXPECT_EQ(authority_.orders[0].serial, "FS0001");
}

TEST_F(FactoryServiceTest, PythonGetsTheDocumentedJson) {
  authority_.begin_answer = EnrolmentRefusal{"serial-known", "unit \"FS0002\" is enrolled already"};
  StartService(ServiceOptions());
  const char* script = R"(
import http.client, json, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[1])
connection = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[2]), context=context, timeout=20)
connection.request("POST", "/v1/enrol/begin", body=json.dumps({"version": 1, "serial": "FS0002", "model": "SRX4300"}),
                   headers={"Content-Type": "application/json"})
answer = connection.getresponse()
print(answer.status, answer.getheader("Content-Type"))
print(json.dumps(json.loads(answer.read()), sort_keys=True))
)";
  auto run =
      RunCommand({"python3", "-c", script, Trust().string(), std::to_string(service_->port())}, {}, 30s);
  ASSERT_THAT(run, IsOk());
  ASSERT_EQ(run->exit_status, 0) << run->err;
  EXPECT_EQ(
      run->out,
      "403 application/json\n"
      R"({"refused": {"detail": "unit \"FS0002\" is enrolled already", "reason": "serial-known"}, "version": 1})"
      "\n");
}

TEST_F(FactoryServiceTest, StartNamesTheFileItCannotUse) {
  auto options = ServiceOptions();
  options.certificate = dir() / "missing.pem";
  EXPECT_THAT(FactoryService::Start(options, authority_),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kFile,
                       StartsWith("the service certificate " + options.certificate.string())));
  options = ServiceOptions();
  options.private_key = dir() / "factory" / "issuing-ca.key";
  EXPECT_THAT(
      FactoryService::Start(options, authority_),
      ResultIs(ErrorDomain::kConfig, ConfigCode::kFile, HasSubstr("does not belong to the certificate")));
  options = ServiceOptions();
  options.station_ca = dir() / "service.key";
  EXPECT_THAT(FactoryService::Start(options, authority_),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kFile, StartsWith("the station CA bundle")));
}

TEST_F(FactoryServiceTest, StartFailsWithIoWhenThePortIsTaken) {
  StartService(ServiceOptions());
  auto options = ServiceOptions();
  options.port = service_->port();
  EXPECT_THAT(FactoryService::Start(options, authority_),
              ResultIs(ErrorDomain::kIo, EADDRINUSE,
                       HasSubstr(fmt::format("cannot listen on 127.0.0.1:{}", options.port))));
}

TEST_F(FactoryServiceTest, ConnectRefusesAUrlThatIsNotHttps) {
  for (std::string url : {"http://127.0.0.1:8443", "ftp://h:1", "https://", "https://h:0", "https://h:70000",
                          "https://h:8443/v1", "https://user@h:1", "https://h\r\nX:1", "127.0.0.1:8443"}) {
    SCOPED_TRACE(url);
    auto options = ClientOptions();
    options.url = url;
    EXPECT_THAT(HttpsEnrolmentChannel::Connect(options),
                ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, StartsWith("the factory URL \"")));
  }
  auto options = ClientOptions();
  options.url = "http://factory.example:8443";
  EXPECT_THAT(
      HttpsEnrolmentChannel::Connect(options),
      ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
               StartsWith("the factory URL \"http://factory.example:8443\" is not https://HOST:PORT")));
  for (std::string url : {"https://factory.example:8443", "https://[::1]:8443/", "https://10.0.0.1"}) {
    options.url = url;
    EXPECT_THAT(HttpsEnrolmentChannel::Connect(options), IsOk()) << url;
  }
}

TEST_F(FactoryServiceTest, ConnectChecksTheFilesItIsGiven) {
  auto options = ClientOptions();
  options.url = "https://127.0.0.1:1";
  options.certificate = ServiceFiles::Certificate(dir());
  EXPECT_THAT(
      HttpsEnrolmentChannel::Connect(options),
      ResultIs(ErrorDomain::kUsage, UsageCode::kMissingArgument, HasSubstr("one of them is missing")));
  options.private_key = dir() / "factory" / "root-ca.key";
  EXPECT_THAT(
      HttpsEnrolmentChannel::Connect(options),
      ResultIs(ErrorDomain::kConfig, ConfigCode::kFile, HasSubstr("does not belong to the certificate")));
  options = ClientOptions();
  options.url = "https://127.0.0.1:1";
  options.trust = dir() / "nothing.pem";
  EXPECT_THAT(HttpsEnrolmentChannel::Connect(options),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kFile,
                       StartsWith("the trust bundle " + options.trust.string())));
}

TEST(ServiceCertificate, NamesTheHostAndServesTls) {
  auto temp = *WorkDir::Create("service-certificate-test");
  auto factory = InitFactory({.dir = temp.path() / "factory"});
  ASSERT_THAT(factory, IsOk());
  auto names = [&](const std::string& host) {
    auto identity = IssueServiceCertificate(*factory, host);
    EXPECT_THAT(identity, IsOk());
    if (!identity) return std::string();
    auto* san = static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(identity->certificate.get(), NID_subject_alt_name, nullptr, nullptr));
    ossl::GeneralNames owned(san);
    std::string text;
    for (int i = 0; i < sk_GENERAL_NAME_num(san); ++i) {
      GENERAL_NAME* name = sk_GENERAL_NAME_value(san, i);
      if (name->type == GEN_DNS) {
        text += fmt::format("DNS:{} ", reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)));
      } else if (name->type == GEN_IPADD) {
        text += fmt::format("IP:{}B ", ASN1_STRING_length(name->d.iPAddress));
      }
    }
    return text;
  };
  EXPECT_EQ(names("factory.example"), "DNS:factory.example ");
  EXPECT_EQ(names("10.1.2.3"), "IP:4B ");
  EXPECT_EQ(names("127.0.0.1"), "IP:4B DNS:localhost IP:16B ");
  EXPECT_EQ(names("0.0.0.0"), "DNS:localhost IP:4B IP:16B ");
  EXPECT_EQ(names("localhost"), "DNS:localhost IP:4B IP:16B ");

  auto identity = IssueServiceCertificate(*factory, "factory.example");
  ASSERT_THAT(identity, IsOk());
  const X509& cert = *identity->certificate;
  EXPECT_EQ(*SubjectAttribute(cert, "CN"), std::vector<std::string>{"factory.example"});
  EXPECT_NE(X509_get_extended_key_usage(const_cast<X509*>(&cert)) & XKU_SSL_SERVER, 0u);
  EXPECT_EQ(X509_get_key_usage(const_cast<X509*>(&cert)), static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_check_ca(const_cast<X509*>(&cert)), 0);
  int days = 0, seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(&cert), X509_get0_notAfter(&cert)), 1);
  EXPECT_NEAR(days, 731, 1);

  ASSERT_THAT(WriteServiceIdentity(*identity, temp.path()), IsOk());
  struct stat key_stat {};
  ASSERT_EQ(::stat(ServiceFiles::Key(temp.path()).c_str(), &key_stat), 0);
  EXPECT_EQ(key_stat.st_mode & 0777, 0600u);
  auto written = LoadCertificateBundle(ServiceFiles::Certificate(temp.path()));
  ASSERT_THAT(written, IsOk());
  ASSERT_EQ(written->size(), 2u);  // the certificate, then the issuing CA
  EXPECT_EQ(X509_cmp((*written)[1].get(), factory->issuing.get()), 0);

  for (const std::string& host :
       std::vector<std::string>{"a,IP:1.2.3.4", "", "-bad.example", "x y", std::string(65, 'a')}) {
    EXPECT_THAT(IssueServiceCertificate(*factory, host),
                ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, StartsWith("the service host ")))
        << host;
  }
}

}  // namespace
}  // namespace idevid
