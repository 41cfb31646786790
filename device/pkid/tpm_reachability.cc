#include "device/pkid/tpm_reachability.h"

#include <algorithm>

#include <fmt/format.h>
#include <tss2/tss2_common.h>

#include "core/tpm_context.h"
#include "core/tpm_keys.h"

namespace idevid {

std::chrono::milliseconds TpmBackoff::After(std::chrono::milliseconds delay) const {
  return std::clamp(delay * 2, first_delay, std::max(first_delay, max_delay));
}

bool IsTpmUnreachable(const Error& error) {
  if (error.domain() != ErrorDomain::kTss) return false;
  auto rc = static_cast<TSS2_RC>(error.code());
  TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  // Answers of the TPM itself (directly or relayed by a resource manager) mean it is there.
  if (layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER) return false;
  TSS2_RC base = rc & 0xFFFF;
  return base == TSS2_BASE_RC_NO_CONNECTION || base == TSS2_BASE_RC_IO_ERROR ||
         base == TSS2_BASE_RC_TRY_AGAIN;
}

std::string TpmUnreachableReason(const std::string& tcti, const Error& error) {
  return fmt::format("the TPM at {} does not answer: {}", tcti, error.message());
}

std::string RetryingEvery(std::chrono::milliseconds delay) {
  return fmt::format("; retrying every {:g} s", static_cast<double>(delay.count()) / 1000.0);
}

Result<void> ProbeTpm(const std::string& tcti, std::uint32_t key_handle) {
  auto tpm = TpmContext::Open(tcti, {.command_timeout = std::chrono::seconds(5)});
  if (!tpm) return Fail(tpm.error());
  auto pub = ReadPersistentPublic(*tpm, key_handle);
  if (!pub) return Fail(pub.error());
  return {};
}

}  // namespace idevid
