// The writers on a record made by hand: each outcome lands where CI servers look for it.
#include "reports/report_writers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pugixml.hpp>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "fixtures/report_checks.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::testing::_;
using ::testing::HasSubstr;

RunRecord Sample() {
  RunRecord r;
  r.serial = "CW1";
  r.model = "SRX4300";
  r.target_kind = "swtpm";
  r.started = r.ended = std::chrono::system_clock::now();
  ScenarioRecord pass{"ssli-tpm", "tls13", Outcome::kPass, "", 12.5, {}, {}, {}};
  pass.phases.push_back(
      {"handshake", Outcome::kPass, "", 12.0, {{"p50", 3.5, "ms", std::nullopt, 100.0, true}}});
  pass.series["TPM mode"] = {3.0, 3.5, 4.0};
  ScenarioRecord fail{"negative", "wrong <ca>", Outcome::kFail, "it succeeded", 5, {}, {"phase"}, {}};
  fail.phases.push_back({"refusal",
                         Outcome::kFail,
                         "cloud-accepted-unit: HTTP 200",
                         4,
                         {},
                         {{"cloud-accepted-unit", Severity::kFailure, "HTTP 200 <accepted>"},
                          {"slow-answer", Severity::kWarning, "took 2 s"}}});
  ScenarioRecord skip{"negative", "hw only", Outcome::kSkip, "needs a real TPM", 0, {}, {}, {}};
  ScenarioRecord error{"boot-load", "pkid", Outcome::kError, "swtpm gone", 1, {}, {}, {}};
  r.scenarios = {pass, fail, skip, error};
  r.outcome = OverallOutcome(r.scenarios);
  return r;
}

TEST(RunRecordTest, OverallOutcomeIsTheWorstScenario) {
  EXPECT_EQ(Sample().outcome, Outcome::kError);
  RunRecord r = Sample();
  r.scenarios.pop_back();
  EXPECT_EQ(OverallOutcome(r.scenarios), Outcome::kFail);
  r.scenarios.erase(r.scenarios.begin() + 1);
  EXPECT_EQ(OverallOutcome(r.scenarios), Outcome::kPass) << "a skip does not fail a run";
}

TEST(JunitReportTest, OneTestcasePerScenarioWithFailureSkippedAndErrorElements) {
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(RunRecordJunit(Sample()).c_str()));
  auto negative = doc.select_node("/testsuites/testsuite[@name='negative']").node();
  EXPECT_STREQ(negative.attribute("tests").value(), "2");
  EXPECT_STREQ(negative.attribute("failures").value(), "1");
  EXPECT_STREQ(negative.attribute("skipped").value(), "1");
  EXPECT_TRUE(doc.select_node("//testcase[@name='wrong <ca>']/failure[@message='it succeeded']"));
  EXPECT_TRUE(doc.select_node("//testcase[@name='hw only']/skipped[@message='needs a real TPM']"));
  EXPECT_TRUE(doc.select_node("//testcase[@name='pkid']/error"));
  EXPECT_FALSE(doc.select_node("//testcase[@name='tls13']/failure"));
  EXPECT_TRUE(doc.select_node("//testsuite/properties/property[@name='serial'][@value='CW1']"));
}

// The JUnit report as CI reads it: valid against the schema, and counted by python3's
// xml.etree, whose counts must agree with the attributes.
testing::JunitCounts JunitAsCiReadsIt(const RunRecord& r) {
  testing::TempDir dir;
  EXPECT_TRUE(WriteFileAtomic(dir.path() / "junit.xml", RunRecordJunit(r)));
  auto valid = testing::ValidateJunitXml(dir.path() / "junit.xml");
  EXPECT_TRUE(valid) << valid.error().message();
  auto counts = testing::CountJunitWithPython(dir.path() / "junit.xml");
  EXPECT_TRUE(counts) << counts.error().message();
  return counts.value_or(testing::JunitCounts{});
}

// A run that ended before its scenarios: no scenario at all, only the run's own outcome.
RunRecord EndedBeforeTheScenarios(Outcome outcome, const std::string& message) {
  RunRecord r;
  r.serial = "LAB-1";
  r.started = std::chrono::system_clock::now();
  r.ended = r.started + std::chrono::milliseconds(1500);
  r.outcome = outcome;
  r.message = message;
  return r;
}

