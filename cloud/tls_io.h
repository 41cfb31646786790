// Non-blocking TLS and socket I/O bounded twice: by a wait per read or write (a peer that goes
// quiet) and by a deadline for the whole step (a peer that trickles bytes to hold a thread).
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <functional>

#include "core/unique_fd.h"

namespace idevid {

using Clock = std::chrono::steady_clock;

// How a step on a connection ended.
enum class IoOutcome {
  kDone,      // the step completed
  kClosed,    // the peer closed the connection
  kFailed,    // a TLS or socket error (on OpenSSL's error queue for TLS)
  kIdle,      // nothing came or went for one whole per-read wait
  kDeadline,  // the step's deadline passed
};

// The bounds of one step: the time it must end by and the longest wait for the peer.
struct IoBounds {
  Clock::time_point deadline;
  std::chrono::milliseconds idle;
};

// Puts `fd` in non-blocking mode; false on failure.
[[nodiscard]] bool SetNonBlocking(int fd);

// Repeats `step` (SSL_accept, SSL_read, SSL_write on `ssl`, returning what they return) until it
// succeeds, waiting for the socket between tries within `bounds`. On kDone, *result holds the
// step's positive return value.
[[nodiscard]] IoOutcome DriveSsl(SSL* ssl, int fd, const std::function<int()>& step, const IoBounds& bounds,
                                 int* result);

// Waits within `bounds` until `fd` has a byte to read.
[[nodiscard]] IoOutcome WaitReadable(int fd, const IoBounds& bounds);

// Closes after the peer has had the chance to read what was sent last (an alert, a response):
// closing with its data unread would reset the connection and lose it on the way.
void LingeringClose(UniqueFd fd);

}  // namespace idevid
