// `idevid factory init`, `provision` and `check` as a line operator runs them: exit codes,
// output and the per-unit records, against a private manufactured swtpm behind tpm2-abrmd.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/tpm_state_file.h"
#include "core/file_io.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class FactoryCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(Run({"tpm", "start", "--state", State(), "--abrmd", "--manufacture"}).exit_status, 0);
    ASSERT_EQ(Run({"factory", "init", "--dir", Factory()}).exit_status, 0);
  }
  void TearDown() override { EXPECT_EQ(Run({"tpm", "stop", "--state", State()}).exit_status, 0); }

  CommandOutput Run(std::vector<std::string> args) {
    args.insert(args.begin(), IDEVID_BINARY);
    auto out = RunCommand(args, {}, std::chrono::seconds(120));
    EXPECT_TRUE(out) << out.error().ToString();
    return out.value_or(CommandOutput{});
  }
  CommandOutput Provision(const std::string& serial, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"provision", "--state", State(),   "--factory", Factory(),
                                     "--serial",  serial,    "--model", "SRX4300"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args);
  }
  CommandOutput Check(const std::string& serial, const std::string& record) {
    return Run({"check", "--state", State(), "--factory-ca", Factory() + "/factory-ca.pem", "--expect-serial",
                serial, "--expect-model", "SRX4300", "--station", "ST-7", "--record", record});
  }
  nlohmann::json Record(const std::string& path) { return nlohmann::json::parse(*ReadFileText(path)); }
  std::string State() const { return (temp_.path() / "tpm").string(); }
  std::string Factory() const { return (temp_.path() / "factory").string(); }
  std::string File(const std::string& name) const { return (temp_.path() / name).string(); }

  testing::TempDir temp_;
};

// A TPM whose owner and endorsement hierarchies have authorization values: provisioning needs
// them, takes them from files or the environment, and never shows them.
TEST_F(FactoryCommandsTest, HierarchyAuthorizationComesFromFilesOrTheEnvironmentAndIsNeverShown) {
  ASSERT_TRUE(WriteFileAtomic(File("owner.auth"), "s3cret-owner\n"));
  ASSERT_TRUE(WriteFileAtomic(File("endorsement.auth"), "s3cret-endorsement"));
  auto state = cli::ReadStateRecord(State());
  ASSERT_TRUE(state && state->abrmd);
  std::map<std::string, std::string> tools = {{"TPM2TOOLS_TCTI", state->tcti},
                                              {"DBUS_SESSION_BUS_ADDRESS", state->abrmd->bus_address}};
  // tpm2-tools read the new values from files too (file: takes the whole file, so no newline).
  ASSERT_TRUE(WriteFileAtomic(File("owner.raw"), "s3cret-owner"));
  for (const auto& [hierarchy, file] :
       {std::pair{"owner", "owner.raw"}, std::pair{"endorsement", "endorsement.auth"}}) {
    auto changed = RunCommand({"tpm2_changeauth", "-c", hierarchy, "file:" + File(file)}, tools);
    ASSERT_TRUE(changed && changed->exit_status == 0) << changed->err;
  }
  auto refused = Provision("CW1");
  EXPECT_EQ(refused.exit_status, 2);
  EXPECT_THAT(refused.err, HasSubstr("wrong authorization value"));
  EXPECT_THAT(refused.err, HasSubstr("--owner-auth-file"));

  auto from_files = Provision("CW1", {"--owner-auth-file", File("owner.auth"), "--endorsement-auth-file",
                                      File("endorsement.auth"), "--record", File("provision.json")});
  EXPECT_EQ(from_files.exit_status, 0) << from_files.err;
  auto from_environment =
      RunCommand({IDEVID_BINARY, "provision", "--state", State(), "--factory", Factory(), "--serial", "CW2",
                  "--model", "SRX4300", "--force", "--ledger", "sqlite:" + File("second.sqlite")},
                 {{"IDEVID_OWNER_AUTH", "s3cret-owner"}, {"IDEVID_ENDORSEMENT_AUTH", "s3cret-endorsement"}},
                 std::chrono::seconds(120));
  ASSERT_TRUE(from_environment);
  EXPECT_EQ(from_environment->exit_status, 0) << from_environment->err;
  for (const std::string& shown :
       {refused.out + refused.err, from_files.out + from_files.err,
        from_environment->out + from_environment->err, *ReadFileText(File("provision.json"))}) {
    EXPECT_THAT(shown, Not(HasSubstr("s3cret")));
  }
}