TEST(JunitReportTest, AWrongUnitBeforeTheScenariosIsAFailureOfTheRun) {
  RunRecord r = EndedBeforeTheScenarios(Outcome::kFail,
                                        "the TPM holds the idev-id of serial LAB-1, the bench expects LAB-2");
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(RunRecordJunit(r).c_str()));
  auto run = doc.select_node(
      "/testsuites/testsuite[@name='idevid run']/testcase[@classname='idevid run'][@name='run']");
  ASSERT_TRUE(run) << RunRecordJunit(r);
  EXPECT_STREQ(run.node().child("failure").attribute("message").value(), r.message.c_str());
  EXPECT_STREQ(run.node().child("failure").attribute("type").value(), "FAIL");
  EXPECT_STREQ(run.node().attribute("time").value(), "1.500");
  EXPECT_STREQ(doc.child("testsuites").attribute("failures").value(), "1");
  auto counts = JunitAsCiReadsIt(r);
  EXPECT_EQ(counts.tests, 1);
  EXPECT_EQ(counts.failures, 1);
}

TEST(JunitReportTest, AnErrorBeforeTheScenariosIsAnErrorOfTheRun) {
  for (Outcome outcome : {Outcome::kError, Outcome::kAborted}) {
    RunRecord r = EndedBeforeTheScenarios(outcome, "starting the embedded TPM: swtpm not found");
    pugi::xml_document doc;
    ASSERT_TRUE(doc.load_string(RunRecordJunit(r).c_str()));
    auto error = doc.select_node("//testcase[@name='run']/error").node();
    EXPECT_STREQ(error.attribute("message").value(), "starting the embedded TPM: swtpm not found");
    EXPECT_STREQ(error.attribute("type").value(), OutcomeName(outcome));
    auto counts = JunitAsCiReadsIt(r);
    EXPECT_EQ(counts.errors, 1) << OutcomeName(outcome);
    EXPECT_EQ(counts.failures, 0);
  }
}

TEST(JunitReportTest, AnInterruptedRunIsAnErrorWithAnErrorForEachScenarioLeftUnrun) {
  RunRecord r = EndedBeforeTheScenarios(Outcome::kAborted, "interrupted after 1 of 3 scenarios");
  r.scenarios.push_back({"boot-load", "pkid loads idev-id", Outcome::kPass, "", 40, {}, {}, {}});
  for (const char* name : {"verify refused", "export"}) {
    r.scenarios.push_back({"verify-refusal", name, Outcome::kAborted, kNotRunMessage, 0, {}, {}, {}});
  }
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(RunRecordJunit(r).c_str()));
  EXPECT_EQ(doc.select_nodes("//testcase/error[@message='not run: the run was interrupted']").size(), 2u);
  EXPECT_TRUE(
      doc.select_node("//testcase[@name='run']/error[@message='interrupted after 1 of 3 scenarios']"));
  EXPECT_FALSE(doc.select_node("//testcase[@name='pkid loads idev-id']/error"));
  auto counts = JunitAsCiReadsIt(r);
  EXPECT_EQ(counts.tests, 4);
  EXPECT_EQ(counts.errors, 3);
}

TEST(JunitReportTest, TheRunIsATestcaseOnlyWhenTheScenariosDoNotSayWhyItDidNotPass) {
  RunRecord passed = Sample();
  passed.scenarios.resize(1);
  passed.outcome = OverallOutcome(passed.scenarios);
  ASSERT_EQ(passed.outcome, Outcome::kPass);
  EXPECT_EQ(RunRecordJunit(passed).find("name=\"run\""), std::string::npos);
  EXPECT_EQ(JunitAsCiReadsIt(passed).tests, 1);
  RunRecord failed = Sample();  // its scenarios carry the failure and the error
  EXPECT_EQ(RunRecordJunit(failed).find("name=\"run\""), std::string::npos);
  RunRecord quiet = EndedBeforeTheScenarios(Outcome::kError, "");
  EXPECT_NE(RunRecordJunit(quiet).find("message=\"the run ended ERROR\""), std::string::npos);
}

TEST(JunitReportTest, TotalsOfAllSuitesAreOnTheRoot) {
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(RunRecordJunit(Sample()).c_str()));
  auto root = doc.child("testsuites");
  EXPECT_STREQ(root.attribute("tests").value(), "4");
  EXPECT_STREQ(root.attribute("failures").value(), "1");
  EXPECT_STREQ(root.attribute("errors").value(), "1");
  EXPECT_STREQ(root.attribute("skipped").value(), "1");
  auto counts = JunitAsCiReadsIt(Sample());
  EXPECT_EQ(counts.failures + counts.errors, 2);
}

