#include "provisioning/provisioner.h"

#include <chrono>

#include <fmt/format.h>

#include "core/idevid_profile.h"
#include "core/tpm_nv.h"
#include "core/tpm_sign.h"
#include "core/tss_error.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "provisioning/ek_certificate.h"
#include "provisioning/unit_tpm.h"

namespace idevid {
namespace {

IdentitySlots SlotsOf(const ProvisionRequest& r) { return {{r.key_handle}, {r.nv_index}}; }

SignatureAlgorithm RequestSignature(KeyAlgorithm alg) {
  return {alg == KeyAlgorithm::kEccP256 ? SignatureScheme::kEcdsa : SignatureScheme::kRsaPkcs1,
          TPM2_ALG_SHA256};
}

// The key pair in the TPM: created, persisted, and its public key as OpenSSL sees it.
Result<ossl::PKey> CreateIdevidKey(const TpmContext& tpm, const ProvisionRequest& r) {
  IDEVID_ASSIGN_OR_RETURN(PrimaryKey key,
                          CreatePrimary(tpm, ESYS_TR_RH_ENDORSEMENT, IdevidKeyTemplate(r.algorithm)),
                          "creating the IDevID key");
  IDEVID_TRY(PersistKey(tpm, key.object, r.key_handle), "persisting the IDevID key");
  return PublicKeyFromTpm(key.public_area.publicArea);
}

// Proof of possession: the TPM signs a request for its own public key.
Result<ossl::UniquePtr<X509_REQ>> RequestFromTpm(const TpmContext& tpm, const ProvisionRequest& r,
                                                 const UnitIdentity& unit, EVP_PKEY& public_key) {
  IDEVID_ASSIGN_OR_RETURN(auto key, ReferencePersistentKey(tpm, r.key_handle), "proof of possession");
  auto sign = [&](std::span<const std::uint8_t> tbs) {
    return SignMessage(tpm, key.handle(), RequestSignature(r.algorithm), tbs);
  };
  return MakeSignedRequest(
      {{"O", unit.manufacturer}, {"CN", unit.model}, {std::string(kOidSubjectSerialNumber), unit.serial}},
      public_key, sign);
}

Result<UnitIdentity> IdentityFor(const ProvisionRequest& r, const Factory& factory, const X509& ek_cert) {
  IDEVID_ASSIGN_OR_RETURN(Bytes hw_serial, HardwareSerialFromEk(ek_cert), "hardwareModuleName");
  return UnitIdentity{r.serial, r.model, factory.manufacturer, std::move(hw_serial)};
}

// After the key is persisted: proof of possession, the certificate, NV. The caller removes
// the key again when this fails, so that no half-provisioned identity stays behind.
Result<void> IssueAndBurn(const TpmContext& tpm, const Factory& factory, const ProvisionRequest& request,
                          const UnitIdentity& unit, EVP_PKEY& public_key, std::uint32_t nv_index_max,
                          StepTimer& timer, ProvisionResult& result) {
  IDEVID_ASSIGN_OR_RETURN(auto csr, RequestFromTpm(tpm, request, unit, public_key));
  timer.Done("proof_of_possession");
  IDEVID_ASSIGN_OR_RETURN(CertificateSpec spec, IdevidCertificateSpec(unit));
  IDEVID_ASSIGN_OR_RETURN(
      ossl::Cert cert,
      IssueCertificate(spec, *X509_REQ_get0_pubkey(csr.get()), factory.issuing.get(), *factory.issuing_key),
      "cannot issue the IDevID certificate");
  timer.Done("issue_certificate");
  IDEVID_ASSIGN_OR_RETURN(Bytes der, CertificateDer(*cert), "the IDevID certificate");
  IDEVID_TRY(BurnCertificate(tpm, request.nv_index, der, nv_index_max),
             "cannot write the IDevID certificate");
  timer.Done("write_nv");
  IDEVID_ASSIGN_OR_RETURN(result.certificate_fingerprint, Sha256Fingerprint(*cert), "the IDevID certificate");
  result.certificate = std::move(cert);
  return {};
}

}  // namespace

Result<ProvisionResult> ProvisionUnit(const TpmContext& tpm, const Factory& factory,
                                      const ProvisionRequest& request) {
  IDEVID_TRY(ValidateIdentityField("serial number", request.serial));
  IDEVID_TRY(ValidateIdentityField("model", request.model));
  ProvisionResult result;
  StepTimer timer(result.timings_ms);
  IDEVID_ASSIGN_OR_RETURN(result.tpm, ReadTpmInfo(tpm));
  IDEVID_ASSIGN_OR_RETURN(std::vector<std::string> existing, ExistingIdentity(tpm, SlotsOf(request)));
  if (!existing.empty() && !request.force) {
    return UsageError(UsageCode::kWrongState, fmt::format("the TPM already holds an identity ({}); {}",
                                                          fmt::join(existing, "; "), request.when_held));
  }
  // Everything that can be checked is checked before the old identity is removed.
  IDEVID_ASSIGN_OR_RETURN(EkCertificate ek, RequireEkCertificate(tpm));
  result.ek_certificate_index = ek.index;
  IDEVID_ASSIGN_OR_RETURN(result.ek_certificate_fingerprint, Sha256Fingerprint(*ek.cert),
                          "the EK certificate in NV {:#010x}", ek.index);
  IDEVID_ASSIGN_OR_RETURN(UnitIdentity unit, IdentityFor(request, factory, *ek.cert));
  IDEVID_TRY(RemoveIdentity(tpm, SlotsOf(request)));
  result.replaced = std::move(existing);
  timer.Done("prepare");
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey public_key, CreateIdevidKey(tpm, request));
  timer.Done("create_key");
  if (auto done =
          IssueAndBurn(tpm, factory, request, unit, *public_key, result.tpm.nv_index_max, timer, result);
      !done) {
    (void)UnpersistKey(tpm, request.key_handle);
    return Fail(std::move(done).error());
  }
  return result;
}

}  // namespace idevid
