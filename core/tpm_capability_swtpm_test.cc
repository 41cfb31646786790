// What a real swtpm reports about itself, compared with tpm2_getcap.
#include "core/tpm_capability.h"

#include <regex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "core/tpm_keys.h"
#include "core/tpm_nv.h"
#include "core/tss_error.h"
#include "engine/swtpm_instance.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultInDomain;
using ::testing::Contains;
using ::testing::HasSubstr;

using testing::TpmTest;

// The raw value tpm2_getcap prints for `property` ("TPM2_PT_NV_BUFFER_MAX:\n  raw: 0x400").
std::uint32_t RawProperty(const std::string& getcap, const std::string& property) {
  std::smatch m;
  std::regex re(property + ":\\s*raw: (0x[0-9A-Fa-f]+)");
  if (!std::regex_search(getcap, m, re)) return 0;
  return static_cast<std::uint32_t>(std::stoul(m[1], nullptr, 16));
}

class CapabilityTest : public TpmTest {};

TEST_P(CapabilityTest, InfoMatchesTpm2Getcap) {
  auto info = ReadTpmInfo(tpm());
  ASSERT_TRUE(info) << info.error().ToString();
  auto tool = RunTool({"tpm2_getcap", "properties-fixed"});
  ASSERT_EQ(tool.exit_status, 0) << tool.err;
  EXPECT_EQ(info->manufacturer, "IBM");
  EXPECT_EQ(info->manufacturer_id, RawProperty(tool.out, "TPM2_PT_MANUFACTURER"));
  EXPECT_EQ(info->nv_buffer_max, RawProperty(tool.out, "TPM2_PT_NV_BUFFER_MAX"));
  EXPECT_EQ(info->nv_index_max, RawProperty(tool.out, "TPM2_PT_NV_INDEX_MAX"));
  EXPECT_EQ(info->firmware_version_1, RawProperty(tool.out, "TPM2_PT_FIRMWARE_VERSION_1"));
  EXPECT_EQ(info->transient_min, RawProperty(tool.out, "TPM2_PT_HR_TRANSIENT_MIN"));
  EXPECT_EQ(info->vendor_string.rfind("SW", 0), 0u) << info->vendor_string;
  EXPECT_GT(info->transient_avail, 0u);
}

TEST_P(CapabilityTest, AStartedTpmIsReportedAsSuch) {
  auto state = EnsureStarted(tpm());
  ASSERT_TRUE(state) << state.error().ToString();
  EXPECT_EQ(*state, StartupState::kWasStarted);
}

TEST_P(CapabilityTest, RandomBytesComeInTheRequestedAmountAndDiffer) {
  auto a = GetRandom(tpm(), 100);
  auto b = GetRandom(tpm(), 100);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 100u);
  EXPECT_NE(*a, *b);
}

TEST_P(CapabilityTest, AFreshTpmHasNoPersistentKeysOrNvIndicesOfOurs) {
  auto persistent = ListHandles(tpm(), TPM2_HT_PERSISTENT);
  auto nv = ListHandles(tpm(), TPM2_HT_NV_INDEX);
  ASSERT_TRUE(persistent && nv);
  EXPECT_TRUE(persistent->empty());
  for (TPM2_HANDLE h : *nv) EXPECT_NE(h, 0x01C90000u);
}

TEST_P(CapabilityTest, EachNamedHandleListHoldsTheHandlesOfItsType) {
  constexpr TpmHandle kIndex = 0x01C90000;
  ASSERT_THAT(NvDefine(tpm(), {.index = kIndex, .size = 8}), IsOk());
  auto key = CreatePrimary(tpm(), ESYS_TR_RH_OWNER, IdevidKeyTemplate(KeyAlgorithm::kEccP256));
  ASSERT_THAT(key, IsOk());
  auto nv = ListNvIndices(tpm());
  auto transient = ListTransientHandles(tpm());
  auto persistent = ListPersistentHandles(tpm());
  key->object.Reset();
  ASSERT_THAT(NvUndefine(tpm(), kIndex), IsOk());
  ASSERT_THAT(nv, IsOk());
  EXPECT_THAT(*nv, Contains(kIndex));
  ASSERT_THAT(transient, IsOk());
  ASSERT_EQ(transient->size(), 1u);
  EXPECT_EQ(transient->front() >> 24, 0x80u);
  ASSERT_THAT(persistent, IsOk());
  EXPECT_TRUE(persistent->empty());
}

TEST_P(CapabilityTest, ManufacturerIsTheFixedPropertyOfThatName) {
  auto manufacturer = ReadTpmManufacturer(tpm());
  ASSERT_THAT(manufacturer, IsOk());
  EXPECT_EQ(*manufacturer, 0x49424D00u);  // "IBM\0", swtpm's (TCG Vendor ID Registry)
}

TEST(StartupTest, APoweredOnTpmIsStartedOnceAndThenReportedAsStarted) {
  testing::TempDir dir;
  auto swtpm = SwtpmInstance::Start({.state_dir = dir.path(), .startup_clear = false});
  ASSERT_TRUE(swtpm) << swtpm.error().ToString();
  auto tpm = TpmContext::Open(swtpm->tcti());
  ASSERT_TRUE(tpm) << tpm.error().ToString();
  auto before = ReadTpmProperty(*tpm, TPM2_PT_MANUFACTURER);
  ASSERT_THAT(before, ResultInDomain(ErrorDomain::kTss, HasSubstr("needs TPM2_Startup")));
  EXPECT_EQ(BaseTpmRc(static_cast<TSS2_RC>(before.error().code())), TPM2_RC_INITIALIZE);
  EXPECT_EQ(EnsureStarted(*tpm).value_or(StartupState::kWasStarted), StartupState::kStartedNow);
  EXPECT_EQ(EnsureStarted(*tpm).value_or(StartupState::kStartedNow), StartupState::kWasStarted);
  EXPECT_TRUE(ReadTpmProperty(*tpm, TPM2_PT_MANUFACTURER));
}

INSTANTIATE_TEST_SUITE_P(Swtpm, CapabilityTest, testing::AllTpmAccess(), testing::AccessName);

}  // namespace
}  // namespace idevid
