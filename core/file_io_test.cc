#include "core/file_io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace idevid {
namespace {

class FileIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "idevid-io-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(FileIoTest, AtomicWriteReplacesTheFileWithTheRequestedModeAndLeavesNoTempFile) {
  auto path = dir_ / "record.json";
  ASSERT_TRUE(WriteFileAtomic(path, std::string_view("old"), 0644));
  ASSERT_TRUE(WriteFileAtomic(path, std::string_view("new content"), 0600));
  EXPECT_EQ(*ReadFileText(path), "new content");
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_),
                          std::filesystem::directory_iterator()),
            1);
}

TEST_F(FileIoTest, BinaryContentRoundTrips) {
  std::vector<std::uint8_t> bytes = {0x00, 0xFF, 0x30, 0x82, 0x00};
  ASSERT_TRUE(WriteFileAtomic(dir_ / "blob.der", bytes));
  EXPECT_EQ(*ReadFileBytes(dir_ / "blob.der"), bytes);
}

TEST_F(FileIoTest, WriteIntoAMissingDirectoryFailsNamingThePath) {
  auto r = WriteFileAtomic(dir_ / "missing" / "x.json", std::string_view("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().domain(), ErrorDomain::kIo);
  EXPECT_EQ(r.error().code(), static_cast<std::uint64_t>(ENOENT));
  EXPECT_NE(r.error().message().find("missing/x.json"), std::string::npos);
}

TEST_F(FileIoTest, ReadOfAMissingFileFailsNamingThePath) {
  auto r = ReadFileBytes(dir_ / "absent.pem");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().domain(), ErrorDomain::kIo);
  EXPECT_NE(r.error().message().find("absent.pem"), std::string::npos);
}

}  // namespace
}  // namespace idevid
