#include "core/file_io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "core/work_dir.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;

class FileIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = WorkDir::Create("idevid-io");
    ASSERT_THAT(dir, IsOk());
    work_dir_.emplace(std::move(*dir));
    dir_ = work_dir_->path();
  }
  std::optional<WorkDir> work_dir_;
  std::filesystem::path dir_;
};

TEST_F(FileIoTest, AtomicWriteReplacesTheFileWithTheRequestedModeAndLeavesNoTempFile) {
  auto path = dir_ / "record.json";
  ASSERT_TRUE(WriteFileAtomic(path, std::string_view("old"), 0644));
  ASSERT_TRUE(WriteFileAtomic(path, std::string_view("new content"), 0600));
  EXPECT_EQ(*ReadFileText(path), "new content");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), std::filesystem::directory_iterator()),
            1);
}

TEST_F(FileIoTest, BinaryContentRoundTrips) {
  std::vector<std::uint8_t> bytes = {0x00, 0xFF, 0x30, 0x82, 0x00};
  ASSERT_TRUE(WriteFileAtomic(dir_ / "blob.der", bytes));
  EXPECT_EQ(*ReadFileBytes(dir_ / "blob.der"), bytes);
}

TEST_F(FileIoTest, WriteIntoAMissingDirectoryFailsNamingThePath) {
  auto r = WriteFileAtomic(dir_ / "missing" / "x.json", std::string_view("x"));
  EXPECT_THAT(r, ResultIs(ErrorDomain::kIo, ENOENT, HasSubstr("missing/x.json")));
}

TEST_F(FileIoTest, ReadOfAMissingFileFailsNamingThePath) {
  auto r = ReadFileBytes(dir_ / "absent.pem");
  EXPECT_THAT(r, ResultIs(ErrorDomain::kIo, ENOENT, HasSubstr("absent.pem")));
}

}  // namespace
}  // namespace idevid
