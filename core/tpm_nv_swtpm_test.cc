// NV indices on a real swtpm, directly and through tpm2-abrmd, checked against tpm2-tools.
#include "core/tpm_nv.h"

#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "core/tss_error.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultInDomain;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using testing::TpmTest;

constexpr TPM2_HANDLE kIndex = 0x01C90000;

std::vector<std::uint8_t> Blob(std::size_t size) {
  std::mt19937 gen(42);
  std::vector<std::uint8_t> out(size);
  for (auto& b : out) b = static_cast<std::uint8_t>(gen());
  return out;
}

void ExpectTpmRc(const Error& error, TSS2_RC expected) {
  EXPECT_TRUE(IsTpmRc(error, expected)) << error.ToString();
}

class NvTest : public TpmTest {};

TEST_P(NvTest, TwoKibRoundTripSpansSeveralBuffersAndMatchesTpm2Nvread) {
  auto chunk = NvChunkSize(tpm());
  ASSERT_TRUE(chunk);
  const auto blob = Blob(2048);
  ASSERT_LT(*chunk, blob.size()) << "the blob must need more than one NV buffer";
  ASSERT_TRUE(NvDefine(tpm(), {.index = kIndex, .size = 2048}));
  auto written = NvWrite(tpm(), kIndex, blob);
  ASSERT_TRUE(written) << written.error().ToString();
  auto read = NvRead(tpm(), kIndex);
  ASSERT_TRUE(read) << read.error().ToString();
  EXPECT_EQ(*read, blob);

  auto out = dir() / "nvread.bin";
  auto tool = RunTool({"tpm2_nvread", "0x01C90000", "-s", "2048", "-o", out.string()});
  ASSERT_EQ(tool.exit_status, 0) << tool.err;
  EXPECT_EQ(*ReadFileBytes(out), blob);
  Reconnect();
  ASSERT_TRUE(NvUndefine(tpm(), kIndex));
}

TEST_P(NvTest, PartialReadAtAnOffsetReturnsThoseBytes) {
  const auto blob = Blob(1500);
  ASSERT_TRUE(NvDefine(tpm(), {.index = kIndex, .size = 1500}));
  ASSERT_TRUE(NvWrite(tpm(), kIndex, blob));
  auto read = NvRead(tpm(), kIndex, 400, 1000);
  ASSERT_TRUE(read) << read.error().ToString();
  EXPECT_EQ(*read, std::vector<std::uint8_t>(blob.begin() + 1000, blob.begin() + 1400));
  auto past_end = NvRead(tpm(), kIndex, 600, 1200);
  EXPECT_THAT(past_end,
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("it holds 1500 bytes")));
  ASSERT_TRUE(NvUndefine(tpm(), kIndex));
}

TEST_P(NvTest, WriteLockMakesTheIndexReadOnlyAndIsVisibleInThePublicArea) {
  ASSERT_TRUE(NvDefine(tpm(), {.index = kIndex, .size = 16}));
  ASSERT_TRUE(NvWrite(tpm(), kIndex, Blob(16)));
  ASSERT_TRUE(NvWriteLock(tpm(), kIndex));
  auto pub = NvReadPublic(tpm(), kIndex);
  ASSERT_TRUE(pub) << pub.error().ToString();
  EXPECT_TRUE(pub->written());
  EXPECT_TRUE(pub->write_locked());
  EXPECT_EQ(pub->size, 16);
  auto rewrite = NvWrite(tpm(), kIndex, Blob(16));
  ASSERT_THAT(rewrite, ResultInDomain(ErrorDomain::kTss, HasSubstr("write-locked")));
  ExpectTpmRc(rewrite.error(), TPM2_RC_NV_LOCKED);
  ASSERT_TRUE(NvUndefine(tpm(), kIndex));
}

TEST_P(NvTest, DefiningATakenIndexFailsWithNvDefined) {
  ASSERT_TRUE(NvDefine(tpm(), {.index = kIndex, .size = 16}));
  auto again = NvDefine(tpm(), {.index = kIndex, .size = 16});
  ASSERT_FALSE(again);
  ExpectTpmRc(again.error(), TPM2_RC_NV_DEFINED);
  ASSERT_TRUE(NvUndefine(tpm(), kIndex));
}

// From the catalogue of bad inputs: an NV index larger than the TPM allows.
TEST_P(NvTest, AnIndexLargerThanTheTpmAllowsIsRefusedWithTpmRcSize) {
  auto huge = NvDefine(tpm(), {.index = kIndex, .size = 60000});
  ASSERT_THAT(huge, ResultInDomain(ErrorDomain::kTss,
                                   StartsWith("cannot define NV index 0x01c90000 of 60000 bytes")));
  ExpectTpmRc(huge.error(), TPM2_RC_SIZE);
}

TEST_P(NvTest, AbsentIndexFailsWithTpmRcHandleNamingTheIndex) {
  auto read = NvRead(tpm(), 0x01C9FFFF);
  auto pub = NvReadPublic(tpm(), 0x01C9FFFF);
  auto undefine = NvUndefine(tpm(), 0x01C9FFFF);
  ASSERT_FALSE(read);
  ASSERT_FALSE(pub);
  ASSERT_FALSE(undefine);
  for (const Error& e : {read.error(), pub.error(), undefine.error()}) {
    ExpectTpmRc(e, TPM2_RC_HANDLE);
    EXPECT_THAT(e.message(), StartsWith("NV index 0x01c9ffff is not defined"));
  }
}

TEST_P(NvTest, ReadOfAnUnwrittenIndexFailsWithNvUninitialized) {
  ASSERT_TRUE(NvDefine(tpm(), {.index = kIndex, .size = 32}));
  auto read = NvRead(tpm(), kIndex);
  ASSERT_FALSE(read);
  ExpectTpmRc(read.error(), TPM2_RC_NV_UNINITIALIZED);
  ASSERT_TRUE(NvUndefine(tpm(), kIndex));
}

INSTANTIATE_TEST_SUITE_P(Swtpm, NvTest, testing::AllTpmAccess(), testing::AccessName);

}  // namespace
}  // namespace idevid
