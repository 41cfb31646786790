#include "core/tpm_wire.h"

#include <algorithm>
#include <array>
#include <string>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <tss2/tss2_mu.h>

#include <fmt/format.h>

#include "core/openssl_error.h"
#include "core/tpm_keys.h"
#include "core/tpm_sign.h"

namespace idevid {
namespace {

// Room for any marshalled structure of this header: a marshalled form is never larger than the
// C structure, whose unions and arrays already have their maximum sizes.
template <typename T>
constexpr std::size_t kMarshalRoom = sizeof(T);

template <typename T>
using MarshalFn = TSS2_RC (*)(const T*, std::uint8_t*, std::size_t, std::size_t*);
template <typename T>
using UnmarshalFn = TSS2_RC (*)(const std::uint8_t*, std::size_t, std::size_t*, T*);

template <typename T>
Bytes MarshalWith(MarshalFn<T> marshal, const T& value) {
  Bytes out(kMarshalRoom<T>);
  std::size_t offset = 0;
  if (marshal(&value, out.data(), out.size(), &offset) != TSS2_RC_SUCCESS) return {};
  out.resize(offset);
  return out;
}

// Unmarshals exactly `bytes` as a `what` (hostile input: the MU library checks every length).
template <typename T>
Result<T> UnmarshalExactly(UnmarshalFn<T> unmarshal, std::span<const std::uint8_t> bytes,
                           std::string_view what) {
  T value{};
  std::size_t offset = 0;
  if (bytes.empty()) return ConfigError(ConfigCode::kSyntax, fmt::format("0 bytes are not a {}", what));
  TSS2_RC rc = unmarshal(bytes.data(), bytes.size(), &offset, &value);
  if (rc != TSS2_RC_SUCCESS) {
    return ConfigError(
        ConfigCode::kSyntax,
        fmt::format("{} bytes are not a {} (the TSS MU library answered {:#x})", bytes.size(), what, rc));
  }
  if (offset != bytes.size()) {
    return ConfigError(ConfigCode::kSyntax, fmt::format("{} bytes left over after the {} of {} bytes",
                                                        bytes.size() - offset, what, offset));
  }
  return value;
}

void AppendBe16(Bytes& out, std::size_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value));
}

