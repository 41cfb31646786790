#include "cli/tpm_state_file.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/testing/result_matchers.h"
#include "fixtures/tpm_fixture.h"

namespace idevid::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using idevid::testing::IsOk;
using idevid::testing::ResultIs;
using idevid::testing::TempDir;

TpmStateRecord SampleRecord(bool with_abrmd) {
  TpmStateRecord record{.tcti = "swtpm:host=127.0.0.1,port=40000",
                        .swtpm_tcti = "swtpm:host=127.0.0.1,port=40000",
                        .port = 40000,
                        .swtpm_pid = 1234,
                        .state_dir = "/tmp/idevid-state"};
  if (with_abrmd) {
    record.tcti = "tabrmd:bus_type=session,bus_name=com.intel.tss2.Tabrmd.idevid.p1n1";
    record.abrmd = TpmStateRecord::Abrmd{.abrmd_pid = 1235,
                                         .dbus_pid = 1236,
                                         .bus_address = "unix:path=/tmp/idevid-state/dbus.sock",
                                         .bus_name = "com.intel.tss2.Tabrmd.idevid.p1n1"};
  }
  return record;
}

void ExpectSameRecord(const TpmStateRecord& actual, const TpmStateRecord& expected) {
  EXPECT_EQ(actual.tcti, expected.tcti);
  EXPECT_EQ(actual.swtpm_tcti, expected.swtpm_tcti);
  EXPECT_EQ(actual.port, expected.port);
  EXPECT_EQ(actual.swtpm_pid, expected.swtpm_pid);
  EXPECT_EQ(actual.state_dir, expected.state_dir);
  ASSERT_EQ(actual.abrmd.has_value(), expected.abrmd.has_value());
  if (!expected.abrmd) return;
  EXPECT_EQ(actual.abrmd->abrmd_pid, expected.abrmd->abrmd_pid);
  EXPECT_EQ(actual.abrmd->dbus_pid, expected.abrmd->dbus_pid);
  EXPECT_EQ(actual.abrmd->bus_address, expected.abrmd->bus_address);
  EXPECT_EQ(actual.abrmd->bus_name, expected.abrmd->bus_name);
}

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// --- round trip ----------------------------------------------------------------------------------

class TpmStateFileRoundTripTest : public ::testing::TestWithParam<bool> {};

TEST_P(TpmStateFileRoundTripTest, ReadsBackWhatWasWritten) {
  TempDir temp;
  TpmStateRecord record = SampleRecord(GetParam());
  auto written = WriteStateRecord(temp.path(), record);
  ASSERT_THAT(written, IsOk());
  auto read = ReadStateRecord(temp.path());
  ASSERT_THAT(read, IsOk());
  ExpectSameRecord(*read, record);
}

TEST_P(TpmStateFileRoundTripTest, FileIsPrivateJsonInTheStateDir) {
  TempDir temp;
  ASSERT_THAT(WriteStateRecord(temp.path(), SampleRecord(GetParam())), IsOk());
  auto path = StateFilePath(temp.path());
  EXPECT_EQ(path, temp.path() / "idevid-tpm.json");
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("version"), 1);
  EXPECT_EQ(j.contains("abrmd"), GetParam());
  EXPECT_EQ(j, ToJson(SampleRecord(GetParam())));
}

INSTANTIATE_TEST_SUITE_P(TpmStateRecords, TpmStateFileRoundTripTest, ::testing::Bool(),
                         [](const auto& instance) { return instance.param ? "WithAbrmd" : "SwtpmOnly"; });

TEST(TpmStateFileTest, WriteReplacesAnEarlierRecord) {
  TempDir temp;
  ASSERT_TRUE(WriteStateRecord(temp.path(), SampleRecord(true)));
  ASSERT_TRUE(WriteStateRecord(temp.path(), SampleRecord(false)));
  auto read = ReadStateRecord(temp.path());
  ASSERT_THAT(read, IsOk());
  ExpectSameRecord(*read, SampleRecord(false));
}

