// A TPM-held signing key for callers above core/ (the OpenSSL provider, the SSL-I client): one
// TPM connection, one persistent key, thread-safe, with no tpm2-tss types in its interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/key_signer.h"
#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/x509.h"

namespace idevid {

class TpmContext;

class TpmKeySigner final : public KeySigner {
 public:
  // Opens `tcti` and resolves the persistent key at `handle`. Fails with the TPM's error
  // (TPM_RC_HANDLE when no key is there) or kTss naming the TCTI when it cannot connect.
  static Result<std::shared_ptr<TpmKeySigner>> Open(const std::string& tcti, std::uint32_t handle);
  ~TpmKeySigner() override;

  // The key's public half, as OpenSSL sees it.
  const EVP_PKEY& public_key() const override { return *public_key_; }
  std::string_view operation() const override { return "TPM2_Sign"; }
  std::uint32_t handle() const { return handle_; }

  // Signs `digest` (of the named hash: "SHA256", "SHA384", "SHA512") in the TPM, one signature
  // at a time. ECDSA comes back DER-encoded, RSA raw. kUsage for an unsupported hash. When the
  // connection to the TPM breaks, this signature fails with the TSS error and the next one
  // reconnects (failing kVerify if the key at the handle is no longer the same key).
  Result<Bytes> Sign(SignScheme scheme, std::string_view digest_name,
                     std::span<const std::uint8_t> digest) override;

  // Whether this TPM's RSA-PSS signatures use a salt as long as the digest, which TLS 1.3
  // requires (RFC 8446 4.2.3); some TPMs use the maximum salt. Probed once with a test signature
  // and remembered. false for EC keys.
  Result<bool> RsaPssSaltIsDigestLength() override;

  // The number of signatures made so far.
  std::uint64_t signatures() const override;
  // The number of signatures that failed so far, and the last failure's error (for callers such
  // as a TLS stack that only see that a signature failed).
  std::uint64_t failures() const override;
  std::optional<Error> last_failure() const override;

 private:
  TpmKeySigner() = default;
  struct State;
  // Opens `tcti`, resolves the key at `handle` and checks it is `public_key` (or, when that is
  // empty, fills it in).
  static Result<std::unique_ptr<State>> Connect(const std::string& tcti, std::uint32_t handle,
                                                ossl::PKey& public_key);
  std::unique_ptr<State> state_;  // null after the connection broke
  std::string tcti_;
  ossl::PKey public_key_;
  std::uint32_t handle_ = 0;
  std::uint64_t signatures_ = 0;
  std::uint64_t failures_ = 0;
  std::optional<Error> last_failure_;
  Result<Bytes> Remember(Result<Bytes> signature);  // with mutex_ held
  std::optional<bool> pss_salt_is_digest_length_;
  mutable std::mutex mutex_;
};

}  // namespace idevid
