// `idevid factory issue`: a file-mode identity as the factory issues it, checked with the tools a
// user holds (openssl, curl) and accepted by our cloud.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <map>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cloud/cloud_server.h"
#include "core/file_io.h"
#include "core/idevid_profile.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class FactoryIssueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto init = Idevid({"factory", "init", "--dir", Factory(), "--manufacturer", "Acme Devices"});
    ASSERT_EQ(init.exit_status, 0) << init.err;
  }
  static CommandOutput Run(const std::vector<std::string>& argv) {
    auto out = RunCommand(argv, {}, std::chrono::seconds(60));
    EXPECT_TRUE(out) << out.error().ToString();
    return out.value_or(CommandOutput{});
  }
  static CommandOutput Idevid(std::vector<std::string> args) {
    args.insert(args.begin(), IDEVID_BINARY);
    return Run(args);
  }
  CommandOutput Issue(const std::string& serial, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"factory", "issue",   "--dir",   Factory(), "--serial",
                                     serial,    "--model", "SRX4300", "--out",   Prefix()};
    args.insert(args.end(), extra.begin(), extra.end());
    return Idevid(args);
  }
  std::string Factory() const { return (temp_.path() / "factory").string(); }
  std::string FactoryCa() const { return FactoryFiles::Chain(Factory()).string(); }
  std::string Prefix() const { return (temp_.path() / "unit").string(); }
  std::string File(const std::string& name) const { return (temp_.path() / name).string(); }
  Bytes HwSerial(const std::string& cert_path) const {
    auto cert = LoadCertificateFile(cert_path);
    EXPECT_TRUE(cert);
    auto hwmn = FindHardwareModuleName(**cert);
    EXPECT_TRUE(hwmn && hwmn->has_value());
    EXPECT_EQ((*hwmn)->hw_type, kOidTpm2HwType);
    return (*hwmn)->hw_serial;
  }
  // The subjectAltName as `openssl asn1parse` shows it (the extension's OCTET STRING parsed).
  std::string OpenSslSanDump(const std::string& cert_path) const {
    auto all = Run({"openssl", "asn1parse", "-in", cert_path});
    EXPECT_EQ(all.exit_status, 0) << all.err;
    auto name = all.out.find(":X509v3 Subject Alternative Name");
    EXPECT_NE(name, std::string::npos) << all.out;
    auto line = all.out.find('\n', name) + 1;
    std::string offset = all.out.substr(line, all.out.find(':', line) - line);
    auto san = Run({"openssl", "asn1parse", "-in", cert_path, "-strparse", offset});
    EXPECT_EQ(san.exit_status, 0) << san.err;
    return san.out;
  }
  // SHA-256 of a key's SubjectPublicKeyInfo, as openssl computes it.
  std::string OpenSslSpkiDigest(const std::string& key_path) const {
    auto spki =
        Run({"openssl", "pkey", "-in", key_path, "-pubout", "-outform", "DER", "-out", File("spki.der")});
    EXPECT_EQ(spki.exit_status, 0) << spki.err;
    auto digest = Run({"openssl", "dgst", "-sha256", "-r", File("spki.der")});
    EXPECT_EQ(digest.exit_status, 0) << digest.err;
    return digest.out.substr(0, 64);
  }

  testing::TempDir temp_;
};

