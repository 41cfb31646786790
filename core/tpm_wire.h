// TPM structures on the wire (TPM 2.0 Part 2, marshalled by tpm2-tss's MU library) and what a
// party without a TPM does with them: object names, signature checks and MakeCredential.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <tss2/tss2_tpm2_types.h>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/x509.h"

namespace idevid {

// The marshalled form of a TPMT_PUBLIC, TPMS_ATTEST or TPMT_SIGNATURE (big-endian, Part 2);
// empty when the structure holds a selector (type, scheme, tag) that Part 2 does not define.
Bytes MarshalPublic(const TPMT_PUBLIC& pub);
Bytes MarshalAttest(const TPMS_ATTEST& attest);
Bytes MarshalSignature(const TPMT_SIGNATURE& signature);

// Unmarshals exactly `bytes` (hostile input: every length is checked by the MU library). Fails
// with kConfig/kSyntax naming the structure when the bytes do not parse or bytes are left over.
Result<TPMT_PUBLIC> UnmarshalPublic(std::span<const std::uint8_t> bytes);
Result<TPMS_ATTEST> UnmarshalAttest(std::span<const std::uint8_t> bytes);
Result<TPMT_SIGNATURE> UnmarshalSignature(std::span<const std::uint8_t> bytes);

// The object's Name (Part 1 §16): nameAlg (2 bytes) || H_nameAlg(marshalled TPMT_PUBLIC).
// Fails with kUsage/kUnsupported for a nameAlg other than SHA-256, SHA-384 or SHA-512.
Result<Bytes> ObjectName(const TPMT_PUBLIC& pub);

// Verifies `signature` (ECDSA, RSASSA or RSAPSS, with the hash the signature names) over
// `message` with the TPM key `pub`. Fails with kVerify/X509_V_ERR_CERT_SIGNATURE_FAILURE (the
// code x509_build uses for a CSR's signature) when it does not verify or its scheme does not fit
// the key, kUsage/kUnsupported for other schemes.
Result<void> VerifyTpmSignature(const TPMT_PUBLIC& pub, std::span<const std::uint8_t> message,
                                const TPMT_SIGNATURE& signature);
// As above with the key as OpenSSL holds it (e.g. from the key's certificate).
Result<void> VerifyTpmSignature(const EVP_PKEY& key, std::span<const std::uint8_t> message,
                                const TPMT_SIGNATURE& signature);

// KDFa (Part 1 §11.4.10.2): `bits` of HMAC_hash(key, [i]32 || label || 0x00 || context_u ||
// context_v || [bits]32) for i = 1, 2, ... (SP 800-108 counter mode); `bits` a multiple of 8.
// Fails with kUsage/kUnsupported for an unsupported hash, kOpenSsl when OpenSSL fails.
Result<Bytes> KdfA(TPMI_ALG_HASH hash, std::span<const std::uint8_t> key, std::string_view label,
                   std::span<const std::uint8_t> context_u, std::span<const std::uint8_t> context_v,
                   std::size_t bits);

// What TPM2_MakeCredential returns: the two inputs of TPM2_ActivateCredential.
struct Credential {
  Bytes blob;              // TPM2B_ID_OBJECT's buffer: TPM2B integrityHMAC || encIdentity
  Bytes encrypted_secret;  // TPM2B_ENCRYPTED_SECRET's buffer: the seed, RSA-OAEP to the EK
};

// TPM2_MakeCredential done in software (Part 1 §24, Part 3 §12.6) by a CA that holds only the EK
// certificate's public key: for an RSA-2048 EK made from the TCG EK template (nameAlg SHA-256,
// AES-128-CFB; OAEP with SHA-256 and label "IDENTITY"), so that only TPM2_ActivateCredential by
// that EK, for the object named `name`, gives back `secret` (at most 64 bytes). Fails with
// kUsage/kUnsupported for an EK that is not RSA-2048, kOpenSsl when a primitive fails.
Result<Credential> MakeCredential(const EVP_PKEY& ek, std::span<const std::uint8_t> name,
                                  std::span<const std::uint8_t> secret);

}  // namespace idevid
