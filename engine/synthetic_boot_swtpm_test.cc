// The synthetic measured boot on a swtpm, checked by tpm2-tools: tpm2_eventlog (an independent
// parser and replay of our log) and tpm2_pcrread (the TPM's PCRs) agree with each other and with
// our own replay.
#include "engine/synthetic_boot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;

// "0x1f..." as bytes.
Bytes FromToolsHex(std::string text) {
  if (text.rfind("0x", 0) == 0) text = text.substr(2);
  Bytes out;
  for (std::size_t i = 0; i + 1 < text.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(text.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// The sha256 values of a tpm2-tools YAML mapping "sha256: {0: 0x.., 1: 0x..}".
PcrValues Sha256Values(const YAML::Node& banks) {
  PcrValues values;
  for (const auto& entry : banks["sha256"]) {
    values[entry.first.as<std::uint32_t>()] = FromToolsHex(entry.second.as<std::string>());
  }
  return values;
}

BootProfile OtherKernel() {
  BootProfile profile = DefaultBootProfile();
  profile.name = "other-kernel";
  profile.kernel = {"/boot/vmlinuz-6.6.0-1-amd64", Bytes(32, 0x66)};
  return profile;
}

class SyntheticBootTest : public testing::SwtpmTest {
 protected:
  // tpm2_eventlog's replay of the log at `path` (sha256 bank).
  PcrValues ToolsReplay(const std::filesystem::path& path) {
    auto output = RunTool({"tpm2_eventlog", path.string()});
    EXPECT_EQ(output.exit_status, 0) << output.err;
    EXPECT_EQ(output.err.find("ERROR"), std::string::npos) << output.err;
    return Sha256Values(YAML::Load(output.out)["pcrs"]);
  }
  // tpm2_pcrread of the boot PCRs.
  PcrValues ToolsPcrRead() {
    auto output = RunTool({"tpm2_pcrread", BootPcrSelection().ToString()});
    EXPECT_EQ(output.exit_status, 0) << output.err;
    return Sha256Values(YAML::Load(output.out));
  }
};

TEST_F(SyntheticBootTest, TpmEventlogAndTpmPcrreadAgreeWithOurReplay) {
  auto log_path = dir() / "boot-log.bin";
  auto booted = BootUnit(tpm(), DefaultBootProfile());
  ASSERT_THAT(booted, IsOk());
  ASSERT_THAT(WriteFileAtomic(log_path, EncodeEventLog(booted->events)), IsOk());
  auto parsed = ParseEventLog(*ReadFileBytes(log_path));
  ASSERT_THAT(parsed, IsOk());
  auto replay = ReplayEventLog(*parsed);
  ASSERT_THAT(replay, IsOk());
  ASSERT_EQ(replay->size(), kBootPcrCount);
  PcrValues tools_replay = ToolsReplay(log_path);
  PcrValues tpm_values = ToolsPcrRead();
  EXPECT_EQ(tpm_values, *replay);
  EXPECT_EQ(tools_replay, *replay);
  Reconnect();
  EXPECT_THAT(ReadPcrs(tpm(), BootPcrSelection()), ::testing::Optional(*replay));
}

TEST_F(SyntheticBootTest, EventsNameTheirComponents) {
  auto booted = BootUnit(tpm(), DefaultBootProfile());
  ASSERT_THAT(booted, IsOk());
  auto text = [](const LogEvent& e) { return std::string(e.data.begin(), e.data.end()); };
  std::vector<std::string> pcr9;
  for (const LogEvent& event : booted->events) {
    if (event.pcr == 9) pcr9.push_back(text(event));
    if (event.pcr == 8) {
      EXPECT_THAT(text(event), HasSubstr("kernel_cmdline: BOOT_IMAGE="));
    }
  }
  EXPECT_THAT(pcr9, ::testing::ElementsAre(std::string("/boot/vmlinuz-6.1.0-18-amd64") + '\0',
                                           std::string("/boot/initrd.img-6.1.0-18-amd64") + '\0'));
}

// A swtpm started with a boot profile boots on start and writes STATE/boot-log.bin.
TEST_F(SyntheticBootTest, AnotherKernelChangesPcr4And9AndNotPcr0) {
  ASSERT_THAT(BootUnit(tpm(), DefaultBootProfile()), IsOk());
  auto first = ReadPcrs(tpm(), BootPcrSelection());
  ASSERT_THAT(first, IsOk());
  testing::TempDir other_dir;
  auto other = SwtpmInstance::Start({.state_dir = other_dir.path(), .boot = OtherKernel()});
  ASSERT_THAT(other, IsOk());
  EXPECT_EQ(other->event_log(), other_dir.path() / "boot-log.bin");
  auto other_log = ParseEventLog(*ReadFileBytes(other->event_log()));
  ASSERT_THAT(other_log, IsOk());
  auto second = ReplayEventLog(*other_log);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->at(0), first->at(0));
  EXPECT_EQ(second->at(7), first->at(7));
  EXPECT_NE(second->at(4), first->at(4));
  EXPECT_NE(second->at(9), first->at(9));
  EXPECT_EQ(second->at(8), first->at(8));
  {
    auto other_tpm = TpmContext::Open(other->tcti());
    ASSERT_THAT(other_tpm, IsOk());
    EXPECT_THAT(ReadPcrs(*other_tpm, BootPcrSelection()), ::testing::Optional(*second));
  }
  other->Stop();
}

TEST_F(SyntheticBootTest, BootingTwiceWithoutAResetNoLongerMatchesTheLog) {
  auto booted = BootUnit(tpm(), DefaultBootProfile());
  ASSERT_THAT(booted, IsOk());
  ASSERT_THAT(BootUnit(tpm(), DefaultBootProfile()), IsOk());
  auto replay = ReplayEventLog(*booted);
  ASSERT_THAT(replay, IsOk());
  auto values = ReadPcrs(tpm(), BootPcrSelection());
  ASSERT_THAT(values, IsOk());
  EXPECT_NE(*values, *replay);
}

TEST(SyntheticBootStartTest, ABootNeedsATpmThatStarted) {
  testing::TempDir dir;
  EXPECT_THAT(
      SwtpmInstance::Start({.state_dir = dir.path(), .startup_clear = false, .boot = DefaultBootProfile()}),
      ResultIs(ErrorDomain::kUsage, UsageCode::kConflict, HasSubstr("boot needs startup_clear")));
}

}  // namespace
}  // namespace idevid
