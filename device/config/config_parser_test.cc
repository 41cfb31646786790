#include "device/config/config_parser.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using testing::ResultIs;

constexpr const char* kSeedConfig = R"(# the appliance's configuration, as in the design
set security pki ca-profile cloud-ca ca-identity cloud-ca
set security pki ca-profile cloud-ca certificate /etc/idevid/cloud-ca.pem
set security pki ca-profile factory ca-identity factory
set security pki ca-profile factory certificate "/etc/idevid/factory ca.pem"
set security pki node-local local-certificate fs-cert certificate /etc/idevid/fs-cert.pem
set security pki node-local local-certificate fs-cert private-key /etc/idevid/fs-cert.key
set security pki node-local local-certificate fs-cert ca-profile factory
set security pki node-local idev-id nv-index 0x01C90000 key-handle 0x81020000
set services ssl initiation profile aamw-tpm client-certificate idev-id
set services ssl initiation profile aamw-tpm crypto-hardware-offload tpm
set services ssl initiation profile aamw-tpm trusted-ca cloud-ca   # trailing comment
set services ssl initiation profile aamw-file client-certificate fs-cert
set services ssl initiation profile aamw-file trusted-ca cloud-ca
set services ssl initiation profile aamw-file server-name cloud.example
set services ssl initiation profile aamw-file protocol-version tls13
set services ssl initiation profile aamw-file handshake-timeout 5
)";

TEST(ConfigParserTest, TheSeedConfigurationParsesIntoTheModel) {
  auto config = ParseDeviceConfig(kSeedConfig, "device.conf");
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->ca_profiles.size(), 2u);
  EXPECT_EQ(config->ca_profiles.at("factory").certificate, "/etc/idevid/factory ca.pem");
  const LocalCertificate& fs = config->local_certificates.at("fs-cert");
  EXPECT_EQ(fs.private_key, "/etc/idevid/fs-cert.key");
  EXPECT_EQ(fs.ca_profile, "factory");
  EXPECT_EQ(fs.defined_at.ToString(), "device.conf:6:1");
  EXPECT_EQ(config->idevid.nv_index, 0x01C90000u);
  EXPECT_EQ(config->idevid.key_handle, 0x81020000u);
  const SslInitiationProfile& tpm = config->ssl_profiles.at("aamw-tpm");
  EXPECT_TRUE(tpm.tpm_offload);
  EXPECT_EQ(tpm.client_certificate, "idev-id");
  EXPECT_EQ(tpm.trusted_ca, "cloud-ca");
  const SslInitiationProfile& file = config->ssl_profiles.at("aamw-file");
  EXPECT_FALSE(file.tpm_offload);
  EXPECT_EQ(file.server_name, "cloud.example");
  EXPECT_EQ(file.versions, TlsVersions::kTls13);
  EXPECT_EQ(file.handshake_timeout_seconds, 5);
}

TEST(ConfigParserTest, EmptyAndCommentOnlyInputIsAnEmptyConfiguration) {
  auto config = ParseDeviceConfig("\n# nothing\n   \n", "empty.conf");
  ASSERT_TRUE(config);
  EXPECT_TRUE(config->ssl_profiles.empty());
  EXPECT_EQ(config->idevid.key_handle, 0x81020000u);
}

TEST(ConfigParserTest, AttestationStatementsParseIntoTheModel) {
  auto config = ParseDeviceConfig(
      "set security pki node-local attestation event-log /sys/kernel/security/tpm0/binary_bios_measurements\n"
      "set security pki node-local attestation pcrs sha256:0,1,2,3,4,5,6,7\n"
      "set security pki node-local attestation key-handle 0x81020005\n"
      "set security pki node-local attestation nv-index 0x01C90105\n",
      "device.conf");
  ASSERT_TRUE(config) << config.error().ToString();
  ASSERT_TRUE(config->attestation);
  EXPECT_EQ(config->attestation->event_log, "/sys/kernel/security/tpm0/binary_bios_measurements");
  ASSERT_TRUE(config->attestation->pcrs);
  EXPECT_EQ(config->attestation->pcrs->ToString(), "sha256:0,1,2,3,4,5,6,7");
  EXPECT_EQ(config->attestation->key_handle, 0x81020005u);
  EXPECT_EQ(config->attestation->nv_index, 0x01C90105u);
  EXPECT_EQ(config->attestation->defined_at.ToString(), "device.conf:1:1");
}

