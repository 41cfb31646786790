#include "core/tpm_keys.h"

#include <array>
#include <cstring>
#include <span>
#include <string>

#include <openssl/core_names.h>
#include <openssl/obj_mac.h>

#include <fmt/format.h>

#include "core/openssl_error.h"
#include "core/tpm_policy.h"
#include "core/tpm_types.h"
#include "core/tss_error.h"
#include "core/x509.h"

namespace idevid {
namespace {

constexpr TPMA_OBJECT kIdevidAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                          TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                          TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_SIGN_ENCRYPT;

// What distinguishes the device-identity templates of 7.3.4 from each other.
struct IdentityKeyProfile {
  TPMA_OBJECT attributes;
  std::span<const std::uint8_t> auth_policy;
  std::string_view unique;
  TPMI_ALG_RSA_SCHEME rsa_scheme;  // the ECC keys sign ECDSA-SHA256 in every template
};

template <typename Tpm2b>
void FillUnique(Tpm2b& field, std::string_view unique) {
  field.size = static_cast<UINT16>(unique.size());
  std::memcpy(field.buffer, unique.data(), unique.size());
}

// Template H-2 (ECC NIST P-256) or H-1 (RSA-2048), nameAlg SHA-256, shaped by `profile`.
TPM2B_PUBLIC IdentityKeyTemplate(KeyAlgorithm alg, const IdentityKeyProfile& profile) {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& area = t.publicArea;
  area.nameAlg = TPM2_ALG_SHA256;
  area.objectAttributes = profile.attributes;
  area.authPolicy.size = static_cast<UINT16>(profile.auth_policy.size());
  std::memcpy(area.authPolicy.buffer, profile.auth_policy.data(), profile.auth_policy.size());
  if (alg == KeyAlgorithm::kEccP256) {
    area.type = TPM2_ALG_ECC;
    area.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    area.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    area.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    area.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    area.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    FillUnique(area.unique.ecc.x, profile.unique);
    FillUnique(area.unique.ecc.y, profile.unique);
  } else {
    area.type = TPM2_ALG_RSA;
    area.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    area.parameters.rsaDetail.scheme.scheme = profile.rsa_scheme;
    if (profile.rsa_scheme != TPM2_ALG_NULL) {
      area.parameters.rsaDetail.scheme.details.anySig.hashAlg = TPM2_ALG_SHA256;
    }
    area.parameters.rsaDetail.keyBits = 2048;
    area.parameters.rsaDetail.exponent = 0;
    FillUnique(area.unique.rsa, profile.unique);
  }
  return t;
}

Result<ossl::PKey> EccPublicKey(const TPMT_PUBLIC& pub) {
  const char* group = nullptr;
  switch (pub.parameters.eccDetail.curveID) {
    case TPM2_ECC_NIST_P256: group = SN_X9_62_prime256v1; break;
    case TPM2_ECC_NIST_P384: group = SN_secp384r1; break;
    default:
      return UsageError(UsageCode::kUnsupported,
                        fmt::format("TPM ECC curve {:#x} is not supported (P-256 and P-384 are)",
                                    pub.parameters.eccDetail.curveID));
  }
  const TPMS_ECC_POINT& point = pub.unique.ecc;
  std::string encoded(1, '\x04');
  encoded.append(reinterpret_cast<const char*>(point.x.buffer), point.x.size);
  encoded.append(reinterpret_cast<const char*>(point.y.buffer), point.y.size);
  ossl::ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, encoded.data(), encoded.size()) !=
          1) {
    return FailOpenSsl("cannot prepare ECC key parameters");
  }
  return PublicKeyFromParams("EC", bld.get(), "the TPM's");
}

Result<ossl::PKey> RsaPublicKey(const TPMT_PUBLIC& pub) {
  ossl::Bignum n(BN_bin2bn(pub.unique.rsa.buffer, pub.unique.rsa.size, nullptr));
  UINT32 exponent = pub.parameters.rsaDetail.exponent == 0 ? 65537 : pub.parameters.rsaDetail.exponent;
  ossl::Bignum e(BN_new());
  ossl::ParamBld bld(OSSL_PARAM_BLD_new());
  if (!n || !e || !bld || BN_set_word(e.get(), exponent) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return FailOpenSsl("cannot prepare RSA key parameters");
  }
  return PublicKeyFromParams("RSA", bld.get(), "the TPM's");
}

}  // namespace

std::string_view KeyAlgorithmName(KeyAlgorithm alg) {
  return alg == KeyAlgorithm::kEccP256 ? "ecc-p256" : "rsa-2048";
}

