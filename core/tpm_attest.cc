#include "core/tpm_attest.h"

#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "core/tpm_policy.h"
#include "core/tpm_types.h"
#include "core/tss_error.h"

namespace idevid {
namespace {

// TCG EK Credential Profile 2.3 §B.3.2: policy A, TPM2_PolicySecret(TPM_RH_ENDORSEMENT), SHA-256.
constexpr std::array<std::uint8_t, 32> kEkPolicyASha256 = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
    0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA};

// A policy session that satisfies the EK's policy A: TPM2_PolicySecret on the endorsement
// hierarchy, authorized with its auth value (set on the context when one is configured).
Result<TransientObject> EkPolicySession(const TpmContext& tpm) {
  IDEVID_ASSIGN_OR_RETURN(TransientObject session, StartPolicySession(tpm, "the EK"));
  TPM2B_NONCE nonce_tpm{};
  TPM2B_DIGEST cp_hash{};
  TPM2B_NONCE policy_ref{};
  EsysBuffer<TPM2B_TIMEOUT> timeout;
  EsysBuffer<TPMT_TK_AUTH> ticket;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_PolicySecret(tpm.esys(), ESYS_TR_RH_ENDORSEMENT, session.handle(), ESYS_TR_PASSWORD,
                             ESYS_TR_NONE, ESYS_TR_NONE, &nonce_tpm, &cp_hash, &policy_ref, 0, timeout.out(),
                             ticket.out());
  });
  if (rc != TSS2_RC_SUCCESS) {
    return FailTss(rc, "TPM2_PolicySecret on the endorsement hierarchy failed (its authorization?)");
  }
  return session;
}

// How `object` is authorized in its ADMIN role for `command`: a policy session when it carries our
// device-identity admin policy (core/tpm_policy.h), else its empty password.
class AdminAuth {
 public:
  explicit AdminAuth(std::optional<TransientObject> session) : session_(std::move(session)) {}
  ESYS_TR handle() const { return session_ ? session_->handle() : ESYS_TR_PASSWORD; }

 private:
  std::optional<TransientObject> session_;
};

Result<AdminAuth> AdminAuthorization(const TpmContext& tpm, ESYS_TR object, TPM2_CC command) {
  IDEVID_ASSIGN_OR_RETURN(TPM2B_PUBLIC pub, ReadPublic(tpm, object), "reading the object's policy");
  if (!TakesIdentityAdminSession(pub.publicArea)) return AdminAuth(std::nullopt);
  IDEVID_ASSIGN_OR_RETURN(TransientObject session, IdentityAdminSession(tpm, command));
  return AdminAuth(std::move(session));
}

// "<command> failed", with the reason for TPM_RC_AUTH_TYPE: the object's ADMIN role (Part 1
// §19.7.7) takes only a policy session when it has adminWithPolicy, as the TCG IDevID and IAK
// templates do, and these commands authorize it with its (empty) password.
std::string WhatFailed(std::string_view command, TSS2_RC rc, std::string_view object) {
  if (BaseTpmRc(rc) != TPM2_RC_AUTH_TYPE) return fmt::format("{} failed", command);
  return fmt::format(
      "{} failed: the {} has adminWithPolicy with a policy other than ours, so its ADMIN role needs a "
      "policy session satisfying that authPolicy",
      command, object);
}

}  // namespace

TPMT_SIG_SCHEME SigningScheme(const TPMT_PUBLIC& signer) {
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;
  TPMI_ALG_ASYM_SCHEME own = TPM2_ALG_NULL;
  if (signer.type == TPM2_ALG_RSA) own = signer.parameters.rsaDetail.scheme.scheme;
  if (signer.type == TPM2_ALG_ECC) own = signer.parameters.eccDetail.scheme.scheme;
  if (own != TPM2_ALG_NULL) return scheme;
  if (signer.type == TPM2_ALG_RSA) scheme.scheme = TPM2_ALG_RSASSA;
  if (signer.type == TPM2_ALG_ECC) scheme.scheme = TPM2_ALG_ECDSA;
  scheme.details.any.hashAlg = TPM2_ALG_SHA256;
  return scheme;
}

Result<TPM2B_DATA> QualifyingData(std::span<const std::uint8_t> qualifying_data, std::string_view command) {
  TPM2B_DATA extra{};
  if (qualifying_data.size() > sizeof(extra.buffer)) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("qualifying data of {} bytes: {} takes at most {}", qualifying_data.size(),
                                  command, sizeof(extra.buffer)));
  }
  extra.size = static_cast<UINT16>(qualifying_data.size());
  std::copy(qualifying_data.begin(), qualifying_data.end(), extra.buffer);
  return extra;
}

