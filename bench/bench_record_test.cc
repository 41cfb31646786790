#include "bench/bench_record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>

#include "bench/bench_report.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::map<std::string, BenchFigure> Figures(std::initializer_list<std::pair<const char*, double>> rates) {
  std::map<std::string, BenchFigure> out;
  for (const auto& [name, rate] : rates) out[name] = {name, "handshakes", rate};
  return out;
}

const Comparison& Find(const std::vector<Comparison>& all, const std::string& ours,
                       const std::string& ratio) {
  for (const auto& c : all) {
    if (c.spec.ours == ours && c.spec.ratio_name == ratio) return c;
  }
  throw std::runtime_error("no comparison " + ours + " " + ratio);
}

TEST(BenchComparisons, RatioIsOursOverTheComparatorAndMeetsItsTarget) {
  auto all = Compare(BenchComparisons("ecc-p256"), Figures({{"handshake/tls1.3/c1/ours", 300},
                                                            {"handshake/tls1.3/c1/tpm2-openssl", 7.5},
                                                            {"handshake/tls1.3/c1/file", 400}}));
  const auto& vs_tpm2 = Find(all, "handshake/tls1.3/c1/ours", "ratio_vs_tpm2_openssl");
  EXPECT_DOUBLE_EQ(vs_tpm2.ratio.value(), 40);
  EXPECT_EQ(vs_tpm2.status, TargetStatus::kMet);
  const auto& vs_file = Find(all, "handshake/tls1.3/c1/ours", "ratio_vs_file_mode");
  EXPECT_DOUBLE_EQ(vs_file.ratio.value(), 0.75);
  EXPECT_EQ(vs_file.status, TargetStatus::kMet);
  EXPECT_TRUE(GatesIn(all, TargetStatus::kMissed).empty());
}

TEST(BenchComparisons, ARatioBelowItsTargetIsAMissedGate) {
  auto all = Compare(BenchComparisons("ecc-p256"), Figures({{"handshake/tls1.3/c4/ours", 100},
                                                            {"handshake/tls1.3/c4/tpm2-openssl", 10},
                                                            {"handshake/tls1.3/c4/file", 500}}));
  EXPECT_EQ(Find(all, "handshake/tls1.3/c4/ours", "ratio_vs_tpm2_openssl").status, TargetStatus::kMissed);
  EXPECT_EQ(Find(all, "handshake/tls1.3/c4/ours", "ratio_vs_file_mode").status, TargetStatus::kMissed);
  auto missed = GatesIn(all, TargetStatus::kMissed);
  ASSERT_EQ(missed.size(), 2u);
  EXPECT_EQ(missed[0]->spec.ratio_name, "ratio_vs_tpm2_openssl");
  EXPECT_DOUBLE_EQ(missed[0]->ratio.value(), 10);
}

TEST(BenchComparisons, SignerOverheadAboveTenPercentMissesItsTarget) {
  auto within = Compare(BenchComparisons("ecc-p256"),
                        Figures({{"signer/ecc-p256", 1000}, {"raw_sign_paired/ecc-p256", 1080}}));
  EXPECT_EQ(Find(within, "signer/ecc-p256", "ratio_vs_raw_tpm2_sign").status, TargetStatus::kMet);
  auto over = Compare(BenchComparisons("ecc-p256"),
                      Figures({{"signer/ecc-p256", 1000}, {"raw_sign_paired/ecc-p256", 1120}}));
  EXPECT_EQ(Find(over, "signer/ecc-p256", "ratio_vs_raw_tpm2_sign").status, TargetStatus::kMissed);
}

TEST(BenchComparisons, TheLedgerTargetsAreOneSqliteUnitAndFourPostgresqlStations) {
  auto all = Compare(BenchComparisons("ecc-p256"), Figures({{"ledger/sqlite/n1", 1000},
                                                            {"ledger_paired/sqlite/n1", 1120},
                                                            {"ledger/postgresql/n4", 950},
                                                            {"ledger_paired/postgresql/n4", 1000},
                                                            {"ledger/sqlite/n4", 500},
                                                            {"ledger_paired/sqlite/n4", 1000}}));
  const auto& sqlite = Find(all, "ledger/sqlite/n1", "ratio_vs_no_ledger");
  EXPECT_EQ(sqlite.status, TargetStatus::kMissed);  // 12% more time a unit
  EXPECT_NEAR(*sqlite.spec.target, 1 / 1.10, 1e-9);
  const auto& postgresql = Find(all, "ledger/postgresql/n4", "ratio_vs_no_ledger");
  EXPECT_EQ(postgresql.status, TargetStatus::kMet);
  EXPECT_DOUBLE_EQ(*postgresql.spec.target, 0.9);
  EXPECT_EQ(Find(all, "ledger/sqlite/n4", "ratio_vs_no_ledger").status, TargetStatus::kNoTarget);
  // Reported until this machine meets them (README, Performance).
  EXPECT_FALSE(sqlite.spec.gated);
  EXPECT_FALSE(postgresql.spec.gated);
}