TEST(ConfigParserTest, AttestationDefaultsToTheIakAndWhateverTheCloudAsks) {
  auto config = ParseDeviceConfig("set security pki node-local attestation event-log /log\n", "device.conf");
  ASSERT_TRUE(config) << config.error().ToString();
  ASSERT_TRUE(config->attestation);
  EXPECT_FALSE(config->attestation->pcrs);
  EXPECT_EQ(config->attestation->key_handle, 0x81020001u);
  EXPECT_EQ(config->attestation->nv_index, 0x01C90100u);
  EXPECT_FALSE(ParseDeviceConfig(kSeedConfig, "device.conf")->attestation) << "no statement, no attestation";
}

struct BadCase {
  const char* name;
  std::string text;
  std::string message;  // the whole error message
  ConfigCode code;
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, IsRefusedWithFileLineColumnAndWhatWasExpected) {
  EXPECT_THAT(ParseDeviceConfig(GetParam().text, "d.conf"),
              ResultIs(ErrorDomain::kConfig, GetParam().code, GetParam().message));
}

const std::string kCa = "set security pki ca-profile ca certificate /ca.pem\n";

INSTANTIATE_TEST_SUITE_P(
    Statements, BadConfigTest,
    ::testing::Values(
        BadCase{"UnknownFirstWord", "delete security pki\n", "d.conf:1:1: expected 'set', got 'delete'",
                ConfigCode::kUnknownStatement},
        BadCase{"UnknownSection", "set security pkx ca-profile a\n", "d.conf:1:14: expected 'pki', got 'pkx'",
                ConfigCode::kUnknownStatement},
        BadCase{"WrongBranch", "\nset security pki node-local remote-certificate x\n",
                "d.conf:2:29: expected 'attestation', 'idev-id', 'local-certificate' or 'socket-group', got "
                "'remote-certificate'",
                ConfigCode::kUnknownStatement},
        BadCase{"Incomplete", "set services ssl initiation profile p trusted-ca\n",
                "d.conf:1:49: incomplete statement: expected a CA profile name after 'trusted-ca'",
                ConfigCode::kSyntax},
        BadCase{"UnknownAttribute", "set services ssl initiation profile p cipher aes\n",
                "d.conf:1:39: expected 'client-certificate', 'crypto-hardware-offload', "
                "'handshake-timeout', 'protocol-version', 'server-name' or 'trusted-ca', got "
                "'cipher'",
                ConfigCode::kUnknownStatement},
        BadCase{"OffloadOtherThanTpm", "set services ssl initiation profile p crypto-hardware-offload hsm\n",
                "d.conf:1:63: expected 'tpm', got 'hsm'", ConfigCode::kUnknownStatement},
        BadCase{"HandleNotHex", "set security pki node-local idev-id key-handle 81020000\n",
                "d.conf:1:48: expected a key handle like 0x81020000, got '81020000'", ConfigCode::kBadValue},
        BadCase{"TrailingWord",
                "set security pki node-local idev-id nv-index 0x01C90000 key-handle 0x81020000 x\n",
                "d.conf:1:79: unexpected 'x' after a complete statement", ConfigCode::kSyntax},
        BadCase{"TimeoutOutOfRange", "set services ssl initiation profile p handshake-timeout 0\n",
                "d.conf:1:57: expected a number of seconds (1-600), got '0'", ConfigCode::kBadValue},
        BadCase{"UnterminatedQuote", "set security pki ca-profile a certificate \"/x y\n",
                "d.conf:1:43: unterminated quoted string", ConfigCode::kSyntax},
        BadCase{"ProfileWithUnknownCertificate",
                kCa + "set services ssl initiation profile p client-certificate nope\n"
                      "set services ssl initiation profile p trusted-ca ca\n",
                "d.conf:2:1: ssl initiation profile 'p' names client-certificate 'nope', which is "
                "neither idev-id nor a defined local-certificate",
                ConfigCode::kReference},
        BadCase{"ProfileWithUnknownCa",
                "set services ssl initiation profile p client-certificate idev-id\n"
                "set services ssl initiation profile p crypto-hardware-offload tpm\n"
                "set services ssl initiation profile p trusted-ca cloud\n",
                "d.conf:1:1: ssl initiation profile 'p' needs trusted-ca naming a defined "
                "ca-profile (not: 'cloud')",
                ConfigCode::kReference},
        BadCase{"TpmOffloadWithFileCertificate",
                kCa + "set security pki node-local local-certificate f certificate /f.pem\n"
                      "set security pki node-local local-certificate f private-key /f.key\n"
                      "set services ssl initiation profile p client-certificate f\n"
                      "set services ssl initiation profile p crypto-hardware-offload tpm\n"
                      "set services ssl initiation profile p trusted-ca ca\n",
                "d.conf:4:1: ssl initiation profile 'p': crypto-hardware-offload tpm goes with "
                "client-certificate idev-id, and only with it",
                ConfigCode::kConflict},
        BadCase{"LocalCertificateNamedIdevid",
                "set security pki node-local local-certificate idev-id certificate /f.pem\n"
                "set security pki node-local local-certificate idev-id private-key /f.key\n",
                "d.conf:1:1: certificate-id idev-id is reserved for the TPM-held identity; name the "
                "file certificate otherwise",
                ConfigCode::kConflict},
        BadCase{"LocalCertificateWithoutKey",
                "set security pki node-local local-certificate f certificate /f.pem\n",
                "d.conf:1:1: local-certificate 'f' needs both 'certificate' and 'private-key'",
                ConfigCode::kMissing},
        BadCase{"LocalCertificateWithUnknownCaProfile",
                "set security pki node-local local-certificate f certificate /f.pem\n"
                "set security pki node-local local-certificate f private-key /f.key\n"
                "set security pki node-local local-certificate f ca-profile nope\n",
                "d.conf:1:1: local-certificate 'f' names ca-profile 'nope', which is not defined",
                ConfigCode::kReference},
        // The offload/certificate mismatch is reported at the profile's client-certificate
        // statement, wherever the profile's first statement is.
        BadCase{"TpmOffloadWithFileCertificateAtItsCertificateLine",
                kCa + "set security pki node-local local-certificate f certificate /f.pem\n"
                      "set security pki node-local local-certificate f private-key /f.key\n"
                      "set services ssl initiation profile p trusted-ca ca\n"
                      "set services ssl initiation profile p crypto-hardware-offload tpm\n"
                      "set services ssl initiation profile p client-certificate f\n",
                "d.conf:6:1: ssl initiation profile 'p': crypto-hardware-offload tpm goes with "
                "client-certificate idev-id, and only with it",
                ConfigCode::kConflict},
        BadCase{"IdevidWithoutOffloadAtItsCertificateLine",
                kCa + "set services ssl initiation profile p trusted-ca ca\n"
                      "  set services ssl initiation profile p client-certificate idev-id\n",
                "d.conf:3:3: ssl initiation profile 'p': crypto-hardware-offload tpm goes with "
                "client-certificate idev-id, and only with it",
                ConfigCode::kConflict},
        BadCase{"AttestationPcrsNotASelection", "set security pki node-local attestation pcrs sha1:0,1\n",
                "d.conf:1:46: expected a PCR selection like sha256:0,1,2,7, got 'sha1:0,1'",
                ConfigCode::kBadValue},
        BadCase{"AttestationPcrOutOfRange", "set security pki node-local attestation pcrs sha256:0,24\n",
                "d.conf:1:46: expected a PCR selection like sha256:0,1,2,7, got 'sha256:0,24'",
                ConfigCode::kBadValue},
        BadCase{"AttestationKeyHandleNotHex", "set security pki node-local attestation key-handle 81020001\n",
                "d.conf:1:52: expected a key handle like 0x81020001, got '81020001'", ConfigCode::kBadValue},
        BadCase{"AttestationUnknownAttribute", "set security pki node-local attestation quote-key x\n",
                "d.conf:1:41: expected 'event-log', 'key-handle', 'nv-index' or 'pcrs', got 'quote-key'",
                ConfigCode::kUnknownStatement},
        BadCase{"AttestationEventLogTwice",
                "set security pki node-local attestation event-log /a\n"
                "set security pki node-local attestation event-log /b\n",
                "d.conf:2:1: event-log for attestation already set at line 1", ConfigCode::kConflict},
        BadCase{"AttestationWithoutEventLog",
                "\nset security pki node-local attestation key-handle 0x81020001\n",
                "d.conf:2:1: attestation needs 'event-log' (the measured-boot log it sends with each "
                "quote)",
                ConfigCode::kMissing}),
    [](const auto& test) { return std::string(test.param.name); });

