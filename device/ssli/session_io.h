// Time limits of one TLS session with the cloud on a non-blocking socket: every wait for the cloud
// is bounded by the profile's handshake-timeout, and the whole session (connect, handshake,
// request, response) by one deadline, so that a peer that trickles bytes cannot hold the device.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <openssl/types.h>

#include "core/result.h"
#include "core/unique_fd.h"

namespace idevid {

// The limits of one session, fixed when it starts.
struct SessionLimits {
  std::chrono::steady_clock::time_point deadline;
  std::chrono::milliseconds total{0};     // the whole session's allowance, for messages
  std::chrono::milliseconds per_wait{0};  // the longest wait for the cloud at a time

  // Limits for a session starting now.
  static SessionLimits StartingNow(std::chrono::milliseconds total, std::chrono::milliseconds per_wait);
};

// "30 s" or "2500 ms": a limit as messages state it.
std::string DurationText(std::chrono::milliseconds d);

// A TCP connection to host:port whose connect waits no longer than the limits allow; the socket
// is left non-blocking. kPeer kUnreachable when the host cannot be resolved or every address
// refuses or cannot be reached, kPeer kTimeout naming the limit when the connect did not finish in
// time, kIo when no socket can be opened.
Result<UniqueFd> ConnectTcpWithin(const std::string& host, std::uint16_t port, const SessionLimits& limits);

// What an OpenSSL call on a session came to once it stopped wanting to wait.
struct TlsCall {
  int ret = 0;          // the call's return value
  int ssl_error = 0;    // SSL_get_error for it (SSL_ERROR_NONE when ret > 0)
  int saved_errno = 0;  // errno right after it
};

// Repeats `call` (SSL_connect, SSL_read, SSL_write on `ssl`) while it wants the socket to become
// readable or writable, waiting per_wait at most each time and never past the deadline. Returns
// the first outcome that is not a wait (success or failure, for the caller to judge); kPeer
// kTimeout when a limit passed: "the cloud did not answer within the profile's handshake-timeout
// of N s" or "the session did not finish within its deadline of N s".
Result<TlsCall> RunTlsCall(SSL* ssl, const SessionLimits& limits, const std::function<int()>& call);

}  // namespace idevid