TEST(BenchComparisons, TlsOneTwoHasNoTpm2OpensslGate) {
  auto all = Compare(BenchComparisons("ecc-p256"), Figures({{"handshake/tls1.2/c1/ours", 300}}));
  const auto& c = Find(all, "handshake/tls1.2/c1/ours", "ratio_vs_tpm2_openssl");
  EXPECT_EQ(c.status, TargetStatus::kNotMeasured);
  EXPECT_FALSE(c.spec.gated);
  EXPECT_FALSE(c.spec.target.has_value());
  EXPECT_TRUE(Find(all, "handshake/tls1.3/c1/ours", "ratio_vs_tpm2_openssl").spec.gated);
}

TEST(BenchComparisons, AReportedTargetIsNeverAGate) {
  auto all =
      Compare(BenchComparisons("ecc-p256"), Figures({{"boot/pkid_process", 100}, {"boot/tpm2_tools", 50}}));
  EXPECT_EQ(Find(all, "boot/pkid_process", "ratio_vs_tpm2_tools").status, TargetStatus::kMissed);
  EXPECT_TRUE(GatesIn(all, TargetStatus::kMissed).empty());
}

TEST(BenchComparisons, TheVerifierIsGatedAtTenTimesTpm2Tools) {
  auto fast = Compare(BenchComparisons("ecc-p256"),
                      Figures({{"attest/quote_verify", 120}, {"attest/tpm2_tools", 10}}));
  const auto& met = Find(fast, "attest/quote_verify", "ratio_vs_tpm2_tools");
  EXPECT_DOUBLE_EQ(met.ratio.value(), 12);
  EXPECT_EQ(met.status, TargetStatus::kMet);
  EXPECT_TRUE(met.spec.gated);
  auto slow = Compare(BenchComparisons("ecc-p256"),
                      Figures({{"attest/quote_verify", 90}, {"attest/tpm2_tools", 10}}));
  auto missed = GatesIn(slow, TargetStatus::kMissed);
  ASSERT_EQ(missed.size(), 1u);
  EXPECT_EQ(missed[0]->spec.ours, "attest/quote_verify");
}

TEST(BenchComparisons, TheAttestedConnectionIsReportedBesideThePlainHandshake) {
  auto all =
      Compare(BenchComparisons("ecc-p256"), Figures({{"attest/connection", 40}, {"attest/handshake", 80}}));
  const auto& c = Find(all, "attest/connection", "ratio_vs_plain_handshake");
  EXPECT_DOUBLE_EQ(c.ratio.value(), 0.5);
  EXPECT_EQ(c.status, TargetStatus::kNoTarget);
  EXPECT_FALSE(c.spec.gated);
}

TEST(BenchComparisons, TheRunIsComparedWithItsSixtySecondBudget) {
  auto fast = Compare(BenchComparisons("ecc-p256"), Figures({{"idevid_run/embedded", 1 / 12.0}}));
  EXPECT_DOUBLE_EQ(Find(fast, "idevid_run/embedded", "ratio_vs_60s_budget").ratio.value(), 5);
  EXPECT_EQ(Find(fast, "idevid_run/embedded", "ratio_vs_60s_budget").status, TargetStatus::kMet);
  auto slow = Compare(BenchComparisons("ecc-p256"), Figures({{"idevid_run/embedded", 1 / 75.0}}));
  EXPECT_EQ(Find(slow, "idevid_run/embedded", "ratio_vs_60s_budget").status, TargetStatus::kMissed);
}

TEST(BenchComparisons, AFailedOrAbsentFigureIsNotMeasuredAndNoGate) {
  auto figures = Figures({{"provision_parallel/n1", 2}, {"provision_parallel/n2", 1}});
  figures["provision_parallel/n2"].error = "swtpm did not start";
  auto all = Compare(BenchComparisons("ecc-p256"), figures);
  EXPECT_EQ(Find(all, "provision_parallel/n2", "ratio_vs_one_instance").status, TargetStatus::kNotMeasured);
  EXPECT_EQ(Find(all, "signer/ecc-p256", "ratio_vs_raw_tpm2_sign").status, TargetStatus::kNotMeasured);
  EXPECT_TRUE(GatesIn(all, TargetStatus::kMissed).empty());
  auto unchecked = GatesIn(all, TargetStatus::kNotMeasured);
  EXPECT_NE(std::find_if(unchecked.begin(), unchecked.end(),
                         [](const Comparison* c) { return c->spec.ours == "provision_parallel/n2"; }),
            unchecked.end());
}

