#include "core/tpm_key_signer.h"

#include <openssl/rsa.h>
#include <openssl/x509_vfy.h>

#include <fmt/format.h>

#include "core/openssl_error.h"
#include "core/tpm_context.h"
#include "core/tpm_keys.h"
#include "core/tpm_sign.h"
#include "core/tss_error.h"

namespace idevid {

struct TpmKeySigner::State {
  TpmContext tpm;
  EsysReference key;
};

namespace {

// The TPM hash for any of OpenSSL's names of it ("SHA256", "SHA2-256", "2.16.840.1.101.3.4.2.1").
Result<TPMI_ALG_HASH> HashByName(std::string_view name) {
  ossl::UniquePtr<EVP_MD> md(EVP_MD_fetch(nullptr, std::string(name).c_str(), nullptr));
  for (TPMI_ALG_HASH hash : {TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA512}) {
    if (md && EVP_MD_is_a(md.get(), std::string(DigestName(hash)).c_str())) return hash;
  }
  ClearOpenSslErrors();
  return UsageError(UsageCode::kUnsupported, fmt::format("the TPM signer does not sign {} digests", name));
}

SignatureScheme ToScheme(SignScheme s) {
  switch (s) {
    case SignScheme::kEcdsa: return SignatureScheme::kEcdsa;
    case SignScheme::kRsaPkcs1: return SignatureScheme::kRsaPkcs1;
    case SignScheme::kRsaPss: return SignatureScheme::kRsaPss;
  }
  return SignatureScheme::kEcdsa;
}

// A failure of the connection (TCTI, or ESYS/SYS/MU after one), not a TPM answer: the ESYS
// context is of no further use and the next signature reconnects.
bool ConnectionBroken(const Error& error) {
  return error.domain() == ErrorDomain::kTss && (error.code() & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER;
}

}  // namespace

TpmKeySigner::~TpmKeySigner() = default;

Result<std::unique_ptr<TpmKeySigner::State>> TpmKeySigner::Connect(const std::string& tcti,
                                                                   std::uint32_t handle,
                                                                   ossl::PKey& public_key) {
  // Named, not a designated-initializer temporary: GCC 12 at -O3 takes the temporary's
  // std::function for uninitialized (-Wmaybe-uninitialized).
  TpmOpenOptions options;
  options.command_timeout = std::chrono::seconds(30);
  IDEVID_ASSIGN_OR_RETURN(auto tpm, TpmContext::Open(tcti, std::move(options)));
  IDEVID_ASSIGN_OR_RETURN(auto key, ReferencePersistentKey(tpm, handle));
  IDEVID_ASSIGN_OR_RETURN(TPM2B_PUBLIC pub, ReadPublic(tpm, key.handle()), "cannot read the key at {:#010x}",
                          handle);
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey found, PublicKeyFromTpm(pub.publicArea), "the key at {:#010x}", handle);
  if (public_key && EVP_PKEY_eq(public_key.get(), found.get()) != 1) {
    ClearOpenSslErrors();
    return Fail(ErrorDomain::kVerify, X509_V_ERR_APPLICATION_VERIFICATION,
                fmt::format("the key at {:#010x} changed while the TPM was away", handle));
  }
  if (!public_key) public_key = std::move(found);  // never replaced: callers hold it unlocked
  return std::unique_ptr<State>(new State{std::move(tpm), std::move(key)});
}

Result<std::shared_ptr<TpmKeySigner>> TpmKeySigner::Open(const std::string& tcti, std::uint32_t handle) {
  std::shared_ptr<TpmKeySigner> signer(new TpmKeySigner());
  IDEVID_ASSIGN_OR_RETURN(signer->state_, Connect(tcti, handle, signer->public_key_));
  signer->tcti_ = tcti;
  signer->handle_ = handle;
  return signer;
}

Result<Bytes> TpmKeySigner::Sign(SignScheme scheme, std::string_view digest_name,
                                 std::span<const std::uint8_t> digest) {
  IDEVID_ASSIGN_OR_RETURN(TPMI_ALG_HASH hash, HashByName(digest_name));
  std::lock_guard lock(mutex_);
  if (!state_) {
    auto state = Connect(tcti_, handle_, public_key_);
    if (!state) return Remember(Fail(state.error().WithContext("reconnecting to the TPM")));
    state_ = std::move(*state);
  }
  auto signature = SignDigest(state_->tpm, state_->key.handle(), {ToScheme(scheme), hash}, digest);
  if (signature) ++signatures_;
  if (!signature && ConnectionBroken(signature.error())) state_.reset();
  return Remember(std::move(signature));
}

Result<Bytes> TpmKeySigner::Remember(Result<Bytes> signature) {
  if (!signature) {
    ++failures_;
    last_failure_ = signature.error();
  }
  return signature;
}

std::uint64_t TpmKeySigner::failures() const {
  std::lock_guard lock(mutex_);
  return failures_;
}

std::optional<Error> TpmKeySigner::last_failure() const {
  std::lock_guard lock(mutex_);
  return last_failure_;
}

Result<bool> TpmKeySigner::RsaPssSaltIsDigestLength() {
  if (!is_rsa()) return false;
  {
    std::lock_guard lock(mutex_);
    if (pss_salt_is_digest_length_) return *pss_salt_is_digest_length_;
  }
  Bytes digest(32, 0x5a);
  IDEVID_ASSIGN_OR_RETURN(Bytes signature, Sign(SignScheme::kRsaPss, "SHA256", digest),
                          "cannot learn the RSA-PSS salt length of the TPM key");
  ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, public_key_.get(), nullptr));
  bool ok = ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) == 1 &&
            EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) == 1 &&
            EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) == 1 &&
            EVP_PKEY_verify(ctx.get(), signature.data(), signature.size(), digest.data(), digest.size()) == 1;
  ClearOpenSslErrors();
  std::lock_guard lock(mutex_);
  pss_salt_is_digest_length_ = ok;
  return ok;
}

std::uint64_t TpmKeySigner::signatures() const {
  std::lock_guard lock(mutex_);
  return signatures_;
}

}  // namespace idevid
