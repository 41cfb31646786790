#include "device/pkid/tpm_reachability.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/tpm_context.h"
#include "core/tpm_keys.h"

namespace idevid {

std::chrono::milliseconds TpmBackoff::After(std::chrono::milliseconds delay) const {
  return std::clamp(delay * 2, first_delay, std::max(first_delay, max_delay));
}

std::string TpmUnreachableReason(const std::string& tcti, const Error& error) {
  return fmt::format("the TPM at {} does not answer: {}", tcti, error.message());
}

std::string RetryingEvery(std::chrono::milliseconds delay) {
  return fmt::format("; retrying every {:g} s", static_cast<double>(delay.count()) / 1000.0);
}

Result<void> ProbeTpm(const std::string& tcti, std::uint32_t key_handle) {
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm,
                          TpmContext::Open(tcti, {.command_timeout = std::chrono::seconds(5)}));
  IDEVID_TRY(ReadPersistentPublic(tpm, key_handle));
  return {};
}

}  // namespace idevid