BenchRecord Sample() {
  BenchRecord r;
  r.target = {"swtpm", "IBM", "SW   TPM", "20191023.0.0", "1.59", "ecc-p256"};
  r.figures = {{"handshake/tls1.3/c1/ours", "handshakes", 300, 1, 600, ""},
               {"handshake/tls1.3/c1/tpm2-openssl", "handshakes", 7.5, 1, 15, ""},
               {"handshake/tls1.3/c1/file", "handshakes", 0, 1, 0, "cloud <unreachable>"}};
  std::map<std::string, BenchFigure> by_name;
  for (const auto& f : r.figures) by_name[f.name] = f;
  r.comparisons = Compare(BenchComparisons("ecc-p256"), by_name);
  return r;
}

TEST(BenchReport, JsonCarriesEachRatioUnderItsComparatorsName) {
  auto j = BenchRecordJson(Sample());
  EXPECT_EQ(j["target"]["manufacturer"], "IBM");
  bool found = false;
  for (const auto& c : j["comparisons"]) {
    if (c["ours"] == "handshake/tls1.3/c1/ours" && c.contains("ratio_vs_tpm2_openssl")) {
      EXPECT_DOUBLE_EQ(c["ratio_vs_tpm2_openssl"].get<double>(), 40);
      EXPECT_EQ(c["status"], "met");
      found = true;
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(j["figures"][2]["error"], "cloud <unreachable>");
}

// A ratio that was not measured is null in JSON, never a zero a tool would read as measured; the
// status says why, and the rates that were measured are kept.
TEST(BenchReport, ARatioThatWasNotMeasuredIsNullInJson) {
  auto j = BenchRecordJson(Sample());
  const nlohmann::json* vs_file = nullptr;
  for (const auto& c : j["comparisons"]) {
    if (c["ours"] == "handshake/tls1.3/c1/ours" && c.contains("ratio_vs_file_mode")) vs_file = &c;
  }
  ASSERT_NE(vs_file, nullptr);
  EXPECT_TRUE((*vs_file)["ratio_vs_file_mode"].is_null()) << vs_file->dump();
  EXPECT_TRUE((*vs_file)["comparator_per_second"].is_null()) << vs_file->dump();
  EXPECT_DOUBLE_EQ((*vs_file)["ours_per_second"].get<double>(), 300);
  EXPECT_EQ((*vs_file)["status"], "not measured");
  EXPECT_TRUE(j["figures"][2]["per_second"].is_null()) << "a failed figure has no rate";
  int not_measured = 0;
  for (const auto& c : j["comparisons"]) {
    if (c["status"] != "not measured") continue;
    ++not_measured;
    for (const auto& [key, value] : c.items()) {
      if (key.starts_with("ratio_vs_")) {
        EXPECT_TRUE(value.is_null()) << c.dump();
      }
    }
  }
  EXPECT_GT(not_measured, 1);
}

TEST(BenchReport, TextAndHtmlNameTheTargetAndEscapeErrors) {
  auto text = BenchRecordText(Sample());
  EXPECT_THAT(text, HasSubstr("TPM IBM (SW   TPM), firmware 20191023.0.0"));
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(ratio_vs_tpm2_openssl +40\.00 +>= 20\.00 met)"))) << text;
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(c1/file +FAILED +1  cloud <unreachable>)"))) << text;
  auto html = BenchRecordHtml(Sample());
  EXPECT_THAT(html, HasSubstr("<svg"));
  EXPECT_THAT(html, HasSubstr("fill=\"#1565c0\"")) << "ours is drawn in blue";
  EXPECT_TRUE(std::regex_search(html, std::regex("ratio_vs_file_mode</td><td>-</td>"))) << "not measured";
  EXPECT_THAT(html, HasSubstr("cloud &lt;unreachable&gt;"));
  EXPECT_THAT(html, Not(HasSubstr("<unreachable>")));
}

TEST(BenchReport, RatesReadAsPeopleReadThem) {
  EXPECT_EQ(FormatRate(1607.4, "signatures"), "1607 signatures/s");
  EXPECT_EQ(FormatRate(12345, "signatures"), "12.3k signatures/s");
  EXPECT_EQ(FormatRate(2.5, "units"), "150 units/min");
  EXPECT_EQ(FormatRate(1 / 9.2, "runs"), "9.2 s per run");
}

}  // namespace
}  // namespace idevid
