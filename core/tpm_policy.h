// The ADMIN-role policy of our device-identity keys (IDevID and IAK). TCG "TPM 2.0 Keys for
// Device Identity and Attestation" 7.3.4 sets adminWithPolicy on both, so TPM2_Certify of the
// IDevID and TPM2_ActivateCredential for the IAK (ADMIN-role commands, TPM 2.0 Part 1 §19.7.7)
// need a policy session. The spec's own authPolicy values cannot be satisfied from what the spec
// publishes; ours allows exactly those two commands:
//   PolicyOR( PolicyCommandCode(TPM_CC_Certify), PolicyCommandCode(TPM_CC_ActivateCredential) )
#pragma once

#include <string_view>
#include <vector>

#include <tss2/tss2_tpm2_types.h>

#include "core/result.h"
#include "core/tpm_context.h"
#include "core/x509.h"

namespace idevid {

// Policy digests computed in software (TPM 2.0 Part 3 §23.11, §23.6), SHA-256.
Bytes PolicyCommandCodeDigest(const Bytes& previous, TPM2_CC code);
Bytes PolicyOrDigest(const std::vector<Bytes>& branches);

// The authPolicy of our IDevID and IAK templates (32 bytes) and its two branches.
const Bytes& IdentityAdminPolicy();
const std::vector<Bytes>& IdentityAdminPolicyBranches();

// A fresh SHA-256 policy session (unbound, unsalted), flushed when dropped; `what` names its use
// in the error. Fails with the TPM's error (e.g. TPM_RC_SESSION_MEMORY).
Result<TransientObject> StartPolicySession(const TpmContext& tpm, std::string_view what);

// A policy session that satisfies IdentityAdminPolicy for `command` (TPM2_CC_Certify or
// TPM2_CC_ActivateCredential); flushed when dropped. Fails with the TPM's error.
Result<TransientObject> IdentityAdminSession(const TpmContext& tpm, TPM2_CC command);

// True when `pub` takes IdentityAdminSession for its ADMIN role (adminWithPolicy and our policy).
bool TakesIdentityAdminSession(const TPMT_PUBLIC& pub);

}  // namespace idevid