TEST(ConfigFileTest, MissingFileIsAConfigErrorNamingIt) {
  EXPECT_THAT(
      LoadDeviceConfig("/nonexistent/device.conf"),
      ResultIs(ErrorDomain::kConfig, ConfigCode::kFile,
               "configuration file '/nonexistent/device.conf' cannot be read: No such file or directory"));
}

TEST(ConfigFileTest, ACaProfileNamingAMissingFileFailsTheLoadAtItsStatement) {
  testing::TempDir dir;
  auto conf = dir.path() / "d.conf";
  auto missing = dir.path() / "missing-ca.pem";
  ASSERT_TRUE(WriteFileAtomic(dir.path() / "ca.pem", std::string_view("any")));
  ASSERT_TRUE(WriteFileAtomic(conf, fmt::format("set security pki ca-profile a certificate {}\n"
                                                "# the other CA\n"
                                                "set security pki ca-profile b ca-identity b\n"
                                                "set security pki ca-profile b certificate {}\n",
                                                (dir.path() / "ca.pem").string(), missing.string())));
  EXPECT_THAT(LoadDeviceConfig(conf),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kFile,
                       fmt::format("{}:4:1: ca-profile 'b' certificate '{}' cannot be read: No such file or "
                                   "directory",
                                   conf.string(), missing.string())));
  // Parsing alone does not look at files.
  EXPECT_TRUE(ParseDeviceConfig(*ReadFileText(conf), "d.conf"));
}

