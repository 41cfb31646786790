// Attestation with TPM keys: TPM2_Certify (TPM 2.0 Part 3 §18.2) and credential activation with
// the endorsement key (Part 3 §12.5; TCG EK Credential Profile 2.3 for the EK).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/result.h"
#include "core/tpm_context.h"
#include "core/tpm_keys.h"
#include "core/tpm_wire.h"

namespace idevid {

// What a TPM signed: the marshalled TPMS_ATTEST (the TPM2B_ATTEST's buffer, the signed bytes) and
// the marshalled TPMT_SIGNATURE over it.
struct Attestation {
  Bytes attest;
  Bytes signature;
};

// The scheme to ask a signing command (TPM2_Certify, TPM2_Quote) for: TPM_ALG_NULL when the key
// has its own (Part 3 §18.2: inScheme must then be TPM_ALG_NULL or the same), else ECDSA or
// RSASSA with SHA-256.
TPMT_SIG_SCHEME SigningScheme(const TPMT_PUBLIC& signer);

// `qualifying_data` as the extraData of `command`. Fails with kUsage/kInvalidArgument over 64 bytes.
Result<TPM2B_DATA> QualifyingData(std::span<const std::uint8_t> qualifying_data, std::string_view command);

// What a signing command returned, marshalled. Fails with kUsage/kUnsupported for a signature
// algorithm that does not marshal.
Result<Attestation> AttestationOf(const TPM2B_ATTEST& attest, const TPMT_SIGNATURE& signature);

// TPM2_Certify of `object` by `signer` (both with empty auth) with `qualifying_data` (at most 64
// bytes) as extraData, in the signer's own scheme (ECDSA-SHA256 for an ECC key, RSASSA-SHA256
// for an RSA key without one). Fails with kUsage for oversize qualifying data, the TPM's error
// otherwise (e.g. TPM_RC_KEY when `signer` cannot sign, TPM_RC_AUTH_TYPE when `object` has
// adminWithPolicy, as the TCG IDevID template does: its ADMIN role then takes only a policy
// session that satisfies its authPolicy).
Result<Attestation> Certify(const TpmContext& tpm, ESYS_TR object, ESYS_TR signer,
                            std::span<const std::uint8_t> qualifying_data);

// The TCG EK Credential Profile 2.3 template L-1 (§B.3.3): RSA-2048, nameAlg SHA-256,
// AES-128-CFB, policy A (TPM2_PolicySecret on TPM_RH_ENDORSEMENT), the key whose certificate TPM
// vendors and swtpm_setup put at NV 0x01C00002.
TPM2B_PUBLIC EkRsaTemplate();

// The RSA EK, created again from its template in the endorsement hierarchy (the same key every
// time on the same TPM). Fails with the TPM's error.
Result<PrimaryKey> CreateEk(const TpmContext& tpm);

// TPM2_ActivateCredential: `ek` (authorized by a policy session with TPM2_PolicySecret on the
// endorsement hierarchy, its policy A) opens `credential` for `object` (empty auth) and gives back
// the secret. Fails with the TPM's TPM_RC_INTEGRITY (kTss) when the credential was made for
// another object's name; for another EK the seed does not decrypt (TPM_RC_VALUE, or
// TPM_RC_FAILURE from libtpms/swtpm). TPM_RC_AUTH_TYPE when `object` has adminWithPolicy (the TCG
// IAK template): its ADMIN role takes only a policy session.
Result<Bytes> ActivateCredential(const TpmContext& tpm, ESYS_TR object, ESYS_TR ek,
                                 const Credential& credential);

}  // namespace idevid
