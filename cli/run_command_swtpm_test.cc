// `idevid run` as CI runs it: every suite on the embedded swtpm, the three reports, exit codes,
// an interrupted run, and shards.
#include <signal.h>

#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include "core/event_log.h"
#include "core/file_io.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "engine/process.h"
#include "fixtures/report_checks.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

class RunCommandTest : public ::testing::Test {
 protected:
  CommandOutput Run(std::vector<std::string> args) {
    args.insert(args.begin(), {IDEVID_BINARY, "run", "--report", Report()});
    auto out = RunCommand(args, {{"TSS2_LOG", "all+NONE"}}, std::chrono::seconds(180));
    EXPECT_TRUE(out);
    return out.value_or(CommandOutput{});
  }
  nlohmann::json Record(const std::string& name = "run-record.json") {
    return nlohmann::json::parse(*ReadFileText(std::filesystem::path(Report()) / name));
  }
  std::string Report() const { return (temp_.path() / "reports").string(); }
  // The JUnit report as CI reads it: valid against the JUnit schema (xmllint) and counted by
  // python3's xml.etree, whose counts agree with the attributes.
  testing::JunitCounts JunitAsCiReadsIt(const std::string& name = "junit.xml") {
    auto file = std::filesystem::path(Report()) / name;
    auto valid = testing::ValidateJunitXml(file);
    EXPECT_TRUE(valid) << valid.error().message();
    auto counts = testing::CountJunitWithPython(file);
    EXPECT_TRUE(counts) << counts.error().message();
    return counts.value_or(testing::JunitCounts{});
  }
  pugi::xml_document Junit(const std::string& name = "junit.xml") {
    pugi::xml_document junit;
    EXPECT_TRUE(junit.load_file((std::filesystem::path(Report()) / name).c_str()));
    return junit;
  }
  testing::TempDir temp_;
};

