// pkid's lifetime in this process: it answers, and a stop ends it within its bound with every
// thread it started joined, however many clients hold a connection without asking anything.
#include "device/pkid/pkid_server.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <stop_token>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "core/unique_fd.h"
#include "core/work_dir.h"
#include "device/pkid/pkid_client.h"

namespace idevid {
namespace {

using Clock = std::chrono::steady_clock;

// The threads of this process, as the kernel counts them.
std::size_t ThreadCount() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

UniqueFd ConnectSilently(const std::filesystem::path& socket) {
  auto fd = OpenSocket(AF_UNIX, SOCK_STREAM);
  EXPECT_TRUE(fd);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, socket.c_str());
  EXPECT_EQ(::connect(fd->get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  return std::move(*fd);
}

TEST(PkidServerTest, AStopEndsPkidWithinItsBoundAndJoinsEveryThreadDespiteSilentClients) {
  auto dir = WorkDir::Create("pkid-server-test");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(WriteFileAtomic(dir->path() / "device.conf", std::string_view("# nothing configured\n")));
  std::filesystem::path socket = dir->path() / "pkid.sock";
  std::size_t threads_before = ThreadCount();
  // Nothing listens on port 1: idev-id is reported not loaded, the watch retries.
  PkidOptions options{.config = dir->path() / "device.conf",
                      .tcti = "swtpm:host=127.0.0.1,port=1",
                      .socket = socket,
                      .now = {},
                      .tpm_retry = {},
                      .stop = {}};
  std::promise<Result<void>> ended;
  auto pkid = ended.get_future();
  // Stopped and joined however the test ends.
  std::jthread runner([&](std::stop_token stop) {
    PkidOptions stoppable = options;
    stoppable.stop = stop;
    ended.set_value(RunPkid(stoppable));
  });

  const std::string show = "show security pki node-local local-certificate";
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!SendPkidCommand(socket, show) && Clock::now() < deadline) {
    if (pkid.wait_for(std::chrono::milliseconds(10)) == std::future_status::ready) break;
  }
  // Clients that connect and send nothing; pkid accepts in order, so once a later client is
  // answered each of them holds a client thread.
  ASSERT_EQ(pkid.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << pkid.get().error().ToString();
  std::vector<UniqueFd> silent;
  for (int i = 0; i < 3; ++i) silent.push_back(ConnectSilently(socket));
  auto answered = SendPkidCommand(socket, show);
  ASSERT_TRUE(answered) << answered.error().ToString();
  EXPECT_EQ(answered->status, 0);

  auto asked = Clock::now();
  runner.request_stop();
  bool ended_in_time = pkid.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  auto took = Clock::now() - asked;
  runner.join();
  ASSERT_TRUE(ended_in_time);
  EXPECT_THAT(pkid.get(), testing::IsOk());
  EXPECT_LT(took, std::chrono::seconds(2)) << "pkid waited for its silent clients";
  EXPECT_EQ(ThreadCount(), threads_before) << "a thread of pkid outlived it";
  EXPECT_FALSE(std::filesystem::exists(socket));
}

}  // namespace
}  // namespace idevid