unsigned Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST_F(FactoryIssueTest, CertificateVerifiesWithOpenSslAndCarriesThe8021ArProfile) {
  auto issued = Issue("CW123456", {"--json"});
  ASSERT_EQ(issued.exit_status, 0) << issued.err;
  auto json = nlohmann::json::parse(issued.out);
  EXPECT_EQ(json["certificate"], Prefix() + ".pem");
  EXPECT_EQ(json["chain"], Prefix() + "-chain.pem");
  EXPECT_EQ(json["key"], Prefix() + ".key");
  EXPECT_EQ(json["fingerprint_sha256"], *Sha256Fingerprint(**LoadCertificateFile(Prefix() + ".pem")));
  EXPECT_EQ(Mode(Prefix() + ".key"), 0600u);

  auto verified = Run({"openssl", "verify", "-CAfile", FactoryCa(), Prefix() + ".pem"});
  EXPECT_EQ(verified.exit_status, 0) << verified.out << verified.err;
  EXPECT_EQ(verified.out, Prefix() + ".pem: OK\n");
  auto chain = Run({"openssl", "verify", "-CAfile", FactoryFiles::RootCert(Factory()).string(), "-untrusted",
                    Prefix() + "-chain.pem", Prefix() + "-chain.pem"});
  EXPECT_EQ(chain.exit_status, 0) << chain.out << chain.err;

  auto text = Run({"openssl", "x509", "-in", Prefix() + ".pem", "-noout", "-text"});
  ASSERT_EQ(text.exit_status, 0) << text.err;
  for (const char* shown :
       {"Subject: O = Acme Devices, CN = SRX4300, serialNumber = CW123456",
        "X509v3 Subject Alternative Name:", "othername: 1.3.6.1.5.5.7.8.4::",
        "X509v3 Basic Constraints: critical\n                CA:FALSE",
        "X509v3 Key Usage: critical\n                Digital Signature", "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier", "Not After : Dec 31 23:59:59 9999 GMT"}) {
    EXPECT_THAT(text.out, HasSubstr(shown)) << shown << "\n" << text.out;
  }
  // A key in a file claims no TPM residency (TCG policies 2.23.133.11.1.x).
  EXPECT_THAT(text.out, Not(HasSubstr("2.23.133.11.1")));
  // RFC 4108 5: otherName hardwareModuleName { hwType tcg-at-tpm20, hwSerialNum }.
  std::string san = OpenSslSanDump(Prefix() + ".pem");
  for (const char* shown : {":1.3.6.1.5.5.7.8.4", ":2.23.133.1.2", "OCTET STRING      [HEX DUMP]:"}) {
    EXPECT_THAT(san, HasSubstr(shown)) << shown << "\n" << san;
  }
  // No TPM, no EK: hwSerialNum is SHA-256 of the new key's public key.
  EXPECT_EQ(Hex(HwSerial(Prefix() + ".pem")), OpenSslSpkiDigest(Prefix() + ".key"));
  std::string digest = OpenSslSpkiDigest(Prefix() + ".key");
  EXPECT_EQ(json["hw_serial"], digest);
  std::transform(digest.begin(), digest.end(), digest.begin(), ::toupper);
  EXPECT_THAT(san, HasSubstr("[HEX DUMP]:" + digest)) << digest << "\n" << san;
}

TEST_F(FactoryIssueTest, RsaKeyOnRequest) {
  ASSERT_EQ(Issue("CW1", {"--alg", "rsa-2048"}).exit_status, 0);
  auto text = Run({"openssl", "x509", "-in", Prefix() + ".pem", "-noout", "-text"});
  EXPECT_THAT(text.out, HasSubstr("Public-Key: (2048 bit)"));
  EXPECT_THAT(text.out, HasSubstr("rsaEncryption"));
}

TEST_F(FactoryIssueTest, OurCloudAcceptsItOverCurl) {
  ASSERT_EQ(Issue("CW777").exit_status, 0);
  auto factory = LoadFactory(Factory());
  ASSERT_TRUE(factory) << factory.error().ToString();
  auto key = GenerateKey(KeyAlgorithm::kEccP256);
  auto cert = IssueCertificate({.subject = {{"CN", "cloud"}},
                                .not_after = "20991231235959Z",
                                .extensions = {{"subjectAltName", "IP:127.0.0.1"}}},
                               **key, factory->issuing.get(), *factory->issuing_key);
  ASSERT_TRUE(cert) << cert.error().ToString();
  ASSERT_TRUE(
      WriteFileAtomic(File("server.pem"), *CertificatePem(**cert) + *CertificatePem(*factory->issuing)));
  ASSERT_TRUE(WritePrivateKeyPem(File("server.key"), **key));
  auto cloud = CloudServer::Start({.certificate = File("server.pem"),
                                   .private_key = File("server.key"),
                                   .factory_ca = FactoryCa(),
                                   .log = File("cloud.jsonl")});
  ASSERT_TRUE(cloud) << cloud.error().ToString();
  auto answer =
      Run({"curl", "--silent", "--show-error", "--cert", Prefix() + ".pem", "--key", Prefix() + ".key",
           "--cacert", FactoryCa(), fmt::format("https://127.0.0.1:{}/v1/identity", (*cloud)->port())});
  (*cloud)->Stop();
  ASSERT_EQ(answer.exit_status, 0) << answer.err;
  auto verdict = nlohmann::json::parse(answer.out);
  EXPECT_EQ(verdict["verdict"], "accepted") << answer.out;
  EXPECT_EQ(verdict["serial"], "CW777");
  EXPECT_EQ(verdict["model"], "SRX4300");
}

TEST_F(FactoryIssueTest, HardwareSerialFromTheCommandLineOrAnEkCertificate) {
  ASSERT_EQ(Issue("CW1", {"--hw-serial", "0a0B0c"}).exit_status, 0);
  EXPECT_EQ(HwSerial(Prefix() + ".pem"), (Bytes{0x0a, 0x0b, 0x0c}));
  EXPECT_THAT(OpenSslSanDump(Prefix() + ".pem"), HasSubstr("OCTET STRING      [HEX DUMP]:0A0B0C"));
  // Any certificate stands in for an EK certificate: hwSerialNum is SHA-256 of its public key.
  auto ek = FactoryFiles::RootCert(Factory()).string();
  ASSERT_EQ(Issue("CW1", {"--force", "--ek-cert", ek}).exit_status, 0);
  EXPECT_EQ(HwSerial(Prefix() + ".pem"), *HardwareSerialFromEk(**LoadCertificateFile(ek)));
}