TEST(ConfigFileTest, ACaProfileNamingADirectoryFailsTheLoadAtItsStatement) {
  testing::TempDir dir;
  auto conf = dir.path() / "d.conf";
  ASSERT_TRUE(WriteFileAtomic(
      conf, fmt::format("set security pki ca-profile a certificate {}\n", dir.path().string())));
  EXPECT_THAT(LoadDeviceConfig(conf),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kFile,
                       fmt::format("{}:1:1: ca-profile 'a' certificate '{}' cannot be read: Is a directory",
                                   conf.string(), dir.path().string())));
}

TEST(ConfigParserTest, AUtf8ByteOrderMarkAtTheStartIsIgnored) {
  auto config = ParseDeviceConfig("\xEF\xBB\xBFset security pki node-local socket-group g\n", "d.conf");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->socket_group, "g");
  // Columns count from after the mark.
  EXPECT_THAT(ParseDeviceConfig("\xEF\xBB\xBFset security pkx\n", "d.conf"),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kUnknownStatement,
                       "d.conf:1:14: expected 'pki', got 'pkx'"));
  // Anywhere else it is not blank, and the error shows it escaped (it prints as nothing).
  EXPECT_THAT(ParseDeviceConfig("\n\xEF\xBB\xBFset security pki\n", "d.conf"),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kUnknownStatement,
                       "d.conf:2:1: expected 'set', got '\\ufeffset'"));
}

// Every attribute is set by one statement: a second one is refused naming both lines, with the
// same value as well as with another.
class RepeatedStatementTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(RepeatedStatementTest, IsRefusedNamingBothLines) {
  EXPECT_THAT(ParseDeviceConfig(GetParam().text, "d.conf"),
              ResultIs(ErrorDomain::kConfig, GetParam().code, GetParam().message));
}

const std::string kLocal =
    "set security pki node-local local-certificate fs-cert certificate /f.pem\n"
    "set security pki node-local local-certificate fs-cert private-key /f.key\n";
const std::string kProfile = "set services ssl initiation profile p client-certificate idev-id\n";

