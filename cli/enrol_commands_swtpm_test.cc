// TCG enrolment as a line operator runs it: `idevid provision` with --tpm-vendor-ca (in-process)
// and against `idevid factory serve` over HTTPS, `idevid check --iak`, exit codes, output, the
// per-unit record and the service's log; a manufactured swtpm behind tpm2-abrmd.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;

class EnrolCommandsTest : public testing::TpmTestBase, public ::testing::Test {
 protected:
  void SetUp() override {
    StartTpm(testing::TpmAccess::kAbrmd, /*manufacture=*/true);
    Disconnect();  // the commands open their own connections
    ASSERT_EQ(Run({"factory", "init", "--dir", Factory()}).exit_status, 0);
  }
  void TearDown() override {
    service_.Stop();
    StopTpm();
  }

  CommandOutput Run(std::vector<std::string> args) {
    args.insert(args.begin(), IDEVID_BINARY);
    auto out = RunCommand(args, Environment(), std::chrono::seconds(120));
    EXPECT_TRUE(out) << out.error().ToString();
    return out.value_or(CommandOutput{});
  }
  std::map<std::string, std::string> Environment() {
    auto env = swtpm().ClientEnvironment();
    env["TSS2_LOG"] = "all+NONE";
    return env;
  }
  CommandOutput Provision(const std::string& serial, std::vector<std::string> extra) {
    std::vector<std::string> args = {"provision", "--tcti",  swtpm().tcti(), "--serial",
                                     serial,      "--model", "SRX4300"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args);
  }
  // Starts `idevid factory serve` and returns its URL.
  std::string Serve(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {IDEVID_BINARY, "factory",     "serve",           "--dir", Factory(),
                                     "--listen",    "127.0.0.1:0", "--tpm-vendor-ca", Vendor()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto child = ChildProcess::Spawn({.argv = args, .log = dir() / "serve.log", .env = Environment()});
    EXPECT_TRUE(child) << child.error().ToString();
    service_ = std::move(*child);
    std::string prefix = "listening on https://127.0.0.1:";
    bool listening = PollUntil(
        [&] { return service_.Ended() || LogTail(dir() / "serve.log").find(prefix) != std::string::npos; },
        std::chrono::seconds(20));
    std::string log = LogTail(dir() / "serve.log");
    if (!listening || log.find(prefix) == std::string::npos) {
      ADD_FAILURE() << "idevid factory serve did not start:\n" << log;
      return "https://127.0.0.1:1";
    }
    return "https://127.0.0.1:" + std::to_string(std::stoi(log.substr(log.find(prefix) + prefix.size())));
  }
  nlohmann::json Record(const std::string& path) { return nlohmann::json::parse(*ReadFileText(path)); }
  std::string Factory() const { return (dir() / "factory").string(); }
  std::string FactoryCa() const { return FactoryFiles::Chain(dir() / "factory").string(); }
  std::string Vendor() { return swtpm().vendor_ca().string(); }
  std::string File(const std::string& name) const { return (dir() / name).string(); }

  ChildProcess service_;
};

TEST_F(EnrolCommandsTest, EnrolsInProcessAndTheLineCheckPassesTheIak) {
  auto enrolled =
      Provision("CW1", {"--factory", Factory(), "--tpm-vendor-ca", Vendor(), "--record", File("r.json")});
  ASSERT_EQ(enrolled.exit_status, 0) << enrolled.err;
  EXPECT_THAT(enrolled.out, HasSubstr("enrolled CW1 (SRX4300)"));
  auto record = Record(File("r.json"));
  EXPECT_EQ(record["kind"], "enrol");
  EXPECT_EQ(record["outcome"], "PASS");
  EXPECT_EQ(record["iak_certificate"]["nv_index"], "0x01c90100");
  auto checked = Run({"check", "--tcti", swtpm().tcti(), "--factory-ca", FactoryCa(), "--expect-serial",
                      "CW1", "--tpm-vendor-ca", Vendor()});
  EXPECT_EQ(checked.exit_status, 0) << checked.out << checked.err;
  for (const char* row :
       {"iak_attributes", "iak_certificate_chain", "iak_certifies_idevid", "ek_chain_to_vendor_ca"}) {
    EXPECT_THAT(checked.out, HasSubstr(std::string("PASS  ") + row));
  }
}

TEST_F(EnrolCommandsTest, EnrolsThroughTheServiceAndARefusalNamesItsReasonOnBothSides) {
  std::string url = Serve({"--log", File("serve.jsonl")});
  auto enrolled =
      Provision("CW2", {"--factory", url, "--factory-ca", FactoryCa(), "--record", File("r.json")});
  ASSERT_EQ(enrolled.exit_status, 0) << enrolled.err;
  EXPECT_EQ(Record(File("r.json"))["outcome"], "PASS");
  // The same serial again: refused (exit 1), the reason on the station and in the service's log.
  auto again = Provision(
      "CW2", {"--factory", url, "--factory-ca", FactoryCa(), "--force", "--record", File("r2.json")});
  EXPECT_EQ(again.exit_status, 1) << again.err;
  EXPECT_THAT(again.out, HasSubstr("serial-issued"));
  EXPECT_EQ(Record(File("r2.json"))["refusal"]["reason"], "serial-issued");
  EXPECT_THAT(LogTail(dir() / "serve.log") + ReadFileText(File("serve.jsonl")).value_or(""),
              HasSubstr("serial-issued"));
}

TEST_F(EnrolCommandsTest, AStationTrustsTheServiceOnlyThroughTheFactoryCa) {
  std::string url = Serve();
  ASSERT_EQ(Run({"factory", "init", "--dir", File("other-factory")}).exit_status, 0);
  auto refused = Provision("CW3", {"--factory", url, "--factory-ca", File("other-factory/factory-ca.pem")});
  EXPECT_EQ(refused.exit_status, 2) << refused.out;
  EXPECT_THAT(refused.err, HasSubstr("is not trusted, nothing was sent to it"));
  auto missing = Provision("CW3", {"--factory", url});
  EXPECT_EQ(missing.exit_status, 4);
  EXPECT_THAT(missing.err, HasSubstr("--factory-ca"));
}

// The layout of newer `swtpm_setup --idevid --iak`: the IDevID certificate at 0x01C90200.
TEST_F(EnrolCommandsTest, TheSwtpmNvLayoutIsWrittenAndChecked) {
  auto enrolled =
      Provision("CW5", {"--factory", Factory(), "--tpm-vendor-ca", Vendor(), "--nv-layout", "swtpm"});
  ASSERT_EQ(enrolled.exit_status, 0) << enrolled.err;
  EXPECT_THAT(enrolled.out, HasSubstr("certificate in NV 0x01c90200"));
  auto tools = Environment();
  tools["TPM2TOOLS_TCTI"] = swtpm().tcti();
  auto listed = RunCommand({"tpm2_getcap", "handles-nv-index"}, tools);
  ASSERT_TRUE(listed && listed->exit_status == 0);
  EXPECT_THAT(listed->out, HasSubstr("0x1C90200"));
  EXPECT_THAT(listed->out, HasSubstr("0x1C90100"));
  EXPECT_THAT(listed->out, ::testing::Not(HasSubstr("0x1C90000")));
  auto checked = Run({"check", "--tcti", swtpm().tcti(), "--factory-ca", FactoryCa(), "--nv-layout", "swtpm",
                      "--iak", "--expect-serial", "CW5"});
  EXPECT_EQ(checked.exit_status, 0) << checked.out << checked.err;
  auto default_layout = Run({"check", "--tcti", swtpm().tcti(), "--factory-ca", FactoryCa()});
  EXPECT_EQ(default_layout.exit_status, 1) << "the default layout has no certificate at 0x01C90000";
}

TEST_F(EnrolCommandsTest, AnUnreachableServiceIsAnInfrastructureError) {
  auto refused = Provision("CW4", {"--factory", "https://127.0.0.1:1", "--factory-ca", FactoryCa()});
  EXPECT_EQ(refused.exit_status, 2);
}

}  // namespace
}  // namespace idevid
