// The boot profile: every key, defaults, relative paths, and the error for each kind of bad input
// with its file:line:column.
#include "engine/boot_profile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using idevid::testing::IsOk;
using idevid::testing::ResultIs;
using ::testing::StartsWith;

// SHA-256("abc") (FIPS 180-2 appendix B.1).
constexpr std::string_view kAbcSha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

Result<BootProfile> Parse(const std::string& text, const std::filesystem::path& base = "/profiles") {
  return ParseBootProfile(text, "boot.yaml", base);
}

TEST(BootProfileTest, AnEmptyProfileIsTheDefault) {
  auto profile = Parse("# the default chain\n");
  ASSERT_THAT(profile, IsOk());
  EXPECT_EQ(*profile, DefaultBootProfile());
  EXPECT_EQ(profile->name, "default");
  EXPECT_EQ(profile->kernel.digest.size(), 32u);
}

TEST(BootProfileTest, EveryKeyIsRead) {
  testing::TempDir dir;
  ASSERT_THAT(WriteFileAtomic(dir.path() / "shim.efi", std::string_view("abc")), IsOk());
  auto profile = Parse(fmt::format("name: lab-kernel\n"
                                   "firmware: {{name: FW 2.0, text: abc}}\n"
                                   "boot_loader: {{name: '\\EFI\\BOOT\\BOOTX64.EFI', path: shim.efi}}\n"
                                   "kernel: {{name: /boot/vmlinuz-6.6, digest: {}}}\n"
                                   "initrd: {{name: /boot/initrd.img-6.6, text: abc}}\n"
                                   "command_line: {{text: root=/dev/vda2 ro}}\n",
                                   kAbcSha256),
                       dir.path());
  ASSERT_THAT(profile, IsOk());
  EXPECT_EQ(profile->name, "lab-kernel");
  EXPECT_EQ(profile->firmware.name, "FW 2.0");
  EXPECT_EQ(profile->boot_loader.name, "\\EFI\\BOOT\\BOOTX64.EFI");
  EXPECT_EQ(profile->kernel.name, "/boot/vmlinuz-6.6");
  EXPECT_EQ(profile->initrd.name, "/boot/initrd.img-6.6");
  EXPECT_EQ(profile->command_line, "root=/dev/vda2 ro");
  for (const BootComponent* c :
       {&profile->firmware, &profile->boot_loader, &profile->kernel, &profile->initrd}) {
    EXPECT_EQ(Hex(c->digest), kAbcSha256) << c->name;  // the text, the file and the literal alike
  }
}

TEST(BootProfileTest, AProfileNamingOnlyTheKernelKeepsTheRestOfTheDefault) {
  auto profile = Parse(fmt::format("kernel: {{name: /boot/vmlinuz-other, digest: {}}}\n", kAbcSha256));
  ASSERT_THAT(profile, IsOk());
  BootProfile expected = DefaultBootProfile();
  expected.kernel = profile->kernel;
  EXPECT_EQ(*profile, expected);
  EXPECT_NE(profile->kernel, DefaultBootProfile().kernel);
}

struct BadProfile {
  std::string case_name;
  std::string text;
  ConfigCode code;
  std::string error;  // the start of the message
};

class BadProfileTest : public ::testing::TestWithParam<BadProfile> {};

TEST_P(BadProfileTest, IsRefusedWithFileLineAndColumn) {
  EXPECT_THAT(Parse(GetParam().text),
              ResultIs(ErrorDomain::kConfig, GetParam().code, StartsWith(GetParam().error)));
}

INSTANTIATE_TEST_SUITE_P(
    BootProfile, BadProfileTest,
    ::testing::Values(
        BadProfile{"NotYaml", "kernel: {name: x\n", ConfigCode::kSyntax, "boot.yaml:2:1: not YAML"},
        BadProfile{"NotAMapping", "- kernel\n", ConfigCode::kSyntax,
                   "boot.yaml:1:1: a boot profile must be a mapping"},
        BadProfile{"UnknownKey", "name: x\nbootloader: {}\n", ConfigCode::kUnknownStatement,
                   "boot.yaml:2:1: unknown key 'bootloader'; the keys are: boot_loader, command_line"},
        BadProfile{"UnknownComponentKey", "kernel:\n  name: k\n  sha256: abc\n",
                   ConfigCode::kUnknownStatement, "boot.yaml:3:3: unknown key 'kernel.sha256'"},
        BadProfile{"ComponentWithoutName", "initrd: {text: abc}\n", ConfigCode::kMissing,
                   "boot.yaml:1:9: 'initrd' needs a name"},
        BadProfile{"ComponentWithoutMeasurement", "kernel: {name: k}\n", ConfigCode::kMissing,
                   "boot.yaml:1:9: 'kernel' needs exactly one of path, text and digest"},
        BadProfile{"TwoMeasurements", "kernel:\n  name: k\n  text: a\n  path: k.img\n", ConfigCode::kConflict,
                   "boot.yaml:2:3: 'kernel' needs exactly one of path, text and digest"},
        BadProfile{"ShortDigest", "kernel: {name: k, digest: abc}\n", ConfigCode::kBadValue,
                   "boot.yaml:1:27: 'kernel.digest' must be a SHA-256 as 64 hex digits"},
        BadProfile{"MissingFile", "firmware:\n  name: fw\n  path: no-such-firmware.bin\n", ConfigCode::kFile,
                   "boot.yaml:3:9: cannot measure 'firmware.path'"},
        BadProfile{"KeyTwice", "name: a\nname: b\n", ConfigCode::kConflict,
                   "boot.yaml:2:1: 'name' is given twice"},
        BadProfile{"ComponentNotAMapping", "kernel: vmlinuz\n", ConfigCode::kBadValue,
                   "boot.yaml:1:9: 'kernel' must be a mapping with name, path, text, digest"},
        BadProfile{"CommandLineFromAFile", "command_line: {path: cmdline}\n", ConfigCode::kUnknownStatement,
                   "boot.yaml:1:16: unknown key 'command_line.path'; the keys are: text"},
        BadProfile{"EmptyName", "kernel: {name: '', text: a}\n", ConfigCode::kBadValue,
                   "boot.yaml:1:16: 'kernel.name' must be a non-empty text value"}),
    [](const ::testing::TestParamInfo<BadProfile>& param) { return param.param.case_name; });

TEST(BootProfileTest, LoadReadsRelativePathsFromTheProfilesDirectory) {
  testing::TempDir dir;
  ASSERT_THAT(WriteFileAtomic(dir.path() / "vmlinuz", std::string_view("abc")), IsOk());
  ASSERT_THAT(
      WriteFileAtomic(dir.path() / "boot.yaml", std::string_view("kernel: {name: vmlinuz, path: vmlinuz}\n")),
      IsOk());
  auto profile = LoadBootProfile(dir.path() / "boot.yaml");
  ASSERT_THAT(profile, IsOk());
  EXPECT_EQ(Hex(profile->kernel.digest), kAbcSha256);
  EXPECT_THAT(LoadBootProfile(dir.path() / "missing.yaml"),
              ResultIs(ErrorDomain::kIo, ENOENT, StartsWith("reading the boot profile")));
}

}  // namespace
}  // namespace idevid
