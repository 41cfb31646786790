// The bench file: every key, relative paths, and the error for each kind of bad input.
#include "engine/bench_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "engine/limits.h"

namespace idevid {
namespace {

using idevid::testing::IsOk;
using idevid::testing::ResultIs;
using ::testing::StartsWith;

Result<BenchFile> Parse(const std::string& text) {
  return ParseBenchFile(text, "bench.yaml", "/benches", {"boot-load", "negative"});
}

TEST(BenchFileTest, EveryKeyIsRead) {
  auto bench = Parse(
      "target: device:/dev/tpmrm0\nstation: LAB-07\nprovision: false\nfactory: /srv/factory\n"
      "factory_ca: ca/factory-ca.pem\nunit: {serial: CW1, model: SRX4300}\n"
      "suites: [boot-load, negative]\nreport: out\nlimits: {sign_p95_ms: 300, tpm_to_file_rate_min: 0.4}\n");
  ASSERT_THAT(bench, IsOk());
  EXPECT_EQ(bench->target, "device:/dev/tpmrm0");
  EXPECT_EQ(bench->station, "LAB-07");
  EXPECT_EQ(bench->provision, false);
  EXPECT_EQ(bench->factory, "/srv/factory");
  EXPECT_EQ(bench->factory_ca, "/benches/ca/factory-ca.pem");  // relative to the file
  EXPECT_EQ(bench->serial, "CW1");
  EXPECT_EQ(bench->model, "SRX4300");
  EXPECT_EQ(bench->suites, (std::vector<std::string>{"boot-load", "negative"}));
  EXPECT_EQ(bench->report, "/benches/out");
  EXPECT_EQ(bench->limits.at("sign_p95_ms"), 300);
  EXPECT_EQ(bench->limits.at("tpm_to_file_rate_min"), 0.4);
}

TEST(BenchFileTest, AnEmptyFileSetsNothing) {
  auto bench = Parse("# nothing here yet\n");
  ASSERT_THAT(bench, IsOk());
  EXPECT_FALSE(bench->target);
  EXPECT_TRUE(bench->suites.empty());
}

TEST(BenchFileTest, TheSampleLabBenchParses) {
  auto bench = LoadBenchFile(std::filesystem::path(IDEVID_SOURCE_DIR) / "fixtures/benches/lab-bench.yaml");
  ASSERT_THAT(bench, IsOk());
  EXPECT_EQ(bench->target, "device:/dev/tpmrm0");
  EXPECT_EQ(bench->provision, false);
  EXPECT_EQ(bench->limits.at("handshake_tpm_p95_ms"), 400);
}

struct BadBench {
  std::string case_name;
  std::string text;
  ConfigCode code;
  std::string error;  // the start of the message
};

class BadBenchFileTest : public ::testing::TestWithParam<BadBench> {};

TEST_P(BadBenchFileTest, IsAConfigErrorNamingWhereAndWhat) {
  EXPECT_THAT(Parse(GetParam().text),
              ResultIs(ErrorDomain::kConfig, GetParam().code, StartsWith(GetParam().error)));
}

INSTANTIATE_TEST_SUITE_P(
    Catalogue, BadBenchFileTest,
    ::testing::Values(
        BadBench{"NotYaml", "target: [unclosed\n", ConfigCode::kSyntax, "bench.yaml:2:1: not YAML"},
        BadBench{"NotAMapping", "- a list\n", ConfigCode::kSyntax,
                 "bench.yaml:1:1: the bench file must be a mapping"},
        BadBench{"UnknownKey", "targt: swtpm\n", ConfigCode::kUnknownStatement,
                 "bench.yaml:1:1: unknown key 'targt'; the keys are: factory, factory_ca"},
        BadBench{"UnknownKeyIsEscaped", "\"t\\x1b[2Jx\": swtpm\n", ConfigCode::kUnknownStatement,
                 "bench.yaml:1:1: unknown key 't\\x1b[2Jx'; the keys are:"},
        BadBench{"TargetNotText", "target: {a: b}\n", ConfigCode::kBadValue,
                 "bench.yaml:1:9: 'target' must be a non-empty text value"},
        BadBench{"TargetEmpty", "target: ''\n", ConfigCode::kBadValue,
                 "bench.yaml:1:9: 'target' must be a non-empty text value"},
        BadBench{"ProvisionNotBool", "provision: maybe\n", ConfigCode::kBadValue,
                 "bench.yaml:1:12: 'provision' must be true or false"},
        BadBench{"UnitNotAMapping", "unit: CW1\n", ConfigCode::kBadValue,
                 "bench.yaml:1:7: 'unit' must be a mapping"},
        BadBench{"UnknownUnitKey", "unit: {serial: CW1, colour: red}\n", ConfigCode::kUnknownStatement,
                 "bench.yaml:1:21: unknown key 'unit.colour'"},
        BadBench{"UnknownSuite", "suites: [boot-load, bootload]\n", ConfigCode::kReference,
                 "bench.yaml:1:21: unknown suite 'bootload'; the suites are: boot-load, negative"},
        BadBench{"SuitesNotAList", "suites: boot-load\n", ConfigCode::kBadValue,
                 "bench.yaml:1:9: 'suites' must be a list"},
        BadBench{"LimitNotANumber", "limits: {sign_p95_ms: fast}\n", ConfigCode::kBadValue,
                 "bench.yaml:1:23: limit 'sign_p95_ms' must be a number"},
        BadBench{"UnknownLimit", "limits: {sign_p99_ms: 3}\n", ConfigCode::kUnknownStatement,
                 "bench.yaml:1:10: unknown limit 'sign_p99_ms'; the limits are:"},
        BadBench{"NegativeLimit", "limits: {sign_p95_ms: -3}\n", ConfigCode::kBadValue,
                 "bench.yaml:1:23: limit 'sign_p95_ms' must be a positive"},
        BadBench{"DuplicateKey", "station: a\nstation: b\n", ConfigCode::kConflict,
                 "bench.yaml:2:1: 'station' is given twice; keep one"},
        BadBench{"DuplicateUnitKey", "unit: {serial: a, serial: b}\n", ConfigCode::kConflict,
                 "bench.yaml:1:19: 'unit.serial' is given twice"},
        BadBench{"DuplicateLimit", "limits: {sign_p95_ms: 1, sign_p95_ms: 2}\n", ConfigCode::kConflict,
                 "bench.yaml:1:26: 'limits.sign_p95_ms' is given twice"}),
    [](const ::testing::TestParamInfo<BadBench>& instance) { return instance.param.case_name; });

TEST(BenchFileTest, AFileThatCannotBeReadIsAnIoError) {
  EXPECT_THAT(LoadBenchFile("/nonexistent/bench.yaml"),
              ResultIs(ErrorDomain::kIo, ENOENT, StartsWith("reading the bench file: ")));
}

TEST(PerformanceLimitsTest, MillisecondKeysAreUpperBoundsAndMinKeysLowerBounds) {
  PerformanceLimits limits;
  EXPECT_EQ(limits.Get("sign_p95_ms").high, 500);
  EXPECT_FALSE(limits.Get("sign_p95_ms").low);
  ASSERT_THAT(limits.Set("tpm_to_file_rate_min", 0.5), IsOk());
  EXPECT_EQ(limits.Get("tpm_to_file_rate_min").low, 0.5);
  EXPECT_FALSE(limits.Get("tpm_to_file_rate_min").high);
}

}  // namespace
}  // namespace idevid
