// The one place where OpenSSL's thread-local error queue becomes an Error.
#pragma once

#include <string_view>

#include "core/result.h"

namespace idevid {

// Drains the whole OpenSSL error queue of this thread into one Error (domain kOpenSsl, code of the
// first queued error, 0 if the queue was empty) whose message starts with `what`.
Error OpenSslError(std::string_view what);

// Shorthand: tl::unexpected(OpenSslError(what)).
inline tl::unexpected<Error> FailOpenSsl(std::string_view what) {
  return tl::unexpected<Error>(OpenSslError(what));
}

// Empties this thread's OpenSSL error queue, e.g. after an expected failure that was handled.
void ClearOpenSslErrors();

}  // namespace idevid
