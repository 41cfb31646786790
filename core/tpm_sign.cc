#include "core/tpm_sign.h"

#include <cstring>

#include <openssl/evp.h>

#include <fmt/format.h>

#include "core/openssl_error.h"
#include "core/openssl_ptr.h"
#include "core/tpm_types.h"
#include "core/tss_error.h"

namespace idevid {
namespace {

TPMT_SIG_SCHEME TpmScheme(SignatureAlgorithm algorithm) {
  TPMT_SIG_SCHEME scheme{};
  switch (algorithm.scheme) {
    case SignatureScheme::kEcdsa: scheme.scheme = TPM2_ALG_ECDSA; break;
    case SignatureScheme::kRsaPkcs1: scheme.scheme = TPM2_ALG_RSASSA; break;
    case SignatureScheme::kRsaPss: scheme.scheme = TPM2_ALG_RSAPSS; break;
  }
  scheme.details.any.hashAlg = algorithm.hash;
  return scheme;
}

}  // namespace

Result<std::vector<std::uint8_t>> EcdsaSignatureDer(const TPMS_SIGNATURE_ECC& ecc) {
  ossl::EcdsaSig sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(ecc.signatureR.buffer, ecc.signatureR.size, nullptr);
  BIGNUM* s = BN_bin2bn(ecc.signatureS.buffer, ecc.signatureS.size, nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return FailOpenSsl("cannot encode the TPM's ECDSA signature");
  }
  int length = i2d_ECDSA_SIG(sig.get(), nullptr);
  std::vector<std::uint8_t> der(static_cast<std::size_t>(std::max(length, 0)));
  unsigned char* out = der.data();
  if (length <= 0 || i2d_ECDSA_SIG(sig.get(), &out) != length) {
    return FailOpenSsl("cannot DER-encode the TPM's ECDSA signature");
  }
  return der;
}

std::size_t DigestSize(TPMI_ALG_HASH hash) {
  switch (hash) {
    case TPM2_ALG_SHA256: return 32;
    case TPM2_ALG_SHA384: return 48;
    case TPM2_ALG_SHA512: return 64;
    default: return 0;
  }
}

std::string_view DigestName(TPMI_ALG_HASH hash) {
  switch (hash) {
    case TPM2_ALG_SHA256: return "SHA256";
    case TPM2_ALG_SHA384: return "SHA384";
    case TPM2_ALG_SHA512: return "SHA512";
    default: return "";
  }
}

Result<TPMT_SIGNATURE> SignDigestAsTpm(const TpmContext& tpm, ESYS_TR key, SignatureAlgorithm algorithm,
                                       std::span<const std::uint8_t> digest) {
  std::size_t expected = DigestSize(algorithm.hash);
  if (expected == 0)
    return UsageError(UsageCode::kUnsupported, fmt::format("unsupported hash {:#x}", algorithm.hash));
  if (digest.size() != expected) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("a {} digest must be {} bytes, got {}", DigestName(algorithm.hash),
                                  expected, digest.size()));
  }
  TPM2B_DIGEST tpm_digest{};
  tpm_digest.size = static_cast<UINT16>(digest.size());
  std::memcpy(tpm_digest.buffer, digest.data(), digest.size());
  TPMT_SIG_SCHEME scheme = TpmScheme(algorithm);
  // An unrestricted key needs no hashcheck ticket: a NULL ticket (TPM 2.0 Part 3, 20.2).
  TPMT_TK_HASHCHECK ticket{TPM2_ST_HASHCHECK, TPM2_RH_NULL, {}};
  EsysBuffer<TPMT_SIGNATURE> signature;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_Sign(tpm.esys(), key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &tpm_digest, &scheme,
                     &ticket, signature.out());
  });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, "TPM2_Sign failed");
  return *signature;
}

Result<std::vector<std::uint8_t>> SignDigest(const TpmContext& tpm, ESYS_TR key, SignatureAlgorithm algorithm,
                                             std::span<const std::uint8_t> digest) {
  IDEVID_ASSIGN_OR_RETURN(TPMT_SIGNATURE signature, SignDigestAsTpm(tpm, key, algorithm, digest));
  switch (signature.sigAlg) {
    case TPM2_ALG_ECDSA: return EcdsaSignatureDer(signature.signature.ecdsa);
    case TPM2_ALG_RSASSA:
    case TPM2_ALG_RSAPSS: {
      const TPM2B_PUBLIC_KEY_RSA& rsa = signature.signature.rsassa.sig;
      return std::vector<std::uint8_t>(rsa.buffer, rsa.buffer + rsa.size);
    }
    default:
      return UsageError(UsageCode::kUnsupported,
                        fmt::format("the TPM returned signature algorithm {:#x}", signature.sigAlg));
  }
}

Result<std::vector<std::uint8_t>> HashMessage(TPMI_ALG_HASH hash, std::span<const std::uint8_t> message) {
  std::string_view name = DigestName(hash);
  if (name.empty()) return UsageError(UsageCode::kUnsupported, fmt::format("unsupported hash {:#x}", hash));
  std::vector<std::uint8_t> digest(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (EVP_Digest(message.data(), message.size(), digest.data(), &length,
                 EVP_get_digestbyname(std::string(name).c_str()), nullptr) != 1) {
    return FailOpenSsl("cannot hash the message to sign");
  }
  digest.resize(length);
  return digest;
}

Result<std::vector<std::uint8_t>> SignMessage(const TpmContext& tpm, ESYS_TR key,
                                              SignatureAlgorithm algorithm,
                                              std::span<const std::uint8_t> message) {
  IDEVID_ASSIGN_OR_RETURN(auto digest, HashMessage(algorithm.hash, message));
  return SignDigest(tpm, key, algorithm, digest);
}

}  // namespace idevid