struct BadInput {
  std::string name;
  std::vector<std::string> args;  // --dir, --serial, --model and --out default to a good value
  std::string reason;
};

class FactoryIssueBadInputTest : public FactoryIssueTest, public ::testing::WithParamInterface<BadInput> {};

TEST_P(FactoryIssueBadInputTest, IsAUsageErrorWithTheReasonAndWritesNothing) {
  std::vector<std::string> args = {"factory", "issue"};
  args.insert(args.end(), GetParam().args.begin(), GetParam().args.end());
  for (const auto& [option, value] : std::map<std::string, std::string>{
           {"--dir", Factory()}, {"--serial", "CW1"}, {"--model", "SRX4300"}, {"--out", Prefix()}}) {
    if (std::find(args.begin(), args.end(), option) == args.end()) args.insert(args.end(), {option, value});
  }
  auto out = Idevid(args);
  EXPECT_EQ(out.exit_status, 4) << out.err;
  EXPECT_THAT(out.err, HasSubstr("idevid: " + GetParam().reason));
  EXPECT_FALSE(std::filesystem::exists(Prefix() + ".pem"));
  EXPECT_FALSE(std::filesystem::exists(Prefix() + ".key"));
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, FactoryIssueBadInputTest,
    ::testing::Values(
        BadInput{"SerialWithUnderscore",
                 {"--serial", "CW_1"},
                 "the serial number 'CW_1' has a character that a certificate's PrintableString "
                 "cannot hold at position 3 (byte 0x5f)"},
        BadInput{"SerialTooLong",
                 {"--serial", std::string(65, '7')},
                 "the serial number must be 1 to 64 characters, got 65"},
        BadInput{"EmptyModel", {"--model", ""}, "the model must be 1 to 64 characters, got 0"},
        BadInput{"OddHex", {"--hw-serial", "abc"}, "--hw-serial \"abc\" is not an even number of hex digits"},
        BadInput{
            "NotHex", {"--hw-serial", "zz"}, "--hw-serial \"zz\" holds a character that is not a hex digit"},
        BadInput{
            "UnknownAlgorithm", {"--alg", "dsa"}, "unknown key algorithm 'dsa': use ecc-p256 or rsa-2048"},
        BadInput{"NoFactory", {"--dir", "/nonexistent-factory"}, "/nonexistent-factory holds no factory CA"}),
    [](const auto& instance) { return instance.param.name; });

TEST_F(FactoryIssueTest, OutputDirectoryMustExist) {
  auto out = Idevid({"factory", "issue", "--dir", Factory(), "--serial", "CW1", "--model", "M", "--out",
                     File("nowhere/unit")});
  EXPECT_EQ(out.exit_status, 4);
  EXPECT_THAT(out.err, HasSubstr("no such directory \"" + File("nowhere") + "\""));
}

TEST_F(FactoryIssueTest, ExistingOutputIsKeptUnlessForced) {
  ASSERT_EQ(Issue("CW1").exit_status, 0);
  std::string first = *ReadFileText(Prefix() + ".pem");
  std::string first_key = *ReadFileText(Prefix() + ".key");
  auto refused = Issue("CW2");
  EXPECT_EQ(refused.exit_status, 4);
  EXPECT_THAT(refused.err,
              HasSubstr("idevid: \"" + Prefix() + ".pem\" already exists; pass --force to replace it"));
  EXPECT_EQ(*ReadFileText(Prefix() + ".pem"), first);
  EXPECT_EQ(*ReadFileText(Prefix() + ".key"), first_key);
  // Any one of the three files is enough to refuse.
  std::filesystem::remove(Prefix() + ".pem");
  std::filesystem::remove(Prefix() + "-chain.pem");
  EXPECT_EQ(Issue("CW2").exit_status, 4);
  EXPECT_EQ(*ReadFileText(Prefix() + ".key"), first_key);

  auto forced = Issue("CW2", {"--force"});
  EXPECT_EQ(forced.exit_status, 0) << forced.err;
  EXPECT_THAT(forced.out, HasSubstr("issued CW2 (SRX4300)"));
  EXPECT_NE(*ReadFileText(Prefix() + ".key"), first_key);
  EXPECT_EQ(*SubjectAttribute(**LoadCertificateFile(Prefix() + ".pem"), "2.5.4.5"),
            std::vector<std::string>{"CW2"});
}

}  // namespace
}  // namespace idevid
