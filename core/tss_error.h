// The one place where a TSS2_RC from tpm2-tss becomes an Error.
#pragma once

#include <string_view>

#include <tss2/tss2_common.h>

#include "core/result.h"

namespace idevid {

// Error in domain kTss with code `rc` and message "what: <Tss2_RC_Decode text> (0x...)" plus a
// hint for the well-known codes (no such handle, object memory full, locked NV, ...).
Error TssError(TSS2_RC rc, std::string_view what);

inline tl::unexpected<Error> FailTss(TSS2_RC rc, std::string_view what) {
  return tl::unexpected<Error>(TssError(rc, what));
}

// True for the TPM's "try again" answers: TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING.
bool IsRetryableTpmRc(TSS2_RC rc);

// True when `error` is the TPM's (or its resource manager's) answer `tpm_rc` (TPM2_RC_*).
bool IsTpmRc(const Error& error, TSS2_RC tpm_rc);

// True when `error` says the TPM (or the path to it: TCTI, resource manager) did not answer:
// nothing listening, the connection lost, no answer in time. False when the TPM answered, even
// with an error (no such handle, no certificate in NV), and for errors of other domains.
bool IsTpmUnreachable(const Error& error);

// The rc without its layer bits and handle/parameter/session number, for comparing with TPM2_RC_*.
TSS2_RC BaseTpmRc(TSS2_RC rc);

}  // namespace idevid