TEST(MeasurementTextTest, NamesTheLimitABrokenMeasurementIsOutside) {
  MeasurementRecord above{"p95", 11.8912, "ms", std::nullopt, 10.0, false};
  EXPECT_EQ(OutOfLimitsText(above), "p95 = 11.89 ms is above its limit of 10 ms");
  EXPECT_EQ(LimitsText(above), "<= 10 ms");
  MeasurementRecord below{"handshakes", 0, "count", 1.0, std::nullopt, false};
  EXPECT_EQ(OutOfLimitsText(below), "handshakes = 0 count is below its limit of 1 count");
  EXPECT_EQ(LimitsText(below), ">= 1 count");
  MeasurementRecord within{"tpm_signatures", 1, "count", 1.0, 1.0, true};
  EXPECT_EQ(OutOfLimitsText(within), "");
  EXPECT_EQ(LimitsText(within), "1 .. 1 count");
  EXPECT_EQ(MeasurementValueText(32768.4), "32768");
  EXPECT_EQ(MeasurementValueText(0.000001), "1e-06");
}

TEST(JsonReportTest, CarriesOutcomesMeasurementsWithLimitsAndSeries) {
  auto j = RunRecordJson(Sample());
  EXPECT_EQ(j["record_version"], kRunRecordVersion);
  EXPECT_EQ(j["outcome"], "ERROR");
  EXPECT_EQ(j["scenarios"][0]["phases"][0]["measurements"][0]["high_limit"], 100.0);
  EXPECT_EQ(j["scenarios"][0]["series"]["TPM mode"].size(), 3u);
  EXPECT_EQ(j["scenarios"][1]["failure_codes"][0], "phase");
  RunRecord timed = Sample();
  timed.ended = timed.started + std::chrono::milliseconds(2500);
  EXPECT_DOUBLE_EQ(RunRecordJson(timed)["duration_ms"].get<double>(), 2500);
}

TEST(JsonReportTest, EachPhaseCarriesItsFindings) {
  auto j = RunRecordJson(Sample());
  EXPECT_EQ(j["record_version"], 2);
  auto findings = j["scenarios"][1]["phases"][0]["findings"];
  ASSERT_EQ(findings.size(), 2u) << j.dump();
  EXPECT_EQ(findings[0], (nlohmann::json{{"id", "cloud-accepted-unit"},
                                         {"severity", "failure"},
                                         {"evidence", "HTTP 200 <accepted>"}}));
  EXPECT_EQ(findings[1]["severity"], "warning");
  EXPECT_EQ(j["scenarios"][0]["phases"][0]["findings"], nlohmann::json::array()) << "none is an empty array";
}

TEST(JunitReportTest, AFailureListsTheFindingsOfItsPhases) {
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(RunRecordJunit(Sample()).c_str()));
  auto failure = doc.select_node("//testcase[@name='wrong <ca>']/failure").node();
  EXPECT_STREQ(
      failure.text().get(),
      "refusal: failure cloud-accepted-unit: HTTP 200 <accepted>\nrefusal: warning slow-answer: took 2 s\n");
  EXPECT_EQ(JunitAsCiReadsIt(Sample()).failures, 1);
}

TEST(HtmlReportTest, ShowsEachFindingUnderItsPhase) {
  std::string html = RunRecordHtml(Sample());
  EXPECT_NE(html.find("<th>findings</th>"), std::string::npos);
  EXPECT_NE(
      html.find("refusal: <b style=\"color:#c62828\">cloud-accepted-unit</b> HTTP 200 &lt;accepted&gt;<br>"),
      std::string::npos)
      << html;
  EXPECT_NE(html.find("refusal: <b style=\"color:#ef6c00\">slow-answer</b> took 2 s<br>"), std::string::npos);
}

