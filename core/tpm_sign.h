// Signatures made by a TPM key over a digest computed in software (TPM2_Sign), returned in the
// encoding OpenSSL verifies.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <tss2/tss2_tpm2_types.h>

#include "core/result.h"
#include "core/tpm_context.h"

namespace idevid {

enum class SignatureScheme { kEcdsa, kRsaPkcs1, kRsaPss };

struct SignatureAlgorithm {
  SignatureScheme scheme = SignatureScheme::kEcdsa;
  TPMI_ALG_HASH hash = TPM2_ALG_SHA256;  // SHA-256, SHA-384 or SHA-512
};

// A TPM ECDSA signature (r, s) as OpenSSL verifies it: DER Ecdsa-Sig-Value (RFC 3279 2.2.3).
// Fails with kOpenSsl when it cannot be encoded.
Result<std::vector<std::uint8_t>> EcdsaSignatureDer(const TPMS_SIGNATURE_ECC& ecc);

// The OpenSSL digest name of a TPM hash ("SHA256"); empty for an unsupported one.
std::string_view DigestName(TPMI_ALG_HASH hash);

// The digest length of a TPM hash in bytes; 0 for an unsupported one.
std::size_t DigestSize(TPMI_ALG_HASH hash);

// Signs `digest` (already hashed with algorithm.hash) with the key `key` (empty auth) by
// TPM2_Sign. ECDSA signatures come back DER-encoded (Ecdsa-Sig-Value, RFC 3279 2.2.3), RSA ones as
// the raw big-endian signature. Fails with kUsage when the digest length does not fit the hash,
// and with the TPM's error (e.g. TPM_RC_SCHEME) when the key cannot sign that way.
Result<std::vector<std::uint8_t>> SignDigest(const TpmContext& tpm, ESYS_TR key, SignatureAlgorithm algorithm,
                                             std::span<const std::uint8_t> digest);

// SignDigest's signature as the TPM gives it (TPMT_SIGNATURE), for structures that carry it so.
Result<TPMT_SIGNATURE> SignDigestAsTpm(const TpmContext& tpm, ESYS_TR key, SignatureAlgorithm algorithm,
                                       std::span<const std::uint8_t> digest);

// The digest of `message` with `hash` (SHA-256/384/512) in software; kUsage for another hash.
Result<std::vector<std::uint8_t>> HashMessage(TPMI_ALG_HASH hash, std::span<const std::uint8_t> message);

// Hashes `message` in software with algorithm.hash, then SignDigest.
Result<std::vector<std::uint8_t>> SignMessage(const TpmContext& tpm, ESYS_TR key,
                                              SignatureAlgorithm algorithm,
                                              std::span<const std::uint8_t> message);

}  // namespace idevid
