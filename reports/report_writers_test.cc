// The writers on a record made by hand: each outcome lands where CI servers look for it.
#include "reports/report_writers.h"

#include <unistd.h>

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include "core/file_io.h"
#include "fixtures/report_checks.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

RunRecord Sample() {
  RunRecord r;
  r.serial = "CW1";
  r.model = "SRX4300";
  r.target_kind = "swtpm";
  r.started = r.ended = std::chrono::system_clock::now();
  ScenarioRecord pass{"ssli-tpm", "tls13", Outcome::kPass, "", 12.5, {}, {}, {}};
  pass.phases.push_back({"handshake", Outcome::kPass, "", 12.0, {{"p50", 3.5, "ms", std::nullopt, 100.0, true}}});
  pass.series["TPM mode"] = {3.0, 3.5, 4.0};
  ScenarioRecord fail{"negative", "wrong <ca>", Outcome::kFail, "it succeeded", 5, {}, {"phase"}, {}};
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

TEST(JsonReportTest, CarriesOutcomesMeasurementsWithLimitsAndSeries) {
  auto j = RunRecordJson(Sample());
  EXPECT_EQ(j["record_version"], kRunRecordVersion);
  EXPECT_EQ(j["outcome"], "ERROR");
  EXPECT_EQ(j["scenarios"][0]["phases"][0]["measurements"][0]["high_limit"], 100.0);
  EXPECT_EQ(j["scenarios"][0]["series"]["TPM mode"].size(), 3u);
  EXPECT_EQ(j["scenarios"][1]["failure_codes"][0], "phase");
}

TEST(HtmlReportTest, EscapesTextAndDrawsTheLatencyChart) {
  std::string html = RunRecordHtml(Sample());
  EXPECT_NE(html.find("wrong &lt;ca&gt;"), std::string::npos);
  EXPECT_EQ(html.find("wrong <ca>"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("TPM mode (3 samples)"), std::string::npos);
}

TEST(WriteReportsTest, ShardFilesDoNotOverwriteEachOther) {
  std::string dir = (std::filesystem::temp_directory_path() / "idevid-reports-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  RunRecord a = Sample(), b = Sample();
  a.shard = "1/2";
  b.shard = "2/2";
  ASSERT_TRUE(WriteReports(dir, a));
  ASSERT_TRUE(WriteReports(dir, b));
  for (const char* f : {"run-record-shard-1-of-2.json", "junit-shard-2-of-2.xml", "report-shard-1-of-2.html"}) {
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dir) / f)) << f;
  }
  auto bad = WriteReports("/proc/idevid-cannot-write-here", a);
  EXPECT_FALSE(bad);
  EXPECT_EQ(bad.error().domain(), ErrorDomain::kIo);
  std::filesystem::remove_all(dir);
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
  auto valid = testing::ValidateJunitXml(dir.path() / "bad.xml");
  ASSERT_FALSE(valid);
  EXPECT_EQ(valid.error().domain(), ErrorDomain::kVerify);
  EXPECT_NE(valid.error().message().find("'name' is required"), std::string::npos) << valid.error().message();
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