TEST(HtmlReportTest, EscapesTextAndDrawsTheLatencyChart) {
  std::string html = RunRecordHtml(Sample());
  EXPECT_NE(html.find("wrong &lt;ca&gt;"), std::string::npos);
  EXPECT_EQ(html.find("wrong <ca>"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("TPM mode (3 samples)"), std::string::npos);
}

TEST(HtmlReportTest, SaysWhenWhichVersionAndHowLong) {
  RunRecord r = Sample();
  r.software_version = "0.9.3";
  r.started = std::chrono::sys_days(std::chrono::year(2026) / 11 / 28) + std::chrono::hours(12);
  r.ended = r.started + std::chrono::milliseconds(8400);
  std::string html = RunRecordHtml(r);
  EXPECT_NE(html.find("<tr><th>date</th><td>2026-11-28T12:00:00Z</td></tr>"), std::string::npos) << html;
  EXPECT_NE(html.find("<tr><th>duration</th><td>8.4 s (ended 2026-11-28T12:00:08Z)</td></tr>"),
            std::string::npos);
  EXPECT_NE(html.find("<tr><th>idevid version</th><td>0.9.3</td></tr>"), std::string::npos);
}

// The performance scenario's p50/p95 of both modes: each under its phase's name, with its limit;
// the one outside its limit says which limit it broke.
TEST(HtmlReportTest, MeasurementsNameTheirModeAndTheLimitTheyBroke) {
  RunRecord r = Sample();
  ScenarioRecord perf{"performance", "handshake latency", Outcome::kFail, "", 900, {}, {}, {}};
  perf.phases.push_back(
      {"TPM-mode handshakes",
       Outcome::kFail,
       "",
       500,
       {{"p50", 3.5, "ms", std::nullopt, 100.0, true}, {"p95", 11.8912, "ms", std::nullopt, 10.0, false}}});
  perf.phases.push_back(
      {"file-mode handshakes",
       Outcome::kPass,
       "",
       400,
       {{"p50", 1.7, "ms", std::nullopt, 100.0, true}, {"p95", 2.25, "ms", std::nullopt, 250.0, true}}});
  r.scenarios = {perf};
  std::string html = RunRecordHtml(r);
  EXPECT_NE(html.find("TPM-mode handshakes: p50 = 3.5 ms (limit &lt;= 100 ms)<br>"), std::string::npos)
      << html;
  EXPECT_NE(
      html.find("TPM-mode handshakes: <span style=\"color:#c62828\">p95 = 11.89 ms is above its limit of "
                "10 ms</span><br>"),
      std::string::npos)
      << html;
  EXPECT_NE(html.find("file-mode handshakes: p50 = 1.7 ms (limit &lt;= 100 ms)<br>"), std::string::npos);
  EXPECT_NE(html.find("file-mode handshakes: p95 = 2.25 ms (limit &lt;= 250 ms)<br>"), std::string::npos);
}

TEST(WriteReportsTest, ShardFilesDoNotOverwriteEachOther) {
  testing::TempDir temp;
  std::filesystem::path dir = temp.path();
  RunRecord a = Sample(), b = Sample();
  a.shard = "1/2";
  b.shard = "2/2";
  ASSERT_TRUE(WriteReports(dir, a));
  ASSERT_TRUE(WriteReports(dir, b));
  for (const char* f :
       {"run-record-shard-1-of-2.json", "junit-shard-2-of-2.xml", "report-shard-1-of-2.html"}) {
    EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
  }
  EXPECT_THAT(WriteReports("/proc/idevid-cannot-write-here", a),
              testing::ResultInDomain(ErrorDomain::kIo, _));
}

TEST(JunitReportTest, ValidatesAgainstTheJunitSchemaWithEveryOutcome) {
  testing::TempDir dir;
  RunRecord r = Sample();
  r.scenarios.push_back({"boot-load", "interrupted", Outcome::kAborted, "SIGINT", 2, {}, {}, {}});
  ASSERT_TRUE(WriteFileAtomic(dir.path() / "junit.xml", RunRecordJunit(r)));
  auto valid = testing::ValidateJunitXml(dir.path() / "junit.xml");
  EXPECT_TRUE(valid) << valid.error().message();
}

TEST(JunitReportTest, TheSchemaRejectsATestcaseWithoutAName) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() / "bad.xml",
                              "<testsuites><testsuite name=\"s\" tests=\"1\"><testcase classname=\"c\"/>"
                              "</testsuite></testsuites>"));
  EXPECT_THAT(testing::ValidateJunitXml(dir.path() / "bad.xml"),
              testing::ResultInDomain(ErrorDomain::kVerify, HasSubstr("'name' is required")));
}

// The page as a person sees it: headless Chromium renders it, the screenshot is not blank and
// shows the latency chart's bars (#1565c0).
TEST(HtmlReportTest, RendersInHeadlessChromiumWithTheChartVisible) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() / "report.html", RunRecordHtml(Sample())));
  auto rendered = testing::ScreenshotHtml(dir.path() / "report.html", dir.path() / "report.png", 1200, 1600);
  ASSERT_TRUE(rendered) << rendered.error().message();
  auto shot = testing::ReadScreenshot(dir.path() / "report.png", 0x1565c0);
  ASSERT_TRUE(shot) << shot.error().message();
  EXPECT_EQ(shot->width, 1200u);
  EXPECT_GT(shot->not_background, 0.01) << "the page rendered blank";
  EXPECT_GT(shot->pixels_of_colour, 100u) << "the latency chart did not render";
}

TEST(HtmlReportTest, ABlankPageIsSeenAsBlank) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() / "blank.html", "<html><body></body></html>"));
  auto rendered = testing::ScreenshotHtml(dir.path() / "blank.html", dir.path() / "blank.png", 400, 300);
  ASSERT_TRUE(rendered) << rendered.error().message();
  auto shot = testing::ReadScreenshot(dir.path() / "blank.png", 0x1565c0);
  ASSERT_TRUE(shot) << shot.error().message();
  EXPECT_EQ(shot->not_background, 0);
  EXPECT_EQ(shot->pixels_of_colour, 0u);
}

}  // namespace
}  // namespace idevid
