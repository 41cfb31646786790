// The inventory file and the identity verdict, without a TPM.
#include <cstdlib>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloud/connection_log.h"
#include "cloud/http_exchange.h"
#include "cloud/identity_verdict.h"
#include "cloud/inventory.h"
#include "cloud/testing/doubtful_identities.h"
#include "core/file_io.h"
#include "core/idevid_profile.h"
#include "core/testing/result_matchers.h"
#include "core/x509.h"
#include "core/x509_build.h"

namespace idevid {
namespace {

TEST(InventoryTest, ParsesSerialModelLinesWithHeaderCommentsAndBlanks) {
  auto inventory = ParseInventory("serial,model\n# line 2\n\nCW1, SRX4300\r\nCW2,SRX1500\n", "inv.csv");
  ASSERT_TRUE(inventory) << inventory.error().ToString();
  EXPECT_EQ(*inventory, (Inventory{{"CW1", "SRX4300"}, {"CW2", "SRX1500"}}));
}

struct BadInventory {
  const char* name;
  const char* text;
  const char* message;
  ConfigCode code;
};

class BadInventoryTest : public ::testing::TestWithParam<BadInventory> {};

TEST_P(BadInventoryTest, IsAConfigErrorNamingTheLine) {
  EXPECT_THAT(ParseInventory(GetParam().text, "inv.csv"),
              testing::ResultIs(ErrorDomain::kConfig, GetParam().code, GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Files, BadInventoryTest,
    ::testing::Values(BadInventory{"DuplicateSerial", "CW1,A\nCW2,B\nCW1,C\n",
                                   "inv.csv:3: serial CW1 is listed twice", ConfigCode::kConflict},
                      BadInventory{"NoModel", "CW1\n", "inv.csv:1: expected 'serial,model', got 'CW1'",
                                   ConfigCode::kSyntax},
                      BadInventory{"EmptySerial", ",SRX\n", "inv.csv:1: expected 'serial,model', got ',SRX'",
                                   ConfigCode::kSyntax},
                      BadInventory{"ThreeFields", "CW1,SRX,extra\n",
                                   "inv.csv:1: expected 'serial,model', got 'CW1,SRX,extra'",
                                   ConfigCode::kSyntax}),
    [](const auto& test) { return std::string(test.param.name); });

// A self-signed certificate shaped by `spec` (the chain is the handshake's business).
ossl::Cert Cert(CertificateSpec spec) {
  auto key = GenerateKey(KeyAlgorithm::kEccP256);
  return std::move(*IssueCertificate(spec, **key, nullptr, **key));
}

CertificateSpec Idevid(const std::string& serial, const std::string& model) {
  return *IdevidCertificateSpec({serial, model, "Example Networks", Bytes(32, 7)});
}

struct VerdictCase {
  const char* name;
  CertificateSpec spec;
  std::optional<Inventory> inventory;
  bool accepted;
  const char* reason;
};

class VerdictTest : public ::testing::TestWithParam<VerdictCase> {};

TEST_P(VerdictTest, JudgesTheIdentity) {
  const VerdictCase& c = GetParam();
  IdentityVerdict v = JudgeDeviceCertificate(*Cert(c.spec), c.inventory);
  EXPECT_EQ(v.accepted, c.accepted);
  EXPECT_EQ(v.reason, c.reason);
  EXPECT_EQ(v.ToJson()["verdict"], c.accepted ? "accepted" : "rejected");
}

CertificateSpec WithoutSan() {
  CertificateSpec s = Idevid("CW1", "SRX4300");
  s.der_extensions.clear();
  return s;
}
CertificateSpec AsCa() {
  CertificateSpec s = Idevid("CW1", "SRX4300");
  s.extensions[0] = {"basicConstraints", "critical,CA:TRUE"};
  return s;
}
CertificateSpec WrongUsage() {
  CertificateSpec s = Idevid("CW1", "SRX4300");
  s.extensions[1] = {"keyUsage", "critical,keyEncipherment"};
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Certificates, VerdictTest,
    ::testing::Values(
        VerdictCase{"Good", Idevid("CW1", "SRX4300"), std::nullopt, true, "ok"},
        VerdictCase{"InInventory", Idevid("CW1", "SRX4300"), Inventory{{"CW1", "SRX4300"}}, true, "ok"},
        VerdictCase{"UnknownSerial", Idevid("CW9", "SRX4300"), Inventory{{"CW1", "SRX4300"}}, false,
                    "serial CW9 is not in the inventory"},
        VerdictCase{"OtherModel", Idevid("CW1", "SRX4300"), Inventory{{"CW1", "SRX1500"}}, false,
                    "serial CW1 is a SRX1500 in the inventory, not a SRX4300"},
        VerdictCase{"NoHardwareModuleName", WithoutSan(), std::nullopt, false,
                    "no hardwareModuleName in subjectAltName"},
        VerdictCase{"CaAsLeaf", AsCa(), std::nullopt, false, "a CA certificate cannot be a device identity"},
        VerdictCase{"WrongKeyUsage", WrongUsage(), std::nullopt, false,
                    "the certificate's KeyUsage lacks digitalSignature"},
        VerdictCase{"EmptyHwSerialNum", testing::IdevidSpecWithHwSerials("CW1", {Bytes{}}), std::nullopt,
                    false, "hardwareModuleName hwSerialNum is empty"},
        VerdictCase{"TwoHardwareModuleNamesThatDiffer",
                    testing::IdevidSpecWithHwSerials("CW1", {Bytes(32, 1), Bytes(32, 2)}), std::nullopt,
                    false, "subjectAltName holds 2 hardwareModuleName entries that differ"},
        VerdictCase{"TheSameHardwareModuleNameTwice",
                    testing::IdevidSpecWithHwSerials("CW1", {Bytes(32, 1), Bytes(32, 1)}), std::nullopt, true,
                    "ok"},
        VerdictCase{"HwSerialNumOf60KB", testing::IdevidSpecWithHwSerials("CW1", {Bytes(60000, 0x5a)}),
                    std::nullopt, false, "hardwareModuleName hwSerialNum is 60000 bytes, more than 64"},
        VerdictCase{"HwSerialNumOf64Bytes", testing::IdevidSpecWithHwSerials("CW1", {Bytes(64, 1)}),
                    std::nullopt, true, "ok"},
        VerdictCase{
            "NoSerial", CertificateSpec{.subject = {{"CN", "SRX4300"}}, .not_after = "20991231235959Z"},
            std::nullopt, false, "the subject must carry exactly one serialNumber and one CN (802.1AR 8.8)"}),
    [](const auto& test) { return std::string(test.param.name); });

// A certificate that breaks several rules is refused with every one of them, in the order the
// rules are checked; `reason` stays the first.
TEST(IdentityVerdictTest, ACertificateBreakingTwoRulesIsRefusedWithBothFindings) {
  CertificateSpec spec = AsCa();
  spec.der_extensions.clear();  // no hardwareModuleName either
  IdentityVerdict v = JudgeDeviceCertificate(*Cert(spec), Inventory{{"CW2", "SRX4300"}});
  EXPECT_FALSE(v.accepted);
  using ::testing::ElementsAre;
  using ::testing::Field;
  EXPECT_THAT(v.findings.findings(), ElementsAre(Field(&Finding::id, "not-a-device-certificate"),
                                                 Field(&Finding::id, "hw-module-name-missing"),
                                                 Field(&Finding::id, "serial-not-in-inventory")));
  EXPECT_EQ(v.reason, "a CA certificate cannot be a device identity");
  nlohmann::json j = v.ToJson();
  EXPECT_EQ(j["reason"], v.reason);
  ASSERT_EQ(j["findings"].size(), 3u) << j.dump();
  EXPECT_EQ(j["findings"][1], (nlohmann::json{{"id", "hw-module-name-missing"},
                                              {"severity", "failure"},
                                              {"evidence", "no hardwareModuleName in subjectAltName"}}));
  EXPECT_EQ(j["findings"][2]["evidence"], "serial CW1 is not in the inventory");
}

TEST(IdentityVerdictTest, AnAcceptedCertificateHasNoFindings) {
  IdentityVerdict v = JudgeDeviceCertificate(*Cert(Idevid("CW1", "SRX4300")), std::nullopt);
  EXPECT_TRUE(v.accepted);
  EXPECT_TRUE(v.findings.findings().empty());
  EXPECT_EQ(v.ToJson()["findings"], nlohmann::json::array());
}

// The device_certificate fuzzer's corpus holds the doubtful identities as DER; set
// IDEVID_WRITE_CORPUS=1 to write them anew (self-signed: the verdict does not look at the chain).
TEST(DoubtfulIdentityCorpusTest, HoldsEachDoubtfulIdentityTheCloudRefuses) {
  std::filesystem::path corpus =
      std::filesystem::path(IDEVID_SOURCE_DIR) / "fixtures/fuzz/device_certificate";
  for (const auto& doubtful : testing::DoubtfulIdentities()) {
    std::filesystem::path file = corpus / (doubtful.name + ".der");
    if (std::getenv("IDEVID_WRITE_CORPUS") != nullptr) {
      ASSERT_TRUE(WriteFileAtomic(
          file, *CertificateDer(*Cert(testing::IdevidSpecWithHwSerials("CW1", doubtful.hw_serials)))));
    }
    auto cert = LoadCertificateFile(file);
    ASSERT_TRUE(cert) << cert.error().ToString();
    IdentityVerdict v = JudgeDeviceCertificate(**cert, std::nullopt);
    EXPECT_FALSE(v.accepted) << file;
    EXPECT_EQ(v.reason.rfind(doubtful.reason, 0), 0u) << v.reason;
  }
}

// A cloud that could not ask its ledger has no verdict on the unit: 503 with Retry-After.
TEST(HttpExchangeTest, AnUndecidedIdentityIs503WithRetryAfter) {
  IdentityVerdict verdict{false, "CW1", "SRX4300", "", {}};
  verdict.CannotDecide("ledger-unavailable", "the ledger cannot be asked about serial CW1");
  HttpResponse r = Answer("GET /v1/identity HTTP/1.1\r\nHost: x\r\n\r\n", verdict);
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(FormatResponse(r), ::testing::StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_THAT(FormatResponse(r), ::testing::HasSubstr("Retry-After: 5\r\n"));
  EXPECT_EQ(verdict.ToJson()["verdict"], "unavailable");
  EXPECT_EQ(verdict.ToJson()["findings"][0]["id"], "ledger-unavailable");
}

TEST(HttpExchangeTest, PostToTheIdentityIs405AllowingGet) {
  HttpResponse r = Answer("POST /v1/identity HTTP/1.1\r\nHost: x\r\n\r\n", {true, "CW1", "SRX4300", "ok"});
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.outcome, "method-not-allowed");
  EXPECT_EQ(r.served, std::nullopt);
  std::string text = FormatResponse(r);
  EXPECT_EQ(text.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << text;
  EXPECT_NE(text.find("\r\nAllow: GET\r\n"), std::string::npos) << text;
}

TEST(HttpExchangeTest, GetOfTheIdentityServesTheVerdict) {
  HttpResponse r = Answer("GET /v1/identity HTTP/1.1\r\n\r\n", {false, "CW1", "SRX4300", "no"});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.outcome, "served");
  EXPECT_EQ(r.served, "/v1/identity");
}

TEST(HttpExchangeTest, AnUnknownPathIs404WithThePathEscaped) {
  HttpResponse r = Answer("GET /\x1b[2Jx HTTP/1.1\r\n\r\n", {true, "CW1", "SRX4300", "ok"});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.reason, "no resource \"/\\x1b[2Jx\"; only GET /v1/identity is served");
  EXPECT_EQ(r.body.find('\x1b'), std::string::npos) << r.body;
}

TEST(HttpExchangeTest, AMalformedRequestLineIs400) {
  HttpResponse r = Answer("HELLO\r\n\r\n", {true, "CW1", "SRX4300", "ok"});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.reason, "the request line \"HELLO\" is not METHOD TARGET HTTP/1.x");
}

TEST(HttpExchangeTest, PlainHttpIsToldFromATlsRecord) {
  EXPECT_TRUE(LooksLikePlainHttp("GET / HTTP/1.1"));
  EXPECT_FALSE(LooksLikePlainHttp("\x16\x03\x01"));
  EXPECT_FALSE(LooksLikePlainHttp(""));
}

TEST(ConnectionRecordTest, UnservedConnectionsHaveNoVerdictStatusOrResource) {
  ConnectionRecord r{.peer = "127.0.0.1:1", .outcome = "stalled", .phase = "handshake"};
  nlohmann::json j = r.ToJson();
  EXPECT_TRUE(j["verdict"].is_null());
  EXPECT_TRUE(j["status"].is_null());
  EXPECT_TRUE(j["served"].is_null());
  EXPECT_TRUE(j["fingerprint"].is_null());
  EXPECT_TRUE(j["findings"].is_null());
  EXPECT_EQ(j["phase"], "handshake");
}

TEST(ConnectionRecordTest, DescribesTheCertificateByFingerprintAndHwSerialCutShort) {
  ossl::Cert cert = Cert(testing::IdevidSpecWithHwSerials("CW1", {Bytes(60000, 0xab)}));
  ConnectionRecord r;
  r.DescribeCertificate(*cert);
  EXPECT_EQ(r.fingerprint, *Sha256Fingerprint(*cert));
  EXPECT_EQ(r.serial, "CW1");
  EXPECT_EQ(r.model, "SRX4300");
  ASSERT_TRUE(r.hw_serial);
  EXPECT_EQ(r.hw_serial->rfind("abababab", 0), 0u) << *r.hw_serial;
  EXPECT_LT(r.hw_serial->size(), 200u);
  EXPECT_NE(r.hw_serial->find("(120000 bytes)"), std::string::npos) << *r.hw_serial;
}

}  // namespace
}  // namespace idevid
