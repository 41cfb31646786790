#include "engine/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "core/unique_fd.h"

namespace idevid {
namespace {

sockaddr_in Loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A TCP socket bound to 127.0.0.1:port (0 = any free port), with SO_REUSEADDR as the servers
// given the port bind (swtpm, the cloud); kIo with errno when the port cannot be bound.
Result<UniqueFd> BindLoopback(std::uint16_t port) {
  IDEVID_ASSIGN_OR_RETURN(UniqueFd socket, OpenSocket(AF_INET, SOCK_STREAM));
  int one = 1;
  ::setsockopt(socket.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = Loopback(port);
  if (::bind(socket.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoError(errno, fmt::format("cannot bind 127.0.0.1:{}", port));
  }
  return socket;
}

// The local port of a bound socket; kIo with errno when it cannot be read.
Result<std::uint16_t> LocalPort(const UniqueFd& socket) {
  sockaddr_in addr{};
  socklen_t length = sizeof addr;
  if (::getsockname(socket.get(), reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    return ErrnoError(errno, "cannot read the port of a bound socket");
  }
  return ntohs(addr.sin_port);
}

// Ports for the servers the harness starts: [low, high), below the kernel's ephemeral range, which
// outgoing connections use. Every connection a client closes first holds its ephemeral port in
// TIME_WAIT for a minute, and such a port cannot be bound, SO_REUSEADDR or not (the swtpm TCTI
// opens one connection per TPM command, so a busy swtpm leaves thousands).
std::pair<int, int> ServerPortRange() {
  int ephemeral_low = 32768;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> ephemeral_low;
  int high = std::clamp(ephemeral_low, 2048, 65535);
  return {std::max(1024, high - 12000), high};
}

// The inodes of the IPv4 sockets listening on `port`: /proc/net/tcp lines are
// "sl local_address rem_address st ... inode", addresses as hex IP:PORT, st 0A = LISTEN.
std::set<std::string> ListeningInodes(std::uint16_t port) {
  std::set<std::string> inodes;
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // the column titles
  const std::string wanted_port = fmt::format(":{:04X}", port);
  const std::string wanted_field = wanted_port + ' ';
  while (std::getline(table, line)) {
    // Thousands of TIME_WAIT lines on a busy machine: only lines naming the port are split.
    if (line.find(wanted_field) == std::string::npos) continue;
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >>
          inode)) {
      continue;
    }
    if (state == "0A" && local.ends_with(wanted_port)) inodes.insert(inode);
  }
  return inodes;
}

}  // namespace

bool ProcessListensOn(pid_t pid, std::uint16_t port) {
  std::set<std::string> inodes = ListeningInodes(port);
  if (inodes.empty()) return false;
  std::error_code ec;
  std::filesystem::directory_iterator fds(fmt::format("/proc/{}/fd", pid), ec);
  for (; !ec && fds != std::filesystem::directory_iterator(); fds.increment(ec)) {
    std::error_code link_error;
    std::string target = std::filesystem::read_symlink(fds->path(), link_error).string();
    // "socket:[INODE]"
    if (!link_error && target.starts_with("socket:[") && target.ends_with("]") &&
        inodes.contains(target.substr(8, target.size() - 9))) {
      return true;
    }
  }
  return false;
}

Result<std::uint16_t> FindFreePort() {
  IDEVID_ASSIGN_OR_RETURN(UniqueFd socket, BindLoopback(0), "finding a free port on 127.0.0.1");
  return LocalPort(socket);
}

Result<std::uint16_t> FindFreePortPair() {
  auto [low, high] = ServerPortRange();
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> pick(low, high - 2);  // P and P+1 both below `high`
  for (int attempt = 0; attempt < 64; ++attempt) {
    auto port = static_cast<std::uint16_t>(pick(random));
    Result<UniqueFd> command = BindLoopback(port);  // held while P+1 is tried
    if (command && BindLoopback(static_cast<std::uint16_t>(port + 1))) return port;
  }
  return Fail(
      ErrorDomain::kIo, EADDRINUSE,
      fmt::format("cannot find two consecutive free ports in {}-{} on 127.0.0.1 after 64 tries", low, high));
}

bool PortAcceptsConnections(std::uint16_t port) {
  auto socket = OpenSocket(AF_INET, SOCK_STREAM);
  sockaddr_in addr = Loopback(port);
  return socket && ::connect(socket->get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

}  // namespace idevid