void Append(Bytes& out, std::span<const std::uint8_t> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

tl::unexpected<Error> SignatureFailure(std::string_view why) {
  return Fail(ErrorDomain::kVerify, X509_V_ERR_CERT_SIGNATURE_FAILURE,
              fmt::format("the TPM signature does not verify: {}", why));
}

// What OpenSSL verifies for a TPMT_SIGNATURE: the hash, the signature bytes and the RSA padding.
struct OpenSslSignature {
  TPMI_ALG_HASH hash = TPM2_ALG_NULL;
  Bytes bytes;
  int rsa_padding = 0;  // 0 for ECDSA
};

Result<OpenSslSignature> ForOpenSsl(const EVP_PKEY& key, const TPMT_SIGNATURE& signature) {
  const int key_type = EVP_PKEY_get_base_id(&key);
  switch (signature.sigAlg) {
    case TPM2_ALG_ECDSA: {
      if (key_type != EVP_PKEY_EC) return SignatureFailure("an ECDSA signature by a key that is not ECC");
      IDEVID_ASSIGN_OR_RETURN(Bytes der, EcdsaSignatureDer(signature.signature.ecdsa));
      return OpenSslSignature{signature.signature.ecdsa.hash, std::move(der), 0};
    }
    case TPM2_ALG_RSASSA:
    case TPM2_ALG_RSAPSS: {
      if (key_type != EVP_PKEY_RSA && key_type != EVP_PKEY_RSA_PSS) {
        return SignatureFailure("an RSA signature by a key that is not RSA");
      }
      // TPMS_SIGNATURE_RSASSA and _RSAPSS have the same layout (Part 2 §11.3.1).
      const TPMS_SIGNATURE_RSA& rsa = signature.signature.rsassa;
      return OpenSslSignature{
          rsa.hash, Bytes(rsa.sig.buffer, rsa.sig.buffer + rsa.sig.size),
          signature.sigAlg == TPM2_ALG_RSASSA ? RSA_PKCS1_PADDING : RSA_PKCS1_PSS_PADDING};
    }
    default:
      return UsageError(
          UsageCode::kUnsupported,
          fmt::format("TPM signature algorithm {:#x} is none of ECDSA, RSASSA, RSAPSS", signature.sigAlg));
  }
}

// RSA-OAEP (SHA-256, MGF1-SHA-256) of `seed` to `ek` with the label "IDENTITY" and its NUL
// (Part 1 §B.10.3, §24.4: the label of a credential's seed).
Result<Bytes> OaepToEk(const EVP_PKEY& ek, std::span<const std::uint8_t> seed) {
  static constexpr char kLabel[] = "IDENTITY";  // sizeof includes the NUL
  // OpenSSL 3.0 takes a non-const key here but does not change it.
  ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, const_cast<EVP_PKEY*>(&ek), nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) != 1) {
    return FailOpenSsl("cannot prepare RSA-OAEP to the EK");
  }
  void* label = OPENSSL_memdup(kLabel, sizeof(kLabel));
  if (label == nullptr || EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), label, sizeof(kLabel)) <= 0) {
    OPENSSL_free(label);
    return FailOpenSsl("cannot set the OAEP label IDENTITY");
  }  // the context owns the label now
  std::size_t length = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &length, seed.data(), seed.size()) != 1) {
    return FailOpenSsl("cannot size the RSA-OAEP ciphertext");
  }
  Bytes out(length);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &length, seed.data(), seed.size()) != 1) {
    return FailOpenSsl("cannot encrypt the credential seed to the EK");
  }
  out.resize(length);
  return out;
}

// AES-128-CFB with a zero IV (Part 1 §24.4: the credential's symmetric protection).
Result<Bytes> Aes128CfbEncrypt(std::span<const std::uint8_t> key, std::span<const std::uint8_t> plain) {
  std::array<std::uint8_t, 16> iv{};
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  Bytes out(plain.size() + 16);
  int length = 0;
  int final_length = 0;
  if (!ctx || key.size() != 16 ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_cfb128(), nullptr, key.data(), iv.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data(), &length, plain.data(), static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + length, &final_length) != 1) {
    return FailOpenSsl("cannot encrypt the credential with AES-128-CFB");
  }
  out.resize(static_cast<std::size_t>(length + final_length));
  return out;
}

Result<Bytes> HmacSha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  Bytes out(32);
  std::size_t length = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(), data.data(), data.size(),
                out.data(), out.size(), &length) == nullptr) {
    return FailOpenSsl("cannot compute the credential's HMAC-SHA256");
  }
  out.resize(length);
  return out;
}

}  // namespace

Bytes MarshalPublic(const TPMT_PUBLIC& pub) {
  return MarshalWith<TPMT_PUBLIC>(Tss2_MU_TPMT_PUBLIC_Marshal, pub);
}
Bytes MarshalAttest(const TPMS_ATTEST& attest) {
  return MarshalWith<TPMS_ATTEST>(Tss2_MU_TPMS_ATTEST_Marshal, attest);
}
Bytes MarshalSignature(const TPMT_SIGNATURE& signature) {
  return MarshalWith<TPMT_SIGNATURE>(Tss2_MU_TPMT_SIGNATURE_Marshal, signature);
}