Result<Attestation> AttestationOf(const TPM2B_ATTEST& attest, const TPMT_SIGNATURE& signature) {
  Bytes signature_bytes = MarshalSignature(signature);
  if (signature_bytes.empty()) {
    return UsageError(
        UsageCode::kUnsupported,
        fmt::format("the TPM signed with algorithm {:#x}, which does not marshal", signature.sigAlg));
  }
  return Attestation{Bytes(attest.attestationData, attest.attestationData + attest.size),
                     std::move(signature_bytes)};
}

Result<Attestation> Certify(const TpmContext& tpm, ESYS_TR object, ESYS_TR signer,
                            std::span<const std::uint8_t> qualifying_data) {
  IDEVID_ASSIGN_OR_RETURN(TPM2B_DATA extra, QualifyingData(qualifying_data, "TPM2_Certify"));
  IDEVID_ASSIGN_OR_RETURN(TPM2B_PUBLIC signer_public, ReadPublic(tpm, signer),
                          "cannot learn the certifying key's scheme");
  TPMT_SIG_SCHEME scheme = SigningScheme(signer_public.publicArea);
  IDEVID_ASSIGN_OR_RETURN(auto admin, AdminAuthorization(tpm, object, TPM2_CC_Certify), "TPM2_Certify");
  EsysBuffer<TPM2B_ATTEST> attest;
  EsysBuffer<TPMT_SIGNATURE> signature;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_Certify(tpm.esys(), object, signer, admin.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE, &extra,
                        &scheme, attest.out(), signature.out());
  });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, WhatFailed("TPM2_Certify", rc, "certified object"));
  return AttestationOf(*attest, *signature);
}

TPM2B_PUBLIC EkRsaTemplate() {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& area = t.publicArea;
  area.type = TPM2_ALG_RSA;
  area.nameAlg = TPM2_ALG_SHA256;
  area.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                          TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  area.authPolicy.size = kEkPolicyASha256.size();
  std::memcpy(area.authPolicy.buffer, kEkPolicyASha256.data(), kEkPolicyASha256.size());
  TPMS_RSA_PARMS& rsa = area.parameters.rsaDetail;
  rsa.symmetric.algorithm = TPM2_ALG_AES;
  rsa.symmetric.keyBits.aes = 128;
  rsa.symmetric.mode.aes = TPM2_ALG_CFB;
  rsa.scheme.scheme = TPM2_ALG_NULL;
  rsa.keyBits = 2048;
  rsa.exponent = 0;
  area.unique.rsa.size = 256;  // 256 zero bytes (template L-1)
  return t;
}

Result<PrimaryKey> CreateEk(const TpmContext& tpm) {
  IDEVID_ASSIGN_OR_RETURN(PrimaryKey ek, CreatePrimary(tpm, ESYS_TR_RH_ENDORSEMENT, EkRsaTemplate()),
                          "cannot create the RSA EK (template L-1)");
  return ek;
}

Result<Bytes> ActivateCredential(const TpmContext& tpm, ESYS_TR object, ESYS_TR ek,
                                 const Credential& credential) {
  TPM2B_ID_OBJECT blob{};
  TPM2B_ENCRYPTED_SECRET secret{};
  if (credential.blob.size() > sizeof(blob.credential) ||
      credential.encrypted_secret.size() > sizeof(secret.secret)) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("a credential of {} and {} bytes does not fit TPM2_ActivateCredential",
                                  credential.blob.size(), credential.encrypted_secret.size()));
  }
  blob.size = static_cast<UINT16>(credential.blob.size());
  std::copy(credential.blob.begin(), credential.blob.end(), blob.credential);
  secret.size = static_cast<UINT16>(credential.encrypted_secret.size());
  std::copy(credential.encrypted_secret.begin(), credential.encrypted_secret.end(), secret.secret);
  IDEVID_ASSIGN_OR_RETURN(auto admin, AdminAuthorization(tpm, object, TPM2_CC_ActivateCredential),
                          "TPM2_ActivateCredential");
  IDEVID_ASSIGN_OR_RETURN(TransientObject session, EkPolicySession(tpm), "cannot authorize the EK");
  EsysBuffer<TPM2B_DIGEST> cert_info;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_ActivateCredential(tpm.esys(), object, ek, admin.handle(), session.handle(), ESYS_TR_NONE,
                                   &blob, &secret, cert_info.out());
  });
  if (rc != TSS2_RC_SUCCESS) {
    return FailTss(rc, WhatFailed("TPM2_ActivateCredential", rc, "object the credential is for"));
  }
  return Bytes(cert_info->buffer, cert_info->buffer + cert_info->size);
}

}  // namespace idevid
