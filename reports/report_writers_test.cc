// The writers on a record made by hand: each outcome lands where CI servers look for it.
#include "reports/report_writers.h"

#include <unistd.h>

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include "core/file_io.h"

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

}  // namespace
}  // namespace idevid
