// A private key that signs somewhere else (a TPM, a PKCS#11 token): the interface the signer
// provider (an OpenSSL 3 provider of our own) turns into an EVP_PKEY, so that TLS, X.509 and CRL
// signing use such a key like any other while its private half never leaves its device.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include <openssl/types.h>

#include "core/result.h"
#include "core/x509.h"

namespace idevid {

enum class SignScheme { kEcdsa, kRsaPkcs1, kRsaPss };

class KeySigner {
 public:
  virtual ~KeySigner() = default;

  // The key's public half, as OpenSSL sees it (owned by the signer).
  virtual const EVP_PKEY& public_key() const = 0;
  // What signs, for messages: "TPM2_Sign", "C_Sign".
  virtual std::string_view operation() const = 0;

  // Signs `digest` (of the named hash: "SHA256", "SHA384", "SHA512") on the device. ECDSA comes
  // back DER-encoded, RSA raw. kUsage for an unsupported hash; the device's own error otherwise.
  // Thread-safe.
  [[nodiscard]] virtual Result<Bytes> Sign(SignScheme scheme, std::string_view digest_name,
                                           std::span<const std::uint8_t> digest) = 0;
  // Whether RSA-PSS signatures use a salt as long as the digest, which TLS 1.3 requires
  // (RFC 8446 4.2.3). false for EC keys.
  [[nodiscard]] virtual Result<bool> RsaPssSaltIsDigestLength() = 0;

  // The number of signatures made and failed so far, and the last failure's error (for callers
  // such as a TLS stack that only see that a signature failed).
  virtual std::uint64_t signatures() const = 0;
  virtual std::uint64_t failures() const = 0;
  virtual std::optional<Error> last_failure() const = 0;

  bool is_rsa() const;
};

}  // namespace idevid