TEST(TpmStateFileTest, WriteIntoAMissingDirectoryIsAnIoError) {
  TempDir temp;
  EXPECT_THAT(WriteStateRecord(temp.path() / "missing", SampleRecord(false)),
              ResultIs(ErrorDomain::kIo, ENOENT, HasSubstr((temp.path() / "missing").string())));
}

// --- records that cannot be used -----------------------------------------------------------------

TEST(TpmStateFileTest, MissingRecordSaysNoTpmWasStarted) {
  TempDir temp;
  EXPECT_THAT(ReadStateRecord(temp.path()),
              ResultIs(ErrorDomain::kUsage, UsageCode::kWrongState,
                       StartsWith("no TPM was started with --state " + temp.path().string())));
}

struct BadRecordCase {
  std::string name;
  std::function<std::string(nlohmann::json)> text;  // from a valid record with tpm2-abrmd
  ConfigCode code;
  std::string fragment;
};
void PrintTo(const BadRecordCase& c, std::ostream* os) { *os << c.name; }

// A valid record changed by `edit`, as text.
std::function<std::string(nlohmann::json)> Edited(std::function<void(nlohmann::json&)> edit) {
  return [edit](nlohmann::json j) {
    edit(j);
    return j.dump();
  };
}

std::function<std::string(nlohmann::json)> Literal(std::string text) {
  return [text](const nlohmann::json&) { return text; };
}

class TpmStateFileBadRecordTest : public ::testing::TestWithParam<BadRecordCase> {};

TEST_P(TpmStateFileBadRecordTest, IsAConfigError) {
  const BadRecordCase& c = GetParam();
  TempDir temp;
  WriteText(StateFilePath(temp.path()), c.text(ToJson(SampleRecord(true))));
  EXPECT_THAT(ReadStateRecord(temp.path()),
              ResultIs(ErrorDomain::kConfig, c.code,
                       AllOf(StartsWith(StateFilePath(temp.path()).string()), HasSubstr(c.fragment))));
}

constexpr char kNotARecord[] = "is not a valid TPM state record";

INSTANTIATE_TEST_SUITE_P(
    TpmStateCases, TpmStateFileBadRecordTest,
    ::testing::Values(
        BadRecordCase{"Empty", Literal(""), ConfigCode::kSyntax, kNotARecord},
        BadRecordCase{"NotJson", Literal("{\"version\": 1, "), ConfigCode::kSyntax, kNotARecord},
        BadRecordCase{"NotAnObject", Literal("[1, 2]"), ConfigCode::kBadValue, kNotARecord},
        BadRecordCase{"NewerVersion", Edited([](auto& j) { j["version"] = 2; }), ConfigCode::kBadValue,
                      "unsupported record version 2"},
        BadRecordCase{"NoVersion", Edited([](auto& j) { j.erase("version"); }), ConfigCode::kMissing,
                      kNotARecord},
        BadRecordCase{"NoSwtpmPid", Edited([](auto& j) { j.erase("swtpm_pid"); }), ConfigCode::kMissing,
                      kNotARecord},
        BadRecordCase{"NoStateDir", Edited([](auto& j) { j.erase("state_dir"); }), ConfigCode::kMissing,
                      kNotARecord},
        BadRecordCase{"PortIsText", Edited([](auto& j) { j["port"] = "40000"; }), ConfigCode::kBadValue,
                      kNotARecord},
        BadRecordCase{"PortOutOfRange", Edited([](auto& j) { j["port"] = 70000; }), ConfigCode::kBadValue,
                      "port 70000 is not a TCP port"},
        BadRecordCase{"AbrmdWithoutBusName", Edited([](auto& j) { j["abrmd"].erase("bus_name"); }),
                      ConfigCode::kMissing, kNotARecord},
        BadRecordCase{"AbrmdPidIsText", Edited([](auto& j) { j["abrmd"]["abrmd_pid"] = "x"; }),
                      ConfigCode::kBadValue, kNotARecord}),
    [](const auto& instance) { return instance.param.name; });

}  // namespace
}  // namespace idevid::cli
