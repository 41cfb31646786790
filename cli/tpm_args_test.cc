// The options that name a TPM: handles, which TPM, and hierarchy authorization files, and the
// error for each kind of bad input.
#include "cli/tpm_args.h"

#include <cerrno>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "fixtures/tpm_fixture.h"

namespace idevid::cli {
namespace {

using idevid::testing::IsOk;
using idevid::testing::ResultIs;
using idevid::testing::TempDir;
using ::testing::StartsWith;

TEST(ParseHandleTest, ReadsHexAndDecimal) {
  EXPECT_EQ(ParseHandle("--handle", "0x81020000").value_or(0), 0x81020000u);
  EXPECT_EQ(ParseHandle("--handle", "0X1c90000").value_or(0), 0x1c90000u);
  EXPECT_EQ(ParseHandle("--handle", "42").value_or(0), 42u);
}

TEST(ParseHandleTest, AnythingElseIsAUsageErrorNamingTheOption) {
  for (const char* text : {"", "0x", "81020000x", "0x1g", "0x100000000", "-1"}) {
    EXPECT_THAT(ParseHandle("--nv-index", text),
                ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                         StartsWith(std::string("--nv-index '") + text + "' is not a number")))
        << text;
  }
  EXPECT_THAT(
      ParseHandle("--handle", "0x8\x1b[2J"),
      ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, StartsWith("--handle '0x8\\x1b[2J'")));
}

TEST(ResolveTctiTest, TheTctiGivenIsTheTcti) {
  auto tcti = ResolveTcti({.tcti = "swtpm:host=127.0.0.1,port=2321"});
  ASSERT_THAT(tcti, IsOk());
  EXPECT_EQ(*tcti, "swtpm:host=127.0.0.1,port=2321");
}

TEST(ResolveTctiTest, WithoutTctiOrStateItIsAUsageError) {
  EXPECT_THAT(ResolveTcti({}), ResultIs(ErrorDomain::kUsage, UsageCode::kMissingArgument,
                                        StartsWith("name the TPM with --tcti TCTI or --state DIR")));
}

TEST(ResolveTctiTest, AStateDirectoryWithoutATpmIsAUsageError) {
  TempDir temp;
  EXPECT_THAT(
      ResolveTcti({.state = temp.path().string()}),
      ResultIs(ErrorDomain::kUsage, UsageCode::kWrongState, StartsWith("no TPM was started with --state")));
}

TEST(LoadHierarchyAuthTest, AFileWithANulByteIsAUsageError) {
  TempDir temp;
  auto file = temp.path() / "owner.auth";
  ASSERT_THAT(WriteFileAtomic(file, std::string_view("s3cret\0more", 11)), IsOk());
  EXPECT_THAT(LoadHierarchyAuth({.owner_auth_file = file.string()}),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                       StartsWith("\"" + file.string() + "\" holds a NUL byte")));
}

TEST(LoadHierarchyAuthTest, AFileThatCannotBeReadIsAnIoError) {
  TempDir temp;
  EXPECT_THAT(LoadHierarchyAuth({.endorsement_auth_file = (temp.path() / "missing").string()}),
              ResultIs(ErrorDomain::kIo, ENOENT, StartsWith("reading a hierarchy authorization file: ")));
}

}  // namespace
}  // namespace idevid::cli
