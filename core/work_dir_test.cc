#include "core/work_dir.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultIs;

TEST(WorkDirTest, RemovesItselfAndItsFilesWhenDestroyed) {
  std::filesystem::path dir;
  {
    auto work = WorkDir::Create("idevid-workdir-test");
    ASSERT_THAT(work, IsOk());
    dir = work->path();
    EXPECT_TRUE(std::filesystem::is_directory(dir));
    std::ofstream(dir / "file") << "x";
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(WorkDirTest, AKeptDirectoryStays) {
  std::filesystem::path dir;
  {
    auto work = WorkDir::Create("idevid-workdir-test");
    ASSERT_THAT(work, IsOk());
    dir = work->path();
    work->Keep();
  }
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  std::filesystem::remove_all(dir);
}

TEST(WorkDirTest, AMovedFromDirectoryRemovesNothing) {
  auto work = WorkDir::Create("idevid-workdir-test");
  ASSERT_THAT(work, IsOk());
  WorkDir moved = std::move(*work);
  std::filesystem::path dir = moved.path();
  { WorkDir gone = std::move(*work); }  // NOLINT(bugprone-use-after-move): it owns nothing now
  EXPECT_TRUE(std::filesystem::is_directory(dir));
}

TEST(WorkDirTest, AnUncreatableDirectoryIsAnIoErrorNamingIt) {
  ::setenv("TMPDIR", "/nonexistent-idevid-dir", 1);
  auto work = WorkDir::Create("idevid-workdir-test");
  ::unsetenv("TMPDIR");
  EXPECT_THAT(work,
              ResultIs(ErrorDomain::kIo, ENOENT,
                       ::testing::HasSubstr("cannot create /nonexistent-idevid-dir/idevid-workdir-test-")));
}

}  // namespace
}  // namespace idevid
