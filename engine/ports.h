// Free loopback TCP ports for simulators the harness starts.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "core/result.h"

namespace idevid {

// A port P on 127.0.0.1 such that P and P+1 are both free right now (swtpm and the mssim/swtpm
// TCTIs use P for commands and P+1 for control), chosen at random below the kernel's ephemeral
// port range, where outgoing connections in TIME_WAIT cannot hold it. Another process can still take them
// before they are used: callers retry on "address in use".
Result<std::uint16_t> FindFreePortPair();

// One free port on 127.0.0.1 right now.
Result<std::uint16_t> FindFreePort();

// True when something accepts TCP connections on 127.0.0.1:port.
bool PortAcceptsConnections(std::uint16_t port);

// True when process `pid` itself holds a socket listening on TCP port `port` (IPv4), as
// /proc/net/tcp and /proc/PID/fd tell; false when another process listens there, nothing does,
// or /proc cannot be read. Tells a server we started from another that took its port.
bool ProcessListensOn(pid_t pid, std::uint16_t port);

}  // namespace idevid
