// A signing key inside a PKCS#11 token (an HSM, SoftHSM2): generated there, found there by label
// and id, and signing there (C_Sign); its private half is sensitive and never extractable, so no
// byte of it exists outside the token. A KeySigner, so the signer provider makes it an EVP_PKEY.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/key_signer.h"
#include "core/openssl_ptr.h"
#include "core/pkcs11_token.h"
#include "core/result.h"
#include "core/tpm_keys.h"
#include "core/x509.h"

namespace idevid {

// How a key pair is named in a token: CKA_LABEL of both halves, and CKA_ID when given.
struct Pkcs11KeyName {
  std::string label;
  std::optional<Bytes> id;
};

class Pkcs11KeySigner final : public KeySigner {
 public:
  // Generates a key pair of `algorithm` (EC P-256 or RSA-2048) inside the token. The private key
  // is CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN. Refuses (kUsage
  // kWrongState) when the token already holds an object of that name, unless `replace`, which
  // destroys those first. kPkcs11 with the token's CK_RV otherwise.
  static Result<std::shared_ptr<Pkcs11KeySigner>> Generate(std::shared_ptr<Pkcs11Token> token,
                                                           KeyAlgorithm algorithm, const Pkcs11KeyName& name,
                                                           bool replace);
  // The key pair named `name` in the token. kConfig kReference when the token holds no such
  // private and public key (or more than one); kPkcs11 with the token's CK_RV.
  static Result<std::shared_ptr<Pkcs11KeySigner>> Find(std::shared_ptr<Pkcs11Token> token,
                                                       const Pkcs11KeyName& name);

  const EVP_PKEY& public_key() const override { return *public_key_; }
  std::string_view operation() const override { return "C_Sign"; }
  const Pkcs11KeyName& name() const { return name_; }

  // Signs in the token: CKM_ECDSA over the digest (the r||s answer DER-encoded, RFC 3279 2.2.3),
  // CKM_RSA_PKCS over its DigestInfo (RFC 8017 9.2), CKM_RSA_PKCS_PSS with MGF1 of the same hash
  // and a salt as long as the digest. kUsage for a hash other than SHA-256/384/512; kPkcs11 with
  // the CK_RV (CKR_DEVICE_REMOVED, CKR_SESSION_HANDLE_INVALID... when the token went away).
  Result<Bytes> Sign(SignScheme scheme, std::string_view digest_name,
                     std::span<const std::uint8_t> digest) override;
  // true for RSA keys: the salt is chosen by us, as long as the digest.
  Result<bool> RsaPssSaltIsDigestLength() override { return is_rsa(); }

  std::uint64_t signatures() const override;
  std::uint64_t failures() const override;
  std::optional<Error> last_failure() const override;

 private:
  Pkcs11KeySigner() = default;
  Result<Bytes> SignInToken(SignScheme scheme, std::string_view digest_name,
                            std::span<const std::uint8_t> digest);
  std::shared_ptr<Pkcs11Token> token_;
  Pkcs11KeyName name_;
  CK_OBJECT_HANDLE private_key_ = CK_INVALID_HANDLE;
  ossl::PKey public_key_;
  mutable std::mutex mutex_;  // the counters
  std::uint64_t signatures_ = 0;
  std::uint64_t failures_ = 0;
  std::optional<Error> last_failure_;
};

}  // namespace idevid