Result<TPMT_PUBLIC> UnmarshalPublic(std::span<const std::uint8_t> bytes) {
  return UnmarshalExactly<TPMT_PUBLIC>(Tss2_MU_TPMT_PUBLIC_Unmarshal, bytes, "TPMT_PUBLIC");
}
Result<TPMS_ATTEST> UnmarshalAttest(std::span<const std::uint8_t> bytes) {
  return UnmarshalExactly<TPMS_ATTEST>(Tss2_MU_TPMS_ATTEST_Unmarshal, bytes, "TPMS_ATTEST");
}
Result<TPMT_SIGNATURE> UnmarshalSignature(std::span<const std::uint8_t> bytes) {
  return UnmarshalExactly<TPMT_SIGNATURE>(Tss2_MU_TPMT_SIGNATURE_Unmarshal, bytes, "TPMT_SIGNATURE");
}

Result<Bytes> ObjectName(const TPMT_PUBLIC& pub) {
  std::string md_name(DigestName(pub.nameAlg));
  if (md_name.empty()) {
    return UsageError(UsageCode::kUnsupported,
                      fmt::format("name algorithm {:#x} is none of SHA-256, SHA-384, SHA-512", pub.nameAlg));
  }
  Bytes marshalled = MarshalPublic(pub);
  if (marshalled.empty()) {
    return UsageError(UsageCode::kInvalidArgument,
                      "the public area does not marshal (an undefined selector)");
  }
  Bytes name;
  AppendBe16(name, pub.nameAlg);
  std::array<std::uint8_t, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(marshalled.data(), marshalled.size(), digest.data(), &length,
                 EVP_get_digestbyname(md_name.c_str()), nullptr) != 1) {
    return FailOpenSsl("cannot hash the public area for its name");
  }
  name.insert(name.end(), digest.begin(), digest.begin() + length);
  return name;
}

Result<void> VerifyTpmSignature(const TPMT_PUBLIC& pub, std::span<const std::uint8_t> message,
                                const TPMT_SIGNATURE& signature) {
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey key, PublicKeyFromTpm(pub), "cannot verify with the TPM key");
  return VerifyTpmSignature(*key, message, signature);
}

Result<void> VerifyTpmSignature(const EVP_PKEY& key, std::span<const std::uint8_t> message,
                                const TPMT_SIGNATURE& signature) {
  IDEVID_ASSIGN_OR_RETURN(OpenSslSignature sig, ForOpenSsl(key, signature));
  std::string md_name(DigestName(sig.hash));
  if (md_name.empty()) {
    return UsageError(UsageCode::kUnsupported,
                      fmt::format("signature hash {:#x} is not supported", sig.hash));
  }
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  // OpenSSL 3.0 takes a non-const key here but does not change it.
  EVP_PKEY* verifier = const_cast<EVP_PKEY*>(&key);
  if (!ctx ||
      EVP_DigestVerifyInit_ex(ctx.get(), &pctx, md_name.c_str(), nullptr, nullptr, verifier, nullptr) != 1 ||
      (sig.rsa_padding != 0 && EVP_PKEY_CTX_set_rsa_padding(pctx, sig.rsa_padding) != 1) ||
      (sig.rsa_padding == RSA_PKCS1_PSS_PADDING &&
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)) {
    return FailOpenSsl("cannot prepare the TPM signature's verification");
  }
  if (EVP_DigestVerify(ctx.get(), sig.bytes.data(), sig.bytes.size(), message.data(), message.size()) != 1) {
    ClearOpenSslErrors();
    return SignatureFailure(
        fmt::format("not a {} signature over these {} bytes by this key", md_name, message.size()));
  }
  return {};
}

