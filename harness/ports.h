// Free loopback TCP ports for simulators the harness starts.
#pragma once

#include <cstdint>

#include "core/result.h"

namespace idevid {

// A port P on 127.0.0.1 such that P and P+1 are both free right now (swtpm and the mssim/swtpm
// TCTIs use P for commands and P+1 for control), chosen at random below the kernel's ephemeral
// port range, where outgoing connections in TIME_WAIT cannot hold it. Another process can still take them before
// they are used: callers retry on "address in use".
Result<std::uint16_t> FindFreePortPair();

// One free port on 127.0.0.1 right now.
Result<std::uint16_t> FindFreePort();

// True when something accepts TCP connections on 127.0.0.1:port.
bool PortAcceptsConnections(std::uint16_t port);

}  // namespace idevid
