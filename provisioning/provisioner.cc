#include "provisioning/provisioner.h"

#include <chrono>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/idevid_profile.h"
#include "core/tpm_nv.h"
#include "core/tpm_sign.h"
#include "core/tss_error.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "provisioning/ek_certificate.h"
#include "provisioning/station_fault.h"
#include "provisioning/unit_ledger.h"
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

// The ledger's part in one attempt: the reservation, and whether the certificate is recorded.
struct LedgerStep {
  Ledger* ledger = nullptr;
  ReserveRequest reserve;
  std::optional<UnitRow> earlier;  // the row of a resumed attempt
  bool recorded = false;
};

// The certificate for the key: the one an earlier attempt recorded for this very key, or a new one
// issued on the TPM's proof of possession.
Result<ossl::Cert> CertificateFor(const TpmContext& tpm, const Factory& factory,
                                  const ProvisionRequest& request, const UnitIdentity& unit,
                                  EVP_PKEY& public_key, const LedgerStep& step, StepTimer& timer,
                                  ProvisionResult& result) {
  if (step.earlier) {
    IDEVID_ASSIGN_OR_RETURN(std::optional<Bytes> recorded,
                            ReusableCertificate(*step.earlier, public_key, request.model));
    if (recorded) {
      result.certificate_reused = true;
      timer.Done("reuse_certificate");
      return ParseCertificate(*recorded);
    }
  }
  IDEVID_ASSIGN_OR_RETURN(auto csr, RequestFromTpm(tpm, request, unit, public_key));
  timer.Done("proof_of_possession");
  IDEVID_ASSIGN_OR_RETURN(CertificateSpec spec, IdevidCertificateSpec(unit));
  IDEVID_ASSIGN_OR_RETURN(
      ossl::Cert cert,
      IssueCertificate(spec, *X509_REQ_get0_pubkey(csr.get()), factory.issuing.get(), *factory.issuing_key),
      "cannot issue the IDevID certificate");
  timer.Done("issue_certificate");
  return cert;
}

// After the key is persisted: the certificate, its row in the ledger, NV. The caller removes the
// key again when this fails or the ledger refuses, so that no half-provisioned identity stays
// behind.
Result<void> IssueAndBurn(const TpmContext& tpm, const Factory& factory, const ProvisionRequest& request,
                          const UnitIdentity& unit, EVP_PKEY& public_key, std::uint32_t nv_index_max,
                          LedgerStep& step, StepTimer& timer, ProvisionResult& result) {
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert cert,
                          CertificateFor(tpm, factory, request, unit, public_key, step, timer, result));
  if (step.ledger != nullptr) {
    IDEVID_ASSIGN_OR_RETURN(IssuedRequest issued, IssuedRequestFor(step.reserve, *cert));
    IDEVID_ASSIGN_OR_RETURN(auto answer, step.ledger->RecordIssued(issued),
                            "recording the certificate of {} in the ledger {}",
                            QuotedDisplayText(request.serial), step.ledger->location());
    if (auto* refused = std::get_if<LedgerRefusal>(&answer)) {
      result.refusal = std::move(*refused);
      return {};
    }
    step.recorded = true;
    timer.Done("record_issued");
    DieHereIfAsked(station_fault::kIssued);
  }
  IDEVID_ASSIGN_OR_RETURN(Bytes der, CertificateDer(*cert), "the IDevID certificate");
  IDEVID_TRY(BurnCertificate(tpm, request.nv_index, der, nv_index_max),
             "cannot write the IDevID certificate");
  timer.Done("write_nv");
  DieHereIfAsked(station_fault::kWritten);
  IDEVID_ASSIGN_OR_RETURN(result.certificate_fingerprint, Sha256Fingerprint(*cert), "the IDevID certificate");
  result.certificate = std::move(cert);
  return {};
}

// True when the ledger holds an attempt of `serial` on this TPM that did not commit: the identity
// the TPM holds is that attempt's.
Result<bool> InterruptedHere(Ledger* ledger, const std::string& serial, const std::string& ek_sha256) {
  if (ledger == nullptr) return false;
  IDEVID_ASSIGN_OR_RETURN(std::optional<UnitRow> row, ledger->FindBySerial(serial),
                          "looking up serial {} in the ledger {}", QuotedDisplayText(serial),
                          ledger->location());
  return row && row->ek_sha256 == ek_sha256 && row->state != UnitState::kCommitted;
}

