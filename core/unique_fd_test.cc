#include "core/unique_fd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultIs;

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFdTest, ClosesWhatItOwnsWhenDestroyed) {
  auto pipe = OpenPipe();
  ASSERT_THAT(pipe, IsOk());
  int read_end = pipe->read.get();
  { UniqueFd owner = std::move(pipe->read); }
  EXPECT_FALSE(IsOpen(read_end));
  EXPECT_TRUE(IsOpen(pipe->write.get()));
}

TEST(UniqueFdTest, MoveAssignmentClosesTheOldDescriptorAndTakesTheNew) {
  auto first = OpenPipe();
  auto second = OpenPipe();
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  int old_fd = first->read.get();
  int new_fd = second->read.get();
  first->read = std::move(second->read);
  EXPECT_FALSE(IsOpen(old_fd));
  EXPECT_EQ(first->read.get(), new_fd);
  EXPECT_FALSE(second->read.valid());
}

TEST(UniqueFdTest, ReleaseGivesUpOwnershipWithoutClosing) {
  auto pipe = OpenPipe();
  ASSERT_THAT(pipe, IsOk());
  int fd = pipe->read.release();
  EXPECT_FALSE(pipe->read.valid());
  EXPECT_TRUE(IsOpen(fd));
  ::close(fd);
}

TEST(UniqueFdTest, OpenSocketSetsCloseOnExec) {
  auto socket = OpenSocket(AF_INET, SOCK_STREAM);
  ASSERT_THAT(socket, IsOk());
  EXPECT_TRUE(::fcntl(socket->get(), F_GETFD) & FD_CLOEXEC);
}

TEST(UniqueFdTest, OpenSocketOfAnUnknownFamilyIsAnIoErrorWithErrno) {
  EXPECT_THAT(OpenSocket(-1, SOCK_STREAM),
              ResultIs(ErrorDomain::kIo, EAFNOSUPPORT, ::testing::HasSubstr("cannot create a socket")));
}

}  // namespace
}  // namespace idevid