Result<Bytes> KdfA(TPMI_ALG_HASH hash, std::span<const std::uint8_t> key, std::string_view label,
                   std::span<const std::uint8_t> context_u, std::span<const std::uint8_t> context_v,
                   std::size_t bits) {
  std::string md_name(DigestName(hash));
  if (md_name.empty()) return UsageError(UsageCode::kUnsupported, fmt::format("KDFa with hash {:#x}", hash));
  if (bits == 0 || bits % 8 != 0) {
    return UsageError(UsageCode::kInvalidArgument, fmt::format("KDFa of {} bits: not whole bytes", bits));
  }
  // SP 800-108 counter mode as OpenSSL's KBKDF builds it: [i]32 || salt || 0x00 || info || [L]32,
  // which is KDFa's [i]32 || label || 0x00 || contextU || contextV || [bits]32.
  Bytes context(context_u.begin(), context_u.end());
  Append(context, context_v);
  std::string label_text(label);
  ossl::UniquePtr<EVP_KDF> kdf(EVP_KDF_fetch(nullptr, "KBKDF", nullptr));
  ossl::UniquePtr<EVP_KDF_CTX> ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
  std::vector<OSSL_PARAM> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, const_cast<char*>("counter"), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, const_cast<char*>("HMAC"), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, md_name.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(key.data()),
                                        key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, label_text.data(), label_text.size()),
  };
  if (!context.empty()) {
    params.push_back(OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, context.data(), context.size()));
  }
  params.push_back(OSSL_PARAM_construct_end());
  Bytes out(bits / 8);
  if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), out.size(), params.data()) != 1) {
    return FailOpenSsl(fmt::format("cannot derive KDFa {} with {}", label, md_name));
  }
  return out;
}

Result<Credential> MakeCredential(const EVP_PKEY& ek, std::span<const std::uint8_t> name,
                                  std::span<const std::uint8_t> secret) {
  if (EVP_PKEY_get_base_id(&ek) != EVP_PKEY_RSA || EVP_PKEY_get_bits(&ek) != 2048) {
    return UsageError(
        UsageCode::kUnsupported,
        fmt::format("MakeCredential takes an RSA-2048 EK, not a {}-bit {} key", EVP_PKEY_get_bits(&ek),
                    EVP_PKEY_get0_type_name(&ek) ? EVP_PKEY_get0_type_name(&ek) : "unknown"));
  }
  if (secret.size() > sizeof(TPMU_HA)) {
    return UsageError(UsageCode::kInvalidArgument, fmt::format("a credential holds at most {} bytes, not {}",
                                                               sizeof(TPMU_HA), secret.size()));
  }
  if (name.size() > sizeof(TPMU_NAME)) {
    return UsageError(UsageCode::kInvalidArgument, fmt::format("an object name of {} bytes", name.size()));
  }
  // Part 1 §24: the seed has the size of the EK's nameAlg digest (SHA-256).
  Bytes seed(32);
  if (RAND_bytes(seed.data(), static_cast<int>(seed.size())) != 1) return FailOpenSsl("cannot draw the seed");
  IDEVID_ASSIGN_OR_RETURN(Bytes encrypted_seed, OaepToEk(ek, seed));
  // §24.4: symKey = KDFa(nameAlg, seed, "STORAGE", name, NULL, 128) protects the TPM2B_DIGEST.
  IDEVID_ASSIGN_OR_RETURN(Bytes sym_key, KdfA(TPM2_ALG_SHA256, seed, "STORAGE", name, {}, 128));
  Bytes plain;
  AppendBe16(plain, secret.size());
  Append(plain, secret);
  IDEVID_ASSIGN_OR_RETURN(Bytes enc_identity, Aes128CfbEncrypt(sym_key, plain));
  // §24.5: HMACkey = KDFa(nameAlg, seed, "INTEGRITY", NULL, NULL, 256);
  // outerHMAC = HMAC(HMACkey, encIdentity || name).
  IDEVID_ASSIGN_OR_RETURN(Bytes hmac_key, KdfA(TPM2_ALG_SHA256, seed, "INTEGRITY", {}, {}, 256));
  Bytes mac_input = enc_identity;
  Append(mac_input, name);
  IDEVID_ASSIGN_OR_RETURN(Bytes integrity, HmacSha256(hmac_key, mac_input));
  Credential credential;
  AppendBe16(credential.blob, integrity.size());
  Append(credential.blob, integrity);
  Append(credential.blob, enc_identity);
  credential.encrypted_secret = std::move(encrypted_seed);
  return credential;
}

}  // namespace idevid