// Reserves the serial for this TPM; sets result.refusal when the ledger refuses.
Result<void> Reserve(LedgerStep& step, const ProvisionRequest& request, ProvisionResult& result) {
  step.reserve = {request.serial, request.model, request.station, result.ek_sha256};
  IDEVID_ASSIGN_OR_RETURN(auto answer, step.ledger->Reserve(step.reserve),
                          "reserving serial {} in the ledger {}", QuotedDisplayText(request.serial),
                          step.ledger->location());
  if (auto* refused = std::get_if<LedgerRefusal>(&answer)) {
    result.refusal = std::move(*refused);
    return {};
  }
  auto& reservation = std::get<Reservation>(answer);
  result.resumed = reservation.resumed;
  if (reservation.resumed) step.earlier = std::move(reservation.row);
  DieHereIfAsked(station_fault::kReserved);
  return {};
}

// Gives the reservation back unless the certificate was recorded (then the row must stay).
void ReleaseUnlessRecorded(const LedgerStep& step) {
  if (step.ledger == nullptr || step.recorded) return;
  (void)step.ledger->Release(step.reserve.serial, step.reserve.ek_sha256);
}

}  // namespace

Result<ProvisionResult> ProvisionUnit(const TpmContext& tpm, const Factory& factory,
                                      const ProvisionRequest& request, Ledger* ledger) {
  IDEVID_TRY(ValidateIdentityField("serial number", request.serial));
  IDEVID_TRY(ValidateIdentityField("model", request.model));
  ProvisionResult result;
  StepTimer timer(result.timings_ms);
  IDEVID_ASSIGN_OR_RETURN(result.tpm, ReadTpmInfo(tpm));
  IDEVID_ASSIGN_OR_RETURN(std::vector<std::string> existing, ExistingIdentity(tpm, SlotsOf(request)));
  // Everything that can be checked is checked before the old identity is removed.
  IDEVID_ASSIGN_OR_RETURN(EkCertificate ek, RequireEkCertificate(tpm));
  result.ek_certificate_index = ek.index;
  IDEVID_ASSIGN_OR_RETURN(result.ek_certificate_fingerprint, Sha256Fingerprint(*ek.cert),
                          "the EK certificate in NV {:#010x}", ek.index);
  IDEVID_ASSIGN_OR_RETURN(UnitIdentity unit, IdentityFor(request, factory, *ek.cert));
  LedgerStep step{.ledger = ledger};
  if (ledger != nullptr) {
    IDEVID_ASSIGN_OR_RETURN(result.ek_sha256, EkSha256(*ek.cert), "the EK certificate");
  }
  // What an interrupted attempt of this unit left in the TPM is this unit's to replace.
  if (!existing.empty() && !request.force) {
    IDEVID_ASSIGN_OR_RETURN(bool resumable, InterruptedHere(ledger, request.serial, result.ek_sha256));
    if (!resumable) {
      return UsageError(UsageCode::kWrongState, fmt::format("the TPM already holds an identity ({}); {}",
                                                            fmt::join(existing, "; "), request.when_held));
    }
  }
  if (ledger != nullptr) {
    IDEVID_TRY(Reserve(step, request, result));
    if (result.refusal) return result;
  }
  if (auto removed = RemoveIdentity(tpm, SlotsOf(request)); !removed) {
    ReleaseUnlessRecorded(step);
    return Fail(std::move(removed).error());
  }
  result.replaced = std::move(existing);
  timer.Done("prepare");
  auto public_key = CreateIdevidKey(tpm, request);
  if (!public_key) {
    ReleaseUnlessRecorded(step);
    return Fail(std::move(public_key).error());
  }
  timer.Done("create_key");
  auto done =
      IssueAndBurn(tpm, factory, request, unit, **public_key, result.tpm.nv_index_max, step, timer, result);
  if (!done || result.refusal) {
    (void)UnpersistKey(tpm, request.key_handle);
    ReleaseUnlessRecorded(step);
    IDEVID_TRY(std::move(done));
  }
  return result;
}

}  // namespace idevid
