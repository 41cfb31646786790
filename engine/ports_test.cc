#include "engine/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>

namespace idevid {
namespace {

// A TCP socket on 127.0.0.1, closed when destroyed.
class TestSocket {
 public:
  TestSocket() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
  ~TestSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  TestSocket(const TestSocket&) = delete;
  TestSocket& operator=(const TestSocket&) = delete;

  // Binds to 127.0.0.1:port (0 = any); returns the bound port, 0 on failure.
  std::uint16_t Bind(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
    socklen_t length = sizeof addr;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length) != 0) return 0;
    return ntohs(addr.sin_port);
  }
  bool Listen() { return ::listen(fd_, 4) == 0; }

 private:
  int fd_;
};

constexpr int kRounds = 20;

TEST(PortsTest, FindFreePortPairReturnsTwoBindablePorts) {
  for (int round = 0; round < kRounds; ++round) {
    auto port = FindFreePortPair();
    ASSERT_TRUE(port) << port.error().ToString();
    ASSERT_LT(*port, 65535) << "P+1 must exist";
    TestSocket command, control;
    EXPECT_EQ(command.Bind(*port), *port) << "round " << round;
    EXPECT_EQ(control.Bind(static_cast<std::uint16_t>(*port + 1)), *port + 1) << "round " << round;
  }
}

// Outgoing connections take their ports from the ephemeral range and hold them in TIME_WAIT;
// the pair for a server must come from below it.
TEST(PortsTest, FindFreePortPairStaysBelowTheEphemeralRange) {
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  for (int round = 0; round < kRounds; ++round) {
    auto port = FindFreePortPair();
    ASSERT_TRUE(port) << port.error().ToString();
    EXPECT_LT(*port + 1, ephemeral_low) << "round " << round;
    EXPECT_GE(*port, 1024) << "round " << round;
  }
}

TEST(PortsTest, FindFreePortReturnsABindablePort) {
  for (int round = 0; round < kRounds; ++round) {
    auto port = FindFreePort();
    ASSERT_TRUE(port) << port.error().ToString();
    EXPECT_NE(*port, 0);
    TestSocket socket;
    EXPECT_EQ(socket.Bind(*port), *port) << "round " << round;
  }
}

TEST(PortsTest, PortAcceptsConnectionsOnlyWhileSomethingListens) {
  auto port = FindFreePort();
  ASSERT_TRUE(port) << port.error().ToString();
  {
    TestSocket server;
    ASSERT_EQ(server.Bind(*port), *port);
    EXPECT_FALSE(PortAcceptsConnections(*port)) << "bound but not listening";
    ASSERT_TRUE(server.Listen());
    EXPECT_TRUE(PortAcceptsConnections(*port));
  }
  EXPECT_FALSE(PortAcceptsConnections(*port));
}

TEST(PortsTest, ProcessListensOnOnlyForTheProcessHoldingTheListeningSocket) {
  auto port = FindFreePort();
  ASSERT_TRUE(port) << port.error().ToString();
  TestSocket server;
  ASSERT_EQ(server.Bind(*port), *port);
  EXPECT_FALSE(ProcessListensOn(::getpid(), *port)) << "bound but not listening";
  ASSERT_TRUE(server.Listen());
  EXPECT_TRUE(ProcessListensOn(::getpid(), *port));
  EXPECT_FALSE(ProcessListensOn(::getppid(), *port)) << "another process";
}

}  // namespace
}  // namespace idevid
