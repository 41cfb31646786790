// The TPM signer as an OpenSSL 3 provider of our own ("idevid-tpm", registered in-process with
// OSSL_PROVIDER_add_builtin): keymgmt and signature for EC and RSA keys whose private
// operations are TPM2_Sign calls (ECDSA; RSA PKCS#1 v1.5 and, when the TPM's salt is the digest
// length, PSS). The digest is computed in software; the private key never leaves the TPM.
// A signature it cannot make is an error on OpenSSL's queue in the provider's own library,
// with a reason OpenSSL names ("idevid-tpm::TPM2_Sign failed:...") and the TPM's answer.
#pragma once

#include <memory>

#include <openssl/types.h>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/tpm_key_signer.h"

namespace idevid {

inline constexpr const char* kTpmProviderName = "idevid-tpm";

// An OpenSSL library context with the default provider and the idevid-tpm provider loaded:
// move-only; destroying it unloads both and frees the context, so everything made in it (keys,
// TLS contexts) must be gone first.
class TpmProviderLibrary {
 public:
  // Fails with kOpenSsl when OpenSSL refuses to load either provider.
  static Result<TpmProviderLibrary> Create();
  TpmProviderLibrary(TpmProviderLibrary&& other) noexcept;
  TpmProviderLibrary& operator=(TpmProviderLibrary&& other) noexcept;
  TpmProviderLibrary(const TpmProviderLibrary&) = delete;
  TpmProviderLibrary& operator=(const TpmProviderLibrary&) = delete;
  ~TpmProviderLibrary();

  OSSL_LIB_CTX* get() const { return libctx_; }

 private:
  TpmProviderLibrary() = default;
  void Release();
  OSSL_LIB_CTX* libctx_ = nullptr;
  OSSL_PROVIDER* default_provider_ = nullptr;
  OSSL_PROVIDER* tpm_provider_ = nullptr;
};

// An EVP_PKEY in `libctx` (a TpmProviderLibrary's) whose public half is the TPM key's and whose signatures
// are made by `signer` (shared; it outlives the key). A PSS signature with a salt the TPM does not make is
// refused (the signing call fails) rather than sent.
Result<ossl::PKey> MakeTpmPrivateKey(OSSL_LIB_CTX* libctx, std::shared_ptr<TpmKeySigner> signer);

}  // namespace idevid