Result<KeyAlgorithm> ParseKeyAlgorithm(std::string_view text) {
  if (text == "ecc-p256") return KeyAlgorithm::kEccP256;
  if (text == "rsa-2048") return KeyAlgorithm::kRsa2048;
  return UsageError(UsageCode::kInvalidArgument,
                    fmt::format("unknown key algorithm '{}': use ecc-p256 or rsa-2048", text));
}

TPM2B_PUBLIC IdevidKeyTemplate(KeyAlgorithm alg) {
  return IdentityKeyTemplate(alg, {.attributes = kIdevidAttributes,
                                   .auth_policy = IdentityAdminPolicy(),
                                   .unique = "IDEVID",
                                   .rsa_scheme = TPM2_ALG_NULL});
}

TPM2B_PUBLIC IakKeyTemplate(KeyAlgorithm alg) {
  return IdentityKeyTemplate(alg, {.attributes = kIdevidAttributes | TPMA_OBJECT_RESTRICTED,
                                   .auth_policy = IdentityAdminPolicy(),
                                   .unique = "IAK",
                                   .rsa_scheme = TPM2_ALG_RSASSA});
}

Result<PrimaryKey> CreatePrimary(const TpmContext& tpm, ESYS_TR hierarchy, const TPM2B_PUBLIC& key_template) {
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside_info{};
  TPML_PCR_SELECTION no_pcrs{};
  ESYS_TR handle = ESYS_TR_NONE;
  EsysBuffer<TPM2B_PUBLIC> out_public;
  EsysBuffer<TPM2B_CREATION_DATA> creation_data;
  EsysBuffer<TPM2B_DIGEST> creation_hash;
  EsysBuffer<TPMT_TK_CREATION> ticket;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_CreatePrimary(tpm.esys(), hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive,
                              &key_template, &outside_info, &no_pcrs, &handle, out_public.out(),
                              creation_data.out(), creation_hash.out(), ticket.out());
  });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, "TPM2_CreatePrimary failed");
  return PrimaryKey{TransientObject(tpm, handle), *out_public};
}

Result<void> PersistKey(const TpmContext& tpm, const TransientObject& object, TPM2_HANDLE persistent_handle) {
  ESYS_TR persisted = ESYS_TR_NONE;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_EvictControl(tpm.esys(), ESYS_TR_RH_OWNER, object.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE, persistent_handle, &persisted);
  });
  if (rc != TSS2_RC_SUCCESS) {
    return FailTss(rc, fmt::format("cannot persist the key at {:#010x}", persistent_handle));
  }
  EsysReference close_on_return(tpm, persisted);
  return {};
}

Result<void> UnpersistKey(const TpmContext& tpm, TPM2_HANDLE persistent_handle) {
  IDEVID_ASSIGN_OR_RETURN(auto key, ReferencePersistentKey(tpm, persistent_handle),
                          "cannot remove the persistent key");
  ESYS_TR gone = ESYS_TR_NONE;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_EvictControl(tpm.esys(), ESYS_TR_RH_OWNER, key.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE, persistent_handle, &gone);
  });
  if (rc != TSS2_RC_SUCCESS) {
    return FailTss(rc, fmt::format("cannot remove the key at {:#010x}", persistent_handle));
  }
  key.Reset();
  return {};
}

Result<TPM2B_PUBLIC> ReadPublic(const TpmContext& tpm, ESYS_TR object) {
  EsysBuffer<TPM2B_PUBLIC> pub;
  EsysBuffer<TPM2B_NAME> name;
  EsysBuffer<TPM2B_NAME> qualified;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_ReadPublic(tpm.esys(), object, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, pub.out(),
                           name.out(), qualified.out());
  });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, "TPM2_ReadPublic failed");
  return *pub;
}

Result<EsysReference> ReferencePersistentKey(const TpmContext& tpm, TPM2_HANDLE persistent_handle) {
  auto key = ReferenceTpmHandle(tpm, persistent_handle);
  if (!key && IsTpmRc(key.error(), TPM2_RC_HANDLE)) {
    return Fail(std::move(key).error().WithContext(fmt::format("no key at {:#010x}", persistent_handle)));
  }
  return key;
}

Result<TPM2B_PUBLIC> ReadPersistentPublic(const TpmContext& tpm, TPM2_HANDLE persistent_handle) {
  IDEVID_ASSIGN_OR_RETURN(auto key, ReferencePersistentKey(tpm, persistent_handle));
  return ReadPublic(tpm, key.handle());
}

Result<ossl::PKey> PublicKeyFromTpm(const TPMT_PUBLIC& pub) {
  if (pub.type == TPM2_ALG_ECC) return EccPublicKey(pub);
  if (pub.type == TPM2_ALG_RSA) return RsaPublicKey(pub);
  return UsageError(UsageCode::kUnsupported,
                    fmt::format("TPM key type {:#x} is neither ECC nor RSA", pub.type));
}

}  // namespace idevid
