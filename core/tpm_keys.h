// TPM keys: the TCG device-identity templates, CreatePrimary, EvictControl, ReadPublic, and the
// conversion of a TPM public area into an OpenSSL public key.
#pragma once

#include <string_view>

#include <tss2/tss2_tpm2_types.h>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/tpm_context.h"

namespace idevid {

enum class KeyAlgorithm { kEccP256, kRsa2048 };

// "ecc-p256" / "rsa-2048".
std::string_view KeyAlgorithmName(KeyAlgorithm alg);
// Parses "ecc-p256" or "rsa-2048"; fails with kUsage naming the accepted values.
Result<KeyAlgorithm> ParseKeyAlgorithm(std::string_view text);

// The IDevID key template of TCG "TPM 2.0 Keys for Device Identity and Attestation" 7.3.4:
// H-2 (ECC NIST P-256, SHA-256) or H-1 (RSA-2048, SHA-256); attributes fixedTPM fixedParent
// sensitiveDataOrigin userWithAuth adminWithPolicy sign and unique "IDEVID". The authPolicy is
// ours (core/tpm_policy.h: TPM2_Certify and TPM2_ActivateCredential only), since the spec's
// digests cannot be satisfied from what it publishes. The ECC key signs ECDSA-SHA256 only; the RSA scheme is
// left open (TPM_ALG_NULL) so that each signature can choose RSASSA or RSAPSS, as TLS requires.
TPM2B_PUBLIC IdevidKeyTemplate(KeyAlgorithm alg);

// The IAK template of the same spec, 7.3.4: H-2 (ECC NIST P-256, ECDSA-SHA256) or H-1 (RSA-2048,
// RSASSA-SHA256); attributes fixedTPM fixedParent sensitiveDataOrigin userWithAuth
// adminWithPolicy restricted sign, unique "IAK", and the same authPolicy as our IDevID's.
TPM2B_PUBLIC IakKeyTemplate(KeyAlgorithm alg);

// A primary key just created: its transient object (flushed when dropped) and public area.
struct PrimaryKey {
  TransientObject object;
  TPM2B_PUBLIC public_area{};
};

// TPM2_CreatePrimary under `hierarchy` (ESYS_TR_RH_ENDORSEMENT, _OWNER, ...) with empty
// hierarchy and key auth. Fails with the TPM's error (e.g. TPM_RC_OBJECT_MEMORY when full).
Result<PrimaryKey> CreatePrimary(const TpmContext& tpm, ESYS_TR hierarchy, const TPM2B_PUBLIC& key_template);

// Makes `object` persistent at `persistent_handle` (0x81xxxxxx) with owner authorization; the
// transient stays owned by the caller. Fails with TPM_RC_NV_DEFINED when the handle is taken.
Result<void> PersistKey(const TpmContext& tpm, const TransientObject& object, TPM2_HANDLE persistent_handle);

// Removes the persistent object at `persistent_handle`. Fails with TPM_RC_HANDLE when absent.
Result<void> UnpersistKey(const TpmContext& tpm, TPM2_HANDLE persistent_handle);

// An ESYS reference to the persistent key at `persistent_handle`. Fails with the TPM's
// TPM_RC_HANDLE error, under "no key at 0x81...", when nothing is there.
Result<EsysReference> ReferencePersistentKey(const TpmContext& tpm, TPM2_HANDLE persistent_handle);
// TPM2_ReadPublic of a loaded or persistent object. Fails with TPM_RC_HANDLE when absent.
Result<TPM2B_PUBLIC> ReadPublic(const TpmContext& tpm, ESYS_TR object);
Result<TPM2B_PUBLIC> ReadPersistentPublic(const TpmContext& tpm, TPM2_HANDLE persistent_handle);

// The OpenSSL public key of an ECC (P-256/P-384) or RSA TPM public area. Fails with kUsage
// for other key types or curves.
Result<ossl::PKey> PublicKeyFromTpm(const TPMT_PUBLIC& pub);

}  // namespace idevid
