// The TPM signer as an OpenSSL 3 provider of our own ("idevid-tpm", registered in-process with
// OSSL_PROVIDER_add_builtin): keymgmt and signature for EC and RSA keys whose private
// operations are TPM2_Sign calls (ECDSA; RSA PKCS#1 v1.5 and, when the TPM's salt is the digest
// length, PSS). The digest is computed in software; the private key never leaves the TPM.
#pragma once

#include <memory>

#include <openssl/types.h>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/tpm_key_signer.h"

namespace idevid {

inline constexpr const char* kTpmProviderName = "idevid-tpm";

// Loads the idevid-tpm provider (and the default provider beside it) into `libctx`; repeated
// calls are cheap. Fails with kOpenSsl when OpenSSL refuses.
Result<void> LoadTpmProvider(OSSL_LIB_CTX* libctx);

// An EVP_PKEY in `libctx` whose public half is the TPM key's and whose signatures are made by
// `signer` (shared; it outlives the key). A PSS signature with a salt the TPM does not make is
// refused (the signing call fails) rather than sent.
Result<ossl::PKey> MakeTpmPrivateKey(OSSL_LIB_CTX* libctx, std::shared_ptr<TpmKeySigner> signer);

}  // namespace idevid
