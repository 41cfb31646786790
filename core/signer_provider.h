// A KeySigner (a TPM key, a PKCS#11 token's key) as an OpenSSL 3 provider of our own
// ("idevid-signer", registered in-process with OSSL_PROVIDER_add_builtin): keymgmt and signature
// for EC and RSA keys whose private operations are the signer's (TPM2_Sign, C_Sign: ECDSA; RSA
// PKCS#1 v1.5 and, when the signer's salt is the digest length, PSS). The digest is computed in
// software; the private key never leaves its device. A signature it cannot make is an error on
// OpenSSL's queue in the provider's own library, with a reason naming the signer's operation
// ("idevid-signer::TPM2_Sign failed:...", "...:C_Sign failed:...") and the device's answer.
#pragma once

#include <memory>
#include <optional>

#include <openssl/types.h>

#include "core/key_signer.h"
#include "core/openssl_ptr.h"
#include "core/result.h"

namespace idevid {

inline constexpr const char* kSignerProviderName = "idevid-signer";

// An OpenSSL library context with the default provider and the idevid-signer provider loaded:
// move-only; destroying it unloads both and frees the context, so everything made in it (keys,
// TLS contexts) must be gone first.
class SignerProviderLibrary {
 public:
  // Fails with kOpenSsl when OpenSSL refuses to load either provider.
  static Result<SignerProviderLibrary> Create();
  SignerProviderLibrary(SignerProviderLibrary&& other) noexcept;
  SignerProviderLibrary& operator=(SignerProviderLibrary&& other) noexcept;
  SignerProviderLibrary(const SignerProviderLibrary&) = delete;
  SignerProviderLibrary& operator=(const SignerProviderLibrary&) = delete;
  ~SignerProviderLibrary();

  OSSL_LIB_CTX* get() const { return libctx_; }

 private:
  SignerProviderLibrary() = default;
  void Release();
  OSSL_LIB_CTX* libctx_ = nullptr;
  OSSL_PROVIDER* default_provider_ = nullptr;
  OSSL_PROVIDER* signer_provider_ = nullptr;
};

// An EVP_PKEY in `libctx` (a SignerProviderLibrary's) whose public half is the signer's key's and whose
// signatures are made by `signer` (shared; it outlives the key). A PSS signature with a salt the signer
// does not make is refused (the signing call fails) rather than sent.
Result<ossl::PKey> MakeSignerPrivateKey(OSSL_LIB_CTX* libctx, std::shared_ptr<KeySigner> signer);

// The signer's error (kPkcs11, kTss...) of the last signature this provider failed to make on
// this thread, taken once; nullopt when none failed since the last take. For callers that only
// see OpenSSL fail (X509_sign, X509_CRL_sign) and want to report the device's answer.
std::optional<Error> TakeSignerFailure();

}  // namespace idevid