INSTANTIATE_TEST_SUITE_P(
    Attributes, RepeatedStatementTest,
    ::testing::Values(
        BadCase{"LocalCertificateFile",
                kLocal + "\n\nset security pki node-local local-certificate "
                         "fs-cert certificate /g.pem\n",
                "d.conf:5:1: certificate for local-certificate 'fs-cert' already set at line 1",
                ConfigCode::kConflict},
        BadCase{"SameValueTwice", kLocal + kLocal,
                "d.conf:3:1: certificate for local-certificate 'fs-cert' already set at line 1",
                ConfigCode::kConflict},
        BadCase{"PrivateKey",
                kLocal + "set security pki node-local local-certificate fs-cert "
                         "private-key /g.key\n",
                "d.conf:3:1: private-key for local-certificate 'fs-cert' already set at line 2",
                ConfigCode::kConflict},
        BadCase{"LocalCaProfile",
                "set security pki node-local local-certificate f ca-profile a\n"
                "set security pki node-local local-certificate f ca-profile b\n",
                "d.conf:2:1: ca-profile for local-certificate 'f' already set at line 1",
                ConfigCode::kConflict},
        BadCase{"CaCertificate", kCa + kCa,
                "d.conf:2:1: certificate for ca-profile 'ca' already set at line 1", ConfigCode::kConflict},
        BadCase{"CaIdentity",
                "set security pki ca-profile ca ca-identity x\nset security pki ca-profile ca "
                "ca-identity y\n",
                "d.conf:2:1: ca-identity for ca-profile 'ca' already set at line 1", ConfigCode::kConflict},
        BadCase{"NvIndex",
                "set security pki node-local idev-id nv-index 0x01C90000\n"
                "set security pki node-local idev-id nv-index 0x01C90001 key-handle 0x81020000\n",
                "d.conf:2:1: nv-index for idev-id already set at line 1", ConfigCode::kConflict},
        BadCase{"KeyHandle",
                "set security pki node-local idev-id nv-index 0x01C90000 key-handle 0x81020000\n"
                "set security pki node-local idev-id key-handle 0x81020001\n",
                "d.conf:2:1: key-handle for idev-id already set at line 1", ConfigCode::kConflict},
        BadCase{"SocketGroup",
                "set security pki node-local socket-group a\nset security pki node-local "
                "socket-group b\n",
                "d.conf:2:1: socket-group for node-local already set at line 1", ConfigCode::kConflict},
        BadCase{"ClientCertificate", kProfile + kProfile,
                "d.conf:2:1: client-certificate for ssl initiation profile 'p' already set at line 1",
                ConfigCode::kConflict},
        BadCase{"Offload",
                kProfile + "set services ssl initiation profile p crypto-hardware-offload tpm\n"
                           "set services ssl initiation profile p crypto-hardware-offload tpm\n",
                "d.conf:3:1: crypto-hardware-offload for ssl initiation profile 'p' already set at "
                "line 2",
                ConfigCode::kConflict},
        BadCase{"TrustedCa",
                "set services ssl initiation profile p trusted-ca a\n"
                "set services ssl initiation profile p trusted-ca b\n",
                "d.conf:2:1: trusted-ca for ssl initiation profile 'p' already set at line 1",
                ConfigCode::kConflict},
        BadCase{"ServerName",
                "set services ssl initiation profile p server-name a\n"
                "set services ssl initiation profile p server-name a\n",
                "d.conf:2:1: server-name for ssl initiation profile 'p' already set at line 1",
                ConfigCode::kConflict},
        BadCase{"ProtocolVersion",
                "set services ssl initiation profile p protocol-version tls12\n"
                "set services ssl initiation profile p protocol-version tls13\n",
                "d.conf:2:1: protocol-version for ssl initiation profile 'p' already set at line 1",
                ConfigCode::kConflict},
        BadCase{"HandshakeTimeout",
                "set services ssl initiation profile p handshake-timeout 5\n"
                "set services ssl initiation profile p handshake-timeout 6\n",
                "d.conf:2:1: handshake-timeout for ssl initiation profile 'p' already set at "
                "line 1",
                ConfigCode::kConflict}),
    [](const auto& test) { return std::string(test.param.name); });

// Words from the file are echoed escaped and cut: a terminal escape or a 100 KB name in a
// configuration never reaches the screen as such.
INSTANTIATE_TEST_SUITE_P(
    OutsideText, BadConfigTest,
    ::testing::Values(
        BadCase{"EscapeSequenceInAWord", "set \x1b[2Jsecurity\n",
                "d.conf:1:5: expected 'security' or 'services', got '\\x1b[2Jsecurity'",
                ConfigCode::kUnknownStatement},
        BadCase{"InvalidUtf8InAWord", "set security pki \xff\xfe\n",
                "d.conf:1:18: expected 'ca-profile' or 'node-local', got '\\xff\\xfe'",
                ConfigCode::kUnknownStatement},
        BadCase{"HugeName",
                "set services ssl initiation profile " + std::string(100000, 'n') +
                    " client-certificate nope\n" + kCa + "set services ssl initiation profile " +
                    std::string(100000, 'n') + " trusted-ca ca\n",
                "d.conf:1:1: ssl initiation profile '" + std::string(120, 'n') +
                    "...(100000 bytes)' names client-certificate 'nope', which is neither idev-id "
                    "nor a defined local-certificate",
                ConfigCode::kReference},
        BadCase{"HugeWord", "set " + std::string(100000, 'w') + "\n",
                "d.conf:1:5: expected 'security' or 'services', got '" + std::string(120, 'w') +
                    "...(100000 bytes)'",
                ConfigCode::kUnknownStatement},
        BadCase{"EscapeInAQuotedName",
                "set security pki node-local local-certificate \"a\x1b]0;owned\x07\" certificate /f\n",
                "d.conf:1:1: local-certificate 'a\\x1b]0;owned\\x07' needs both 'certificate' "
                "and 'private-key'",
                ConfigCode::kMissing}),
    [](const auto& test) { return std::string(test.param.name); });

}  // namespace
}  // namespace idevid