TEST_F(FactoryCommandsTest, ProvisionThenCheckPassesAndWritesBothRecords) {
  auto provisioned = Provision("CW9876543210", {"--record", File("provision.json")});
  ASSERT_EQ(provisioned.exit_status, 0) << provisioned.err;
  auto prov = Record(File("provision.json"));
  EXPECT_EQ(prov["outcome"], "PASS");
  EXPECT_EQ(prov["unit"]["serial"], "CW9876543210");
  EXPECT_EQ(prov["key"]["handle"], "0x81020000");
  EXPECT_EQ(prov["certificate"]["fingerprint_sha256"].get<std::string>().size(), 64u);
  auto checked = Check("CW9876543210", File("check.json"));
  EXPECT_EQ(checked.exit_status, 0) << checked.out << checked.err;
  EXPECT_THAT(checked.out, HasSubstr("Result: PASS"));
  auto check = Record(File("check.json"));
  EXPECT_EQ(check["outcome"], "PASS");
  EXPECT_EQ(check["station"], "ST-7");
  EXPECT_EQ(check["identity"]["fingerprint_sha256"], prov["certificate"]["fingerprint_sha256"]);
  EXPECT_EQ(check["identity"]["ek_certificate_fingerprint_sha256"],
            prov["ek_certificate"]["fingerprint_sha256"]);
  std::string all = *ReadFileText(File("provision.json")) + *ReadFileText(File("check.json"));
  EXPECT_THAT(all, Not(HasSubstr("PRIVATE KEY")));
}

TEST_F(FactoryCommandsTest, WrongSerialFailsWithExitOneAndNamesTheMeasurement) {
  ASSERT_EQ(Provision("CW1").exit_status, 0);
  auto checked = Check("CW2", File("check.json"));
  EXPECT_EQ(checked.exit_status, 1);
  EXPECT_THAT(checked.out, HasSubstr("FAIL  expected_serial"));
  auto check = Record(File("check.json"));
  EXPECT_EQ(check["outcome"], "FAIL");
  EXPECT_EQ(check["failure_codes"], nlohmann::json::array({"expected_serial"}));
}

// A TPM that holds an identity is replaced only with --force, and the factory's ledger refuses to
// give a committed TPM a second serial (another ledger, e.g. another factory's, may).
TEST_F(FactoryCommandsTest, SecondProvisioningNeedsForce) {
  ASSERT_EQ(Provision("CW1").exit_status, 0);
  auto refused = Provision("CW2");
  EXPECT_EQ(refused.exit_status, 4);
  EXPECT_THAT(refused.err, HasSubstr("pass --force"));
  auto second_serial = Provision("CW2", {"--force"});
  EXPECT_EQ(second_serial.exit_status, 1) << second_serial.err;
  EXPECT_THAT(second_serial.out, HasSubstr("tpm-has-serial"));
  auto forced = Provision("CW2", {"--force", "--ledger", "sqlite:" + File("other-factory.sqlite")});
  EXPECT_EQ(forced.exit_status, 0) << forced.err;
  EXPECT_THAT(forced.out, HasSubstr("replaced: key at 0x81020000"));
}

TEST_F(FactoryCommandsTest, UnreachableTpmIsAnInfrastructureErrorWithARecord) {
  auto checked = Run({"check", "--tcti", "swtpm:host=127.0.0.1,port=1", "--factory-ca",
                      Factory() + "/factory-ca.pem", "--record", File("check.json")});
  EXPECT_EQ(checked.exit_status, 2);
  EXPECT_THAT(checked.err, HasSubstr("swtpm:host=127.0.0.1,port=1"));
  auto record = Record(File("check.json"));
  EXPECT_EQ(record["outcome"], "ERROR");
  EXPECT_EQ(record["error"]["domain"], "tss");
}

}  // namespace
}  // namespace idevid
