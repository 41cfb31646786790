// Whether pkid's TPM answers, and how patiently pkid asks again when it does not.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/result.h"
#include "core/tss_error.h"  // IsTpmUnreachable

namespace idevid {

// The pauses between attempts to reach a TPM that does not answer: first_delay, doubling up to
// max_delay. While the TPM answers, it is looked at every max_delay.
struct TpmBackoff {
  std::chrono::milliseconds first_delay{100};
  std::chrono::milliseconds max_delay{5000};
  // The pause after one of `delay` failed: doubled, within [first_delay, max_delay].
  std::chrono::milliseconds After(std::chrono::milliseconds delay) const;
};

// "the TPM at <tcti> does not answer: <error>", the reason idev-id is not loaded while so.
std::string TpmUnreachableReason(const std::string& tcti, const Error& error);

// "; retrying every N s" for a pause of `delay`.
std::string RetryingEvery(std::chrono::milliseconds delay);

// Asks the TPM behind `tcti` for the public area at `key_handle` (one short command); the error
// of the connection or of the command otherwise. Holds no connection after it returns.
Result<void> ProbeTpm(const std::string& tcti, std::uint32_t key_handle);

}  // namespace idevid
