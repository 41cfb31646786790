#include "engine/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>

#include "core/testing/result_matchers.h"
#include "core/unique_fd.h"

namespace idevid {
namespace {

using idevid::testing::IsOk;

// A TCP socket, owned; an invalid one when it cannot be made (Bind then fails).
UniqueFd TcpSocket() { return OpenSocket(AF_INET, SOCK_STREAM).value_or(UniqueFd()); }

// Binds `socket` to 127.0.0.1:port (0 = any); returns the bound port, 0 on failure.
std::uint16_t Bind(const UniqueFd& socket, std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!socket || ::bind(socket.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
  socklen_t length = sizeof addr;
  if (::getsockname(socket.get(), reinterpret_cast<sockaddr*>(&addr), &length) != 0) return 0;
  return ntohs(addr.sin_port);
}

bool Listen(const UniqueFd& socket) { return ::listen(socket.get(), 4) == 0; }

constexpr int kRounds = 20;

TEST(PortsTest, FindFreePortPairReturnsTwoBindablePorts) {
  for (int round = 0; round < kRounds; ++round) {
    auto port = FindFreePortPair();
    ASSERT_THAT(port, IsOk());
    ASSERT_LT(*port, 65535) << "P+1 must exist";
    UniqueFd command = TcpSocket(), control = TcpSocket();
    EXPECT_EQ(Bind(command, *port), *port) << "round " << round;
    EXPECT_EQ(Bind(control, static_cast<std::uint16_t>(*port + 1)), *port + 1) << "round " << round;
  }
}

// Outgoing connections take their ports from the ephemeral range and hold them in TIME_WAIT;
// the pair for a server must come from below it.
TEST(PortsTest, FindFreePortPairStaysBelowTheEphemeralRange) {
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  for (int round = 0; round < kRounds; ++round) {
    auto port = FindFreePortPair();
    ASSERT_THAT(port, IsOk());
    EXPECT_LT(*port + 1, ephemeral_low) << "round " << round;
    EXPECT_GE(*port, 1024) << "round " << round;
  }
}

TEST(PortsTest, FindFreePortReturnsABindablePort) {
  for (int round = 0; round < kRounds; ++round) {
    auto port = FindFreePort();
    ASSERT_THAT(port, IsOk());
    EXPECT_NE(*port, 0);
    UniqueFd socket = TcpSocket();
    EXPECT_EQ(Bind(socket, *port), *port) << "round " << round;
  }
}

TEST(PortsTest, PortAcceptsConnectionsOnlyWhileSomethingListens) {
  auto port = FindFreePort();
  ASSERT_THAT(port, IsOk());
  {
    UniqueFd server = TcpSocket();
    ASSERT_EQ(Bind(server, *port), *port);
    EXPECT_FALSE(PortAcceptsConnections(*port)) << "bound but not listening";
    ASSERT_TRUE(Listen(server));
    EXPECT_TRUE(PortAcceptsConnections(*port));
  }
  EXPECT_FALSE(PortAcceptsConnections(*port));
}

TEST(PortsTest, ProcessListensOnOnlyForTheProcessHoldingTheListeningSocket) {
  auto port = FindFreePort();
  ASSERT_THAT(port, IsOk());
  UniqueFd server = TcpSocket();
  ASSERT_EQ(Bind(server, *port), *port);
  EXPECT_FALSE(ProcessListensOn(::getpid(), *port)) << "bound but not listening";
  ASSERT_TRUE(Listen(server));
  EXPECT_TRUE(ProcessListensOn(::getpid(), *port));
  EXPECT_FALSE(ProcessListensOn(::getppid(), *port)) << "another process";
}

}  // namespace
}  // namespace idevid