TEST_F(RunCommandTest, EverySuitePassesOnTheEmbeddedSwtpmAndTheThreeReportsAreWritten) {
  auto run = Run({"--station", "ci"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  auto record = Record();
  EXPECT_EQ(record["outcome"], "PASS");
  EXPECT_EQ(record["station"], "ci");
  EXPECT_EQ(record["target"]["tpm_manufacturer"], "IBM");
  EXPECT_EQ(record["identity"]["fingerprint_sha256"].get<std::string>().size(), 64u);
  std::set<std::string> suites;
  for (const auto& s : record["scenarios"]) {
    EXPECT_EQ(s["outcome"], "PASS") << s.dump();
    suites.insert(s["suite"]);
  }
  EXPECT_EQ(suites, (std::set<std::string>{"boot-load", "verify-refusal", "ssli-tpm", "ssli-file", "negative",
                                           "faults", "enrolment", "attestation", "performance"}));
  pugi::xml_document junit;
  ASSERT_TRUE(junit.load_file((std::filesystem::path(Report()) / "junit.xml").c_str()));
  EXPECT_EQ(junit.select_nodes("//testcase").size(), record["scenarios"].size());
  auto valid = testing::ValidateJunitXml(std::filesystem::path(Report()) / "junit.xml");
  EXPECT_TRUE(valid) << valid.error().message();
  auto rendered = testing::ScreenshotHtml(std::filesystem::path(Report()) / "report.html",
                                          temp_.path() / "report.png", 1280, 4800);
  ASSERT_TRUE(rendered) << rendered.error().message();
  auto shot = testing::ReadScreenshot(temp_.path() / "report.png", 0x1565c0);
  ASSERT_TRUE(shot) << shot.error().message();
  EXPECT_GT(shot->not_background, 0.01) << "the report rendered blank";
  EXPECT_GT(shot->pixels_of_colour, 100u) << "the latency chart did not render";
  auto html = ReadFileText(std::filesystem::path(Report()) / "report.html");
  ASSERT_TRUE(html);
  EXPECT_NE(html->find("<svg"), std::string::npos);
  EXPECT_EQ((*html + *ReadFileText(std::filesystem::path(Report()) / "run-record.json")).find("PRIVATE KEY"),
            std::string::npos);
}

TEST_F(RunCommandTest, BadFlagsAreUsageErrors) {
  EXPECT_EQ(Run({"--no-such-flag"}).exit_status, 4);
  auto suite = Run({"--suite", "nope"});
  EXPECT_EQ(suite.exit_status, 4);
  EXPECT_NE(suite.err.find("unknown suite 'nope'; the suites are: boot-load"), std::string::npos);
  EXPECT_EQ(Run({"--shard", "3/2"}).exit_status, 4);
}

TEST_F(RunCommandTest, TwoShardsTogetherRunEachScenarioExactlyOnce) {
  ASSERT_EQ(Run({"--suite", "verify-refusal,ssli-tpm,ssli-file", "--shard", "1/2"}).exit_status, 0);
  ASSERT_EQ(Run({"--suite", "verify-refusal,ssli-tpm,ssli-file", "--shard", "2/2"}).exit_status, 0);
  std::multiset<std::string> seen;
  for (const char* file : {"run-record-shard-1-of-2.json", "run-record-shard-2-of-2.json"}) {
    nlohmann::json record = Record(file);
    for (const auto& s : record["scenarios"]) {
      seen.insert(s["suite"].get<std::string>() + "/" + s["name"].get<std::string>());
    }
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 5u) << "a scenario ran twice";
}

TEST_F(RunCommandTest, ParallelUnitsEachGetTheirOwnSwtpmSerialAndReports) {
  // The flag wins over the bench file's target for every unit; each unit runs shard 1 of 2.
  auto bench = temp_.path() / "bench.yaml";
  ASSERT_TRUE(WriteFileAtomic(bench, "target: device:/dev/idevid-no-such-tpm\nstation: P\n"));
  auto run = Run({"--parallel", "2", "--bench", bench.string(), "--target", "swtpm", "--suite",
                  "boot-load,ssli-tpm", "--serial", "CW0000000009", "--shard", "1/2"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  auto units = nlohmann::json::parse(*ReadFileText(std::filesystem::path(Report()) / "units.json"));
  ASSERT_EQ(units.size(), 2u);
  std::set<std::string> fingerprints;
  for (int k : {0, 1}) {
    EXPECT_EQ(units[k]["outcome"], "PASS");
    auto record = Record("unit-" + std::to_string(k + 1) + "/run-record-shard-1-of-2.json");
    EXPECT_EQ(record["station"], "P");
    EXPECT_EQ(record["unit"]["serial"], k == 0 ? "CW0000000009" : "CW0000000010");
    EXPECT_EQ(record["outcome"], "PASS");
    fingerprints.insert(record["identity"]["fingerprint_sha256"].get<std::string>());
  }
  EXPECT_EQ(fingerprints.size(), 2u) << "two units, two TPMs, two identities";
  EXPECT_NE(run.err.find("unit 2 (CW0000000010): PASS"), std::string::npos) << run.err;
}

TEST_F(RunCommandTest, ParallelUnitsExitWithTheWorstOutcome) {
  auto bench = temp_.path() / "bench.yaml";
  ASSERT_TRUE(WriteFileAtomic(bench, "suites: [performance]\nlimits: {sign_p50_ms: 0.000001}\n"));
  auto run = Run({"--parallel", "2", "--bench", bench.string()});
  EXPECT_EQ(run.exit_status, 1) << run.err;
  auto units = nlohmann::json::parse(*ReadFileText(std::filesystem::path(Report()) / "units.json"));
  ASSERT_EQ(units.size(), 2u);
  for (const auto& u : units) {
    EXPECT_EQ(u["outcome"], "FAIL");
    EXPECT_EQ(u["exit_code"], 1);
  }
}

TEST_F(RunCommandTest, ParallelUnitsNeedTheEmbeddedSwtpm) {
  auto run = Run({"--parallel", "2", "--target", "device:/dev/tpmrm0"});
  EXPECT_EQ(run.exit_status, 4);
  EXPECT_NE(run.err.find("--parallel runs units on embedded swtpm instances"), std::string::npos) << run.err;
  EXPECT_EQ(Run({"--parallel", "0"}).exit_status, 4);
}

TEST_F(RunCommandTest, AScenarioOutsideTheBenchLimitsFailsTheRunWithExitOne) {
  auto bench = temp_.path() / "bench.yaml";
  ASSERT_TRUE(WriteFileAtomic(bench, "suites: [performance]\nlimits: {sign_p50_ms: 0.000001}\n"));
  auto run = Run({"--bench", bench.string()});
  EXPECT_EQ(run.exit_status, 1) << run.err;
  auto record = Record();
  EXPECT_EQ(record["outcome"], "FAIL");
  std::map<std::string, std::string> outcomes;
  for (const auto& s : record["scenarios"]) outcomes[s["name"]] = s["outcome"];
  EXPECT_EQ(outcomes["TPM2_Sign latency"], "FAIL");
  EXPECT_EQ(outcomes["boot-load time"], "PASS") << "only the limit the bench tightened fails";
  pugi::xml_document junit;
  ASSERT_TRUE(junit.load_file((std::filesystem::path(Report()) / "junit.xml").c_str()));
  EXPECT_TRUE(junit.select_node("//testcase[@name='TPM2_Sign latency']/failure"));
}

// The bench's cloud goes away after the first scenario: the scenarios that need it could not be
// judged. That is an ERROR (exit 2), never a FAIL of the unit.
TEST_F(RunCommandTest, ACloudGoneMidSuiteIsAnErrorWithExitTwoNeverAFailure) {
  auto run = Run({"--suite", "ssli-tpm,ssli-file", "--stop-cloud-after", "1"});
  EXPECT_EQ(run.exit_status, 2) << run.err;
  auto record = Record();
  EXPECT_EQ(record["outcome"], "ERROR");
  ASSERT_EQ(record["scenarios"].size(), 3u);
  EXPECT_EQ(record["scenarios"][0]["outcome"], "PASS");
  for (std::size_t i = 1; i < 3; ++i) {
    const auto& s = record["scenarios"][i];
    EXPECT_EQ(s["outcome"], "ERROR") << s.dump();
    EXPECT_NE(s["message"].get<std::string>().find("cannot connect: Connection refused"), std::string::npos)
        << s.dump();
  }
  EXPECT_EQ(JunitAsCiReadsIt().failures, 0) << "a cloud gone is not a failed unit";
}

// The bench's cloud lists another unit: it refuses this one. That is the unit's FAIL (exit 1),
// with the cloud's reason as a finding in every report.
TEST_F(RunCommandTest, ACloudThatRefusesTheUnitFailsTheRunWithExitOne) {
  auto inventory = temp_.path() / "inventory.csv";
  ASSERT_TRUE(WriteFileAtomic(inventory, "serial,model\nCW0000000999,SRX4300\n"));
  auto run = Run({"--suite", "ssli-file", "--cloud-inventory", inventory.string()});
  EXPECT_EQ(run.exit_status, 1) << run.err;
  auto record = Record();
  EXPECT_EQ(record["outcome"], "FAIL");
  EXPECT_EQ(record["record_version"], 2);
  ASSERT_EQ(record["scenarios"].size(), 1u);
  const auto& phase = record["scenarios"][0]["phases"].back();
  EXPECT_EQ(phase["outcome"], "FAIL");
  ASSERT_EQ(phase["findings"].size(), 1u) << phase.dump();
  EXPECT_EQ(phase["findings"][0]["id"], "cloud-refused-unit");
  EXPECT_EQ(phase["findings"][0]["severity"], "failure");
  EXPECT_EQ(phase["findings"][0]["evidence"].get<std::string>().rfind("HTTP 403: ", 0), 0u) << phase.dump();
  EXPECT_EQ(JunitAsCiReadsIt().failures, 1);
  auto junit = Junit();
  std::string failure = junit.select_node("//testcase/failure").node().text().get();
  EXPECT_NE(failure.find("failure cloud-refused-unit: HTTP 403: "), std::string::npos) << failure;
}

TEST_F(RunCommandTest, ASwtpmThatCannotStartIsAnInfrastructureErrorWithExitTwo) {
  auto run = RunCommand({IDEVID_BINARY, "run", "--report", Report()},
                        {{"TSS2_LOG", "all+NONE"}, {"PATH", (temp_.path() / "empty-path").string()}});
  ASSERT_TRUE(run);
  EXPECT_EQ(run->exit_status, 2) << run->err;
  EXPECT_NE(run->err.find("starting the embedded TPM"), std::string::npos) << run->err;
  EXPECT_EQ(Record()["outcome"], "ERROR");
}

// A target that cannot be opened: the run errors before its scenarios. The record names the unit
// only as far as the run knows it, and JUnit shows the error.
TEST_F(RunCommandTest, ATargetThatCannotBeOpenedIsAnErrorInEveryReport) {
  // The file must exist (a missing one is a usage error); the TPM fails before it is read.
  ASSERT_TRUE(WriteFileAtomic(temp_.path() / "factory-ca.pem", "never read\n"));
  std::vector<std::string> args = {"--target", "device:/dev/idevid-no-such-tpm", "--no-provision",
                                   "--factory-ca", (temp_.path() / "factory-ca.pem").string()};
  auto run = Run(args);
  EXPECT_EQ(run.exit_status, 2) << run.err;
  auto record = Record();
  EXPECT_EQ(record["outcome"], "ERROR");
  EXPECT_EQ(record["unit"]["serial"], "") << "no serial was given and none could be read";
  auto junit = Junit();
  auto error = junit.select_node("//testcase[@classname='idevid run'][@name='run']/error").node();
  EXPECT_EQ(error.attribute("message").value(), record["message"].get<std::string>());
  auto counts = JunitAsCiReadsIt();
  EXPECT_GT(counts.failures + counts.errors, 0);

  args.insert(args.end(), {"--serial", "LAB-9"});
  ASSERT_EQ(Run(args).exit_status, 2);
  EXPECT_EQ(Record()["unit"]["serial"], "LAB-9") << "the serial the run was told to expect";
}

TEST_F(RunCommandTest, InjectedRetriesOnEveryTpmConnectionAreAbsorbed) {
  auto run = Run({"--inject", "retry=2,yielded=1", "--suite", "boot-load,verify-refusal,ssli-tpm"});
  EXPECT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(Record()["outcome"], "PASS");
  auto bad = Run({"--inject", "explode=1"});
  EXPECT_EQ(bad.exit_status, 4);
  EXPECT_NE(bad.err.find("--inject: unknown fault 'explode'"), std::string::npos) << bad.err;
}

TEST_F(RunCommandTest, AConnectionDroppedOnEveryTpmConnectionFailsAsAnInfrastructureError) {
  auto run = Run({"--inject", "drop-after=0", "--suite", "ssli-tpm"});
  EXPECT_EQ(run.exit_status, 2) << run.err;
  EXPECT_NE(run.err.find("IO failure"), std::string::npos) << run.err;
  EXPECT_EQ(Record()["outcome"], "ERROR");
}

TEST_F(RunCommandTest, TheSoakSuiteRecordsHandshakesFailuresMemoryAndTransientSlots) {
#ifdef __SANITIZE_ADDRESS__
  // AddressSanitizer keeps freed memory in quarantine: resident memory grows by design.
  auto bench = temp_.path() / "bench.yaml";
  ASSERT_TRUE(WriteFileAtomic(bench, "limits: {soak_rss_growth_kib: 4194304}\n"));
  auto run = Run({"--suite", "soak", "--soak-seconds", "6", "--bench", bench.string()});
#else
  auto run = Run({"--suite", "soak", "--soak-seconds", "6"});
#endif
  ASSERT_EQ(run.exit_status, 0) << run.err;
  auto record = Record();
  ASSERT_EQ(record["scenarios"].size(), 1u);
  std::map<std::string, double> figures;
  for (const auto& m : record["scenarios"][0]["phases"].back()["measurements"])
    figures[m["name"]] = m["value"];
  EXPECT_GT(figures["handshakes"], 0);
  EXPECT_EQ(figures.at("failures"), 0);
  EXPECT_EQ(figures.at("tpm_transient_slots_lost"), 0);
  EXPECT_LE(figures.at("open_fds_growth_idevid_run"), 8);
  for (const char* process : {"rss_growth_idevid run", "rss_growth_swtpm", "rss_growth_tpm2-abrmd"}) {
    EXPECT_EQ(figures.count(process), 1u) << process;
  }
}

// Every file a run leaves (TPM state, CA files, configuration, logs, reports) is searched for
// private keys: there are some (the CAs', the cloud's, the file certificate's), none in a log or
// report, and none is the key of idev-id, which never leaves the TPM.
TEST_F(RunCommandTest, NoFileOfARunHoldsTheTpmIdentitysPrivateKey) {
  auto run = RunCommand(
      {IDEVID_BINARY, "run", "--report", Report(), "--keep-work", "--suite", "boot-load,ssli-tpm,negative"},
      {{"TSS2_LOG", "all+NONE"}, {"TMPDIR", temp_.path().string()}}, std::chrono::seconds(180));
  ASSERT_TRUE(run && run->exit_status == 0) << run->err;
  std::filesystem::path work;
  for (const auto& e : std::filesystem::directory_iterator(temp_.path())) {
    if (e.path().filename().string().rfind("idevid-run-", 0) == 0) work = e.path();
  }
  ASSERT_FALSE(work.empty());
  auto idevid = LoadCertificateFile(work / "idevid.pem");
  ASSERT_TRUE(idevid) << idevid.error().message();
  int keys = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(temp_.path())) {
    if (!e.is_regular_file()) continue;
    auto text = ReadFileText(e.path());
    if (!text || text->find("PRIVATE KEY-----") == std::string::npos) continue;
    auto ext = e.path().extension();
    EXPECT_TRUE(ext != ".log" && ext != ".jsonl" && ext != ".json" && ext != ".html" && ext != ".xml")
        << e.path() << ": a log or report holds key material";
    auto key = LoadPrivateKeyPem(e.path());
    ASSERT_TRUE(key) << e.path() << " holds a private key block that does not load";
    ++keys;
    EXPECT_NE(EVP_PKEY_eq(key->get(), X509_get0_pubkey(idevid->get())), 1)
        << e.path() << " holds the private key of idev-id";
  }
  EXPECT_GE(keys, 4) << "the CAs', the cloud's and the file certificate's keys were expected";
}

// The embedded unit boots before it is tested: its event log is in the work directory (the TPM's
// state directory), a crypto-agile log of PCRs 0-9.
TEST_F(RunCommandTest, TheEmbeddedUnitIsBootedAndItsEventLogKept) {
  auto run =
      RunCommand({IDEVID_BINARY, "run", "--report", Report(), "--keep-work", "--suite", "boot-load"},
                 {{"TSS2_LOG", "all+NONE"}, {"TMPDIR", temp_.path().string()}}, std::chrono::seconds(180));
  ASSERT_TRUE(run && run->exit_status == 0) << run->err;
  std::filesystem::path work;
  for (const auto& e : std::filesystem::directory_iterator(temp_.path())) {
    if (e.path().filename().string().rfind("idevid-run-", 0) == 0) work = e.path();
  }
  ASSERT_FALSE(work.empty());
  auto bytes = ReadFileBytes(work / "tpm" / "boot-log.bin");
  ASSERT_TRUE(bytes) << bytes.error().message();
  auto log = ParseEventLog(*bytes);
  ASSERT_TRUE(log) << log.error().message();
  auto replay = ReplayEventLog(*log);
  ASSERT_TRUE(replay) << replay.error().message();
  EXPECT_EQ(replay->size(), kBootPcrCount);
}

// A TPM the harness did not start (here one of `idevid tpm start`, as a lab board would be).
class RunOnTargetTest : public RunCommandTest {
 protected:
  void SetUp() override {
    auto start =
        RunCommand({IDEVID_BINARY, "tpm", "start", "--state", State(), "--abrmd", "--manufacture", "--json"});
    ASSERT_TRUE(start && start->exit_status == 0);
    auto j = nlohmann::json::parse(start->out);
    tcti_ = j["tcti"];
    env_ = {{"DBUS_SESSION_BUS_ADDRESS", j["abrmd"]["bus_address"]}, {"TSS2_LOG", "all+NONE"}};
    ASSERT_EQ(RunCommand({IDEVID_BINARY, "factory", "init", "--dir", Factory()})->exit_status, 0);
  }
  void TearDown() override {
    auto stop = RunCommand({IDEVID_BINARY, "tpm", "stop", "--state", State()});
    EXPECT_TRUE(stop && stop->exit_status == 0) << "the TPM of the test did not stop";
  }
  CommandOutput RunOn(std::vector<std::string> args) {
    args.insert(args.begin(), {IDEVID_BINARY, "run", "--report", Report(), "--target", tcti_});
    auto out = RunCommand(args, env_, std::chrono::seconds(180));
    EXPECT_TRUE(out);
    return out.value_or(CommandOutput{});
  }
  std::string State() const { return (temp_.path() / "tpm").string(); }
  std::string Factory() const { return (temp_.path() / "factory").string(); }
  std::string tcti_;
  std::map<std::string, std::string> env_;
};

TEST_F(RunOnTargetTest, ProvisionsWithTheGivenFactoryThenTestsTheIdentityItKeeps) {
  auto no_factory = RunOn({});
  EXPECT_EQ(no_factory.exit_status, 4);
  EXPECT_NE(no_factory.err.find("needs the factory that vouches for it: --factory DIR"), std::string::npos)
      << no_factory.err;
  ASSERT_EQ(RunOn({"--factory", Factory(), "--serial", "LAB-1"}).exit_status, 0);
  auto again = RunOn({"--factory", Factory()});
  EXPECT_EQ(again.exit_status, 4) << "an identity on the target is never replaced";
  EXPECT_NE(again.err.find("the TPM already holds an identity (key at 0x81020000;"), std::string::npos)
      << again.err;
  EXPECT_NE(again.err.find("test it with --no-provision --factory-ca FILE"), std::string::npos) << again.err;
  // Every option the hint names is one `idevid run` has.
  auto help = RunCommand({IDEVID_BINARY, "run", "--help"});
  ASSERT_TRUE(help);
  std::smatch option;
  std::string hint = again.err;
  int named = 0;
  while (std::regex_search(hint, option, std::regex("--[a-z][a-z-]*"))) {
    EXPECT_NE(help->out.find(option.str() + " "), std::string::npos)
        << option.str() << " is not an option of run";
    ++named;
    hint = option.suffix();
  }
  EXPECT_GE(named, 2);
  EXPECT_EQ(again.err.find("--force"), std::string::npos) << again.err;
  auto kept = RunOn({"--no-provision", "--factory-ca", Factory() + "/factory-ca.pem"});
  ASSERT_EQ(kept.exit_status, 0) << kept.err;
  auto record = Record();
  EXPECT_EQ(record["outcome"], "PASS");
  EXPECT_EQ(record["unit"]["serial"], "LAB-1") << "read from the certificate in the TPM";
  EXPECT_EQ(record["target"]["kind"], tcti_);
}

TEST_F(RunOnTargetTest, ABenchFileSetsUpTheBenchOnceAndNamesTheUnitItExpects) {
  auto provisioned = RunCommand({IDEVID_BINARY, "provision", "--tcti", tcti_, "--factory", Factory(),
                                 "--serial", "LAB-1", "--model", "SRX4300"},
                                env_);
  ASSERT_TRUE(provisioned && provisioned->exit_status == 0) << provisioned->err;
  auto bench = temp_.path() / "bench.yaml";
  ASSERT_TRUE(WriteFileAtomic(bench, "target: \"" + tcti_ +
                                         "\"\nstation: LAB-07\nprovision: false\n"
                                         "factory_ca: factory/factory-ca.pem\n"
                                         "unit: {serial: LAB-1, model: SRX4300}\n"
                                         "suites: [verify-refusal]\nreport: bench-reports\n"));
  auto run = RunCommand({IDEVID_BINARY, "run", "--bench", bench.string()}, env_, std::chrono::seconds(180));
  ASSERT_TRUE(run);
  ASSERT_EQ(run->exit_status, 0) << run->err;
  auto record = nlohmann::json::parse(*ReadFileText(temp_.path() / "bench-reports" / "run-record.json"));
  EXPECT_EQ(record["station"], "LAB-07");
  EXPECT_EQ(record["unit"]["serial"], "LAB-1");
  ASSERT_FALSE(record["scenarios"].empty());
  for (const auto& s : record["scenarios"]) EXPECT_EQ(s["suite"], "verify-refusal");

  auto wrong =
      RunCommand({IDEVID_BINARY, "run", "--bench", bench.string(), "--serial", "LAB-2", "--report", Report()},
                 env_, std::chrono::seconds(180));
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->exit_status, 1) << "the wrong unit on the bench is a failed check";
  EXPECT_NE(wrong->err.find("the TPM holds the idev-id of serial LAB-1, the bench expects LAB-2"),
            std::string::npos)
      << wrong->err;
  EXPECT_EQ(Record()["outcome"], "FAIL");
  EXPECT_EQ(Record()["unit"]["serial"], "LAB-1") << "the record names the unit that was on the bench";
  auto junit = Junit();  // the document owns the nodes: it must outlive them
  auto failure = junit.select_node("//testcase[@classname='idevid run'][@name='run']/failure").node();
  EXPECT_NE(std::string(failure.attribute("message").value()).find("the bench expects LAB-2"),
            std::string::npos);
  auto counts = JunitAsCiReadsIt();
  EXPECT_EQ(counts.failures, 1) << "a CI server that reads only JUnit sees the wrong unit";

  // With no serial given, the unit read from the TPM stays in the record when a later step of the
  // run errors (here: its factory CA file holds no certificate).
  ASSERT_TRUE(WriteFileAtomic(temp_.path() / "not-a-ca.pem", "not a certificate\n"));
  auto errored = RunOn({"--no-provision", "--factory-ca", (temp_.path() / "not-a-ca.pem").string()});
  EXPECT_EQ(errored.exit_status, 2) << errored.err;
  EXPECT_EQ(Record()["outcome"], "ERROR");
  EXPECT_EQ(Record()["unit"]["serial"], "LAB-1");
  EXPECT_GT(JunitAsCiReadsIt().errors, 0);
}

TEST_F(RunCommandTest, ABadBenchFileIsAUsageErrorNamingTheLine) {
  auto bench = temp_.path() / "bench.yaml";
  ASSERT_TRUE(WriteFileAtomic(bench, "station: LAB-07\nsuites: [boot-load]\ntargett: swtpm\n"));
  auto run = Run({"--bench", bench.string()});
  EXPECT_EQ(run.exit_status, 4);
  EXPECT_NE(run.err.find(bench.string() + ":3:1: unknown key 'targett'"), std::string::npos) << run.err;
  EXPECT_EQ(Run({"--bench", (temp_.path() / "missing.yaml").string()}).exit_status, 4);
}

TEST_F(RunCommandTest, ASwtpmKilledMidRunEndsTheRunWithAnErrorRecordAndNoProcessLeft) {
  auto child = ChildProcess::Spawn({.argv = {IDEVID_BINARY, "run", "--report", Report()},
                                    .log = temp_.path() / "run.log",
                                    .env = {{"TSS2_LOG", "all+NONE"}, {"TMPDIR", temp_.path().string()}}});
  ASSERT_TRUE(child);
  ASSERT_TRUE(PollUntil([&] { return LogTail(temp_.path() / "run.log").find("[3/") != std::string::npos; },
                        std::chrono::seconds(60)));
  // The embedded swtpm's state lives in <TMPDIR>/idevid-run-XXXXXX/tpm.
  auto swtpm =
      RunCommand({"pgrep", "-f", "swtpm socket.*" + (temp_.path() / "idevid-run-").string() + "[^/]*/tpm/"});
  ASSERT_TRUE(swtpm && !swtpm->out.empty()) << LogTail(temp_.path() / "run.log");
  ::kill(std::stoi(swtpm->out), SIGKILL);
  ASSERT_TRUE(PollUntil([&] { return child->Ended().has_value(); }, std::chrono::seconds(150)))
      << "the run hangs without its TPM: " << LogTail(temp_.path() / "run.log");
  EXPECT_EQ(*child->Ended(), "exited with status 2") << LogTail(temp_.path() / "run.log");
  auto record = Record();
  EXPECT_EQ(record["outcome"], "ERROR");
  std::size_t errors = 0;
  for (const auto& s : record["scenarios"]) errors += s["outcome"] == "ERROR";
  EXPECT_GT(errors, 0u);
  auto left = RunCommand({"pgrep", "-f", (temp_.path() / "idevid-run-").string()});
  ASSERT_TRUE(left);
  EXPECT_EQ(left->out, "") << "processes of the run are still there";
}

TEST_F(RunCommandTest, AnInterruptedRunLeavesNoProcessAndAnAbortedRecord) {
  // The run's own TPM, bus and daemons live under TMPDIR: this test's directory.
  auto child = ChildProcess::Spawn({.argv = {IDEVID_BINARY, "run", "--report", Report()},
                                    .log = temp_.path() / "run.log",
                                    .env = {{"TSS2_LOG", "all+NONE"}, {"TMPDIR", temp_.path().string()}}});
  ASSERT_TRUE(child);
  ASSERT_TRUE(PollUntil([&] { return LogTail(temp_.path() / "run.log").find("[2/") != std::string::npos; },
                        std::chrono::seconds(60)));
  ::kill(child->pid(), SIGINT);
  ASSERT_TRUE(PollUntil([&] { return child->Ended().has_value(); }, std::chrono::seconds(60)));
  EXPECT_EQ(*child->Ended(), "exited with status 2") << LogTail(temp_.path() / "run.log");
  auto record = Record();
  EXPECT_EQ(record["outcome"], "ABORTED");
  EXPECT_NE(record["message"].get<std::string>().find("interrupted after"), std::string::npos);
  std::size_t not_run = 0;
  for (const auto& s : record["scenarios"]) not_run += s["message"] == "not run: the run was interrupted";
  EXPECT_GT(not_run, 0u) << "an interrupt at the second scenario leaves some unrun";
  EXPECT_NE(
      record["message"].get<std::string>().find(fmt::format("of {} scenarios", record["scenarios"].size())),
      std::string::npos)
      << record["message"];
  auto junit = Junit();
  EXPECT_EQ(junit.select_nodes("//testcase/error[@message='not run: the run was interrupted']").size(),
            not_run);
  EXPECT_TRUE(junit.select_node("//testcase[@classname='idevid run'][@name='run']/error"));
  auto counts = JunitAsCiReadsIt();
  EXPECT_GT(counts.failures + counts.errors, static_cast<int>(not_run));
  auto left = RunCommand({"pgrep", "-f", (temp_.path() / "idevid-run-").string()});
  ASSERT_TRUE(left);
  EXPECT_EQ(left->out, "") << "processes of the run are still there";
}

TEST_F(RunCommandTest, AnInterruptedParallelRunAbortsEveryUnitAndLeavesNoProcess) {
  auto child = ChildProcess::Spawn({.argv = {IDEVID_BINARY, "run", "--parallel", "2", "--report", Report()},
                                    .log = temp_.path() / "parallel.log",
                                    .env = {{"TSS2_LOG", "all+NONE"}, {"TMPDIR", temp_.path().string()}}});
  ASSERT_TRUE(child);
  auto unit_log = [&](int k) {
    return std::filesystem::path(Report()) / fmt::format("unit-{}", k) / "run.log";
  };
  // Both units are past provisioning and into their scenarios.
  ASSERT_TRUE(PollUntil(
      [&] {
        return LogTail(unit_log(1)).find("[2/") != std::string::npos &&
               LogTail(unit_log(2)).find("[2/") != std::string::npos;
      },
      std::chrono::seconds(90)));
  ::kill(child->pid(), SIGINT);
  ASSERT_TRUE(PollUntil([&] { return child->Ended().has_value(); }, std::chrono::seconds(90)));
  EXPECT_EQ(*child->Ended(), "exited with status 2") << LogTail(temp_.path() / "parallel.log");
  auto units = nlohmann::json::parse(*ReadFileText(std::filesystem::path(Report()) / "units.json"));
  ASSERT_EQ(units.size(), 2u);
  for (int k : {1, 2}) {
    EXPECT_EQ(units[k - 1]["outcome"], "ABORTED") << units.dump();
    EXPECT_EQ(units[k - 1]["exit_code"], 2);
    auto record = Record(fmt::format("unit-{}/run-record.json", k));
    EXPECT_NE(record["message"].get<std::string>().find("interrupted after"), std::string::npos);
  }
  auto left = RunCommand({"pgrep", "-f", (temp_.path() / "idevid-run-").string()});
  ASSERT_TRUE(left);
  EXPECT_EQ(left->out, "") << "processes of the units are still there";
}

}  // namespace
}  // namespace idevid
