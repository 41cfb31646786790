#include "provisioning/enrolment_station.h"

#include <fmt/format.h>

#include "core/idevid_profile.h"
#include "core/tpm_attest.h"
#include "core/tpm_capability.h"
#include "core/tpm_sign.h"
#include "core/tpm_wire.h"
#include "core/tss_error.h"
#include "provisioning/station_fault.h"
#include "provisioning/tcg_csr.h"
#include "provisioning/unit_tpm.h"

namespace idevid {
namespace {

IdentitySlots SlotsOf(const EnrolRequest& r) {
  return {{r.idevid_handle, r.iak_handle}, {r.idevid_nv_index, r.iak_nv_index}};
}

Result<TPMT_PUBLIC> CreateAndPersist(const TpmContext& tpm, const TPM2B_PUBLIC& key_template,
                                     TpmHandle handle, std::string_view what) {
  IDEVID_ASSIGN_OR_RETURN(PrimaryKey key, CreatePrimary(tpm, ESYS_TR_RH_ENDORSEMENT, key_template),
                          "creating the {}", what);
  IDEVID_TRY(PersistKey(tpm, key.object, handle), "persisting the {} at {:#010x}", what, handle);
  return key.public_area.publicArea;
}

SignatureAlgorithm RequestSignature(const TPMT_PUBLIC& key) {
  return {key.type == TPM2_ALG_ECC ? SignatureScheme::kEcdsa : SignatureScheme::kRsaPkcs1, TPM2_ALG_SHA256};
}

// TPM2_ActivateCredential's answers for a credential made for another EK or another key (Part 3
// §12.5: INTEGRITY, VALUE; libtpms answers FAILURE for a seed its EK cannot decrypt). Any other
// error (an endorsement password, lockout, no memory) is the station's own trouble.
bool CannotOpen(const Error& error) {
  if (!IsTpmAnswer(error)) return false;
  TSS2_RC rc = BaseTpmRc(static_cast<TSS2_RC>(error.code()));
  return rc == TPM2_RC_INTEGRITY || rc == TPM2_RC_VALUE || rc == TPM2_RC_FAILURE;
}

// The station's answer: what TPM2_ActivateCredential gave, or nothing (a wrong answer the
// authority refuses) when this TPM cannot open the credential; `why` then holds the TPM's error.
Result<Bytes> AnswerOrNothing(const TpmContext& tpm, const EnrolRequest& r, const Credential& credential,
                              std::string& why) {
  auto secret = AnswerCredential(tpm, r.iak_handle, credential);
  if (secret || !CannotOpen(secret.error())) return secret;
  why = secret.error().message();
  return Bytes{};
}

Result<void> BurnBoth(const TpmContext& tpm, const EnrolRequest& r, EnrolResult& result,
                      const EnrolmentCertificates& certificates, std::uint32_t nv_index_max) {
  IDEVID_ASSIGN_OR_RETURN(result.idevid_certificate, ParseCertificate(certificates.idevid_certificate),
                          "the IDevID certificate the authority issued");
  IDEVID_ASSIGN_OR_RETURN(result.iak_certificate, ParseCertificate(certificates.iak_certificate),
                          "the IAK certificate the authority issued");
  IDEVID_TRY(BurnCertificate(tpm, r.idevid_nv_index, certificates.idevid_certificate, nv_index_max),
             "cannot write the IDevID certificate");
  IDEVID_TRY(BurnCertificate(tpm, r.iak_nv_index, certificates.iak_certificate, nv_index_max),
             "cannot write the IAK certificate");
  return {};
}

// Every step after the keys exist; a refusal ends it early with `result.refusal` set.
Result<void> Exchange(const TpmContext& tpm, EnrolmentChannel& authority, const EnrolmentSession& session,
                      const EnrolRequest& r, const EkCertificate& ek, std::uint32_t nv_index_max,
                      StepTimer& timer, EnrolResult& result) {
  auto refuse = [&](const EnrolmentRefusal& refusal) {
    result.refusal = refusal;
    return Result<void>{};
  };
  IDEVID_TRY(CreateUnitKeys(tpm, r));
  timer.Done("create_keys");
  IDEVID_ASSIGN_OR_RETURN(Bytes ek_der, CertificateDer(*ek.cert), "the EK certificate");
  IDEVID_ASSIGN_OR_RETURN(Bytes csr, MakeEnrolmentRequest(tpm, r, ek_der, session.nonce));
  timer.Done("request");
  IDEVID_ASSIGN_OR_RETURN(auto challenged, authority.Submit(session.id, csr), "submitting the request");
  if (auto* refused = std::get_if<EnrolmentRefusal>(&challenged)) return refuse(*refused);
  std::string tpm_said;
  IDEVID_ASSIGN_OR_RETURN(Bytes secret, AnswerOrNothing(tpm, r, std::get<Credential>(challenged), tpm_said),
                          "TPM2_ActivateCredential with the EK");
  timer.Done("activate_credential");
  IDEVID_ASSIGN_OR_RETURN(auto issued, authority.Activate(session.id, secret), "answering the credential");
  if (auto* refused = std::get_if<EnrolmentRefusal>(&issued)) {
    if (!tpm_said.empty()) refused->detail += " (this TPM could not open the credential: " + tpm_said + ")";
    return refuse(*refused);
  }
  timer.Done("issue_certificates");
  DieHereIfAsked(station_fault::kIssued);
  IDEVID_TRY(BurnBoth(tpm, r, result, std::get<EnrolmentCertificates>(issued), nv_index_max));
  timer.Done("write_nv");
  DieHereIfAsked(station_fault::kWritten);
  return {};
}

}  // namespace

Result<void> CreateUnitKeys(const TpmContext& tpm, const EnrolRequest& r) {
  IDEVID_TRY(CreateAndPersist(tpm, IakKeyTemplate(r.algorithm), r.iak_handle, "IAK"));
  IDEVID_TRY(CreateAndPersist(tpm, IdevidKeyTemplate(r.algorithm), r.idevid_handle, "IDevID key"));
  return {};
}

Result<Bytes> MakeEnrolmentRequest(const TpmContext& tpm, const EnrolRequest& r, const Bytes& ek_der,
                                   std::span<const std::uint8_t> nonce) {
  IDEVID_ASSIGN_OR_RETURN(TPM2B_PUBLIC iak_public, ReadPersistentPublic(tpm, r.iak_handle), "the IAK");
  IDEVID_ASSIGN_OR_RETURN(TPM2B_PUBLIC idevid_public, ReadPersistentPublic(tpm, r.idevid_handle),
                          "the IDevID");
  IDEVID_ASSIGN_OR_RETURN(auto iak, ReferencePersistentKey(tpm, r.iak_handle), "certifying the IDevID");
  IDEVID_ASSIGN_OR_RETURN(auto idevid, ReferencePersistentKey(tpm, r.idevid_handle), "certifying the IDevID");
  IDEVID_ASSIGN_OR_RETURN(Attestation certify, Certify(tpm, idevid.handle(), iak.handle(), nonce),
                          "TPM2_Certify of the IDevID by the IAK");
  TcgCsrContent content{.product_model = r.model,
                        .product_serial = r.serial,
                        .ek_certificate = ek_der,
                        .iak_public = MarshalPublic(iak_public.publicArea),
                        .idevid_public = MarshalPublic(idevid_public.publicArea),
                        .idevid_certify_info = std::move(certify.attest),
                        .idevid_certify_signature = std::move(certify.signature)};
  return SignRequest(tpm, r.idevid_handle, content);
}

Result<Bytes> SignRequest(const TpmContext& tpm, TpmHandle signer, const TcgCsrContent& content) {
  IDEVID_ASSIGN_OR_RETURN(Bytes encoded, EncodeTcgCsrContent(content));
  IDEVID_ASSIGN_OR_RETURN(TPM2B_PUBLIC pub, ReadPersistentPublic(tpm, signer), "the request's signer");
  IDEVID_ASSIGN_OR_RETURN(auto key, ReferencePersistentKey(tpm, signer), "signing the request");
  IDEVID_ASSIGN_OR_RETURN(auto digest, HashMessage(TPM2_ALG_SHA256, encoded));
  IDEVID_ASSIGN_OR_RETURN(TPMT_SIGNATURE signature,
                          SignDigestAsTpm(tpm, key.handle(), RequestSignature(pub.publicArea), digest),
                          "signing the TCG-CSR-IDEVID with the key at {:#010x}", signer);
  return EncodeTcgCsr(encoded, MarshalSignature(signature));
}

Result<Bytes> AnswerCredential(const TpmContext& tpm, TpmHandle iak_handle, const Credential& credential) {
  IDEVID_ASSIGN_OR_RETURN(PrimaryKey ek, CreateEk(tpm), "loading the EK");
  IDEVID_ASSIGN_OR_RETURN(auto iak, ReferencePersistentKey(tpm, iak_handle), "activating the credential");
  return ActivateCredential(tpm, iak.handle(), ek.object.handle(), credential);
}

Result<EnrolResult> EnrolUnit(const TpmContext& tpm, EnrolmentChannel& authority,
                              const EnrolRequest& request) {
  IDEVID_TRY(ValidateIdentityField("serial number", request.serial));
  IDEVID_TRY(ValidateIdentityField("model", request.model));
  EnrolResult result;
  StepTimer timer(result.timings_ms);
  IDEVID_ASSIGN_OR_RETURN(TpmInfo info, ReadTpmInfo(tpm));
  IDEVID_ASSIGN_OR_RETURN(std::vector<std::string> existing, ExistingIdentity(tpm, SlotsOf(request)));
  if (!existing.empty() && !request.force) {
    return UsageError(UsageCode::kWrongState,
                      fmt::format("the TPM already holds an identity ({}); pass --force to replace it",
                                  fmt::join(existing, "; ")));
  }
  IDEVID_ASSIGN_OR_RETURN(EkCertificate ek, RequireEkCertificate(tpm));
  // The authority is asked first: a unit it refuses outright keeps the identity it has.
  IDEVID_ASSIGN_OR_RETURN(auto begun, authority.Begin({request.serial, request.model, request.station}),
                          "starting the enrolment");
  if (auto* refused = std::get_if<EnrolmentRefusal>(&begun)) {
    result.refusal = *refused;
    return result;
  }
  result.session = std::get<EnrolmentSession>(begun).id;
  IDEVID_TRY(RemoveIdentity(tpm, SlotsOf(request)));
  result.replaced = std::move(existing);
  timer.Done("prepare");
  auto done = Exchange(tpm, authority, std::get<EnrolmentSession>(begun), request, ek, info.nv_index_max,
                       timer, result);
  if (!done || result.refusal) {
    // No half identity stays behind: keys and whatever NV was written go again.
    (void)RemoveIdentity(tpm, SlotsOf(request));
    IDEVID_TRY(std::move(done));
  }
  return result;
}

Result<EnrolmentAnswer<EnrolmentCommitted>> CommitEnrolment(EnrolmentChannel& authority,
                                                            const EnrolRequest& request,
                                                            const EnrolResult& result,
                                                            const std::string& line_check,
                                                            const nlohmann::json& record) {
  return authority.Commit(result.session, {request.station, line_check, record});
}

}  // namespace idevid
