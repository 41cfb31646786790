#include "provisioning/enrolment_authority.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/idevid_profile.h"
#include "core/openssl_error.h"
#include "core/utc_time.h"
#include "core/x509_build.h"
#include "provisioning/unit_ledger.h"

namespace idevid {
namespace {

constexpr std::size_t kNonceBytes = 32;
constexpr std::size_t kSecretBytes = 32;

Result<Bytes> RandomBytes(std::size_t count) {
  Bytes out(count);
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) return FailOpenSsl("RAND_bytes failed");
  return out;
}

// The certificate policies of the IAK certificate add verifiedTPMRestricted (§8.1, §8.5) to the
// IDevID's.
CertificateSpec IakSpec(CertificateSpec spec) {
  for (auto& extension : spec.extensions) {
    if (extension.name == "certificatePolicies")
      extension.value += fmt::format(",{}", kOidPolicyIakRestricted);
  }
  return spec;
}

Result<ossl::Cert> IssueFor(const CertificateSpec& spec, const TPMT_PUBLIC& key, const Factory& factory) {
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey public_key, PublicKeyFromTpm(key));
  return IssueCertificate(spec, *public_key, factory.issuing.get(), *factory.issuing_key);
}

EnrolmentRefusal FromLedger(const LedgerRefusal& refusal) { return {refusal.reason, refusal.detail}; }

}  // namespace

Result<std::unique_ptr<EnrolmentAuthority>> EnrolmentAuthority::Create(Factory factory,
                                                                       AuthorityOptions options) {
  if (options.tpm_vendor_cas.empty()) {
    return UsageError(UsageCode::kMissingArgument,
                      "no TPM vendor CA: the EK certificates cannot be checked; give --tpm-vendor-ca FILE");
  }
  std::vector<TrustBundle> vendor_cas;
  for (const auto& path : options.tpm_vendor_cas) {
    IDEVID_ASSIGN_OR_RETURN(TrustBundle bundle, LoadTrustBundle(path), "the TPM vendor CA {}", path.string());
    vendor_cas.push_back(std::move(bundle));
  }
  IDEVID_ASSIGN_OR_RETURN(std::unique_ptr<Ledger> ledger,
                          OpenLedger(options.ledger.empty() ? factory.ledger : options.ledger),
                          "the factory's ledger");
  return std::unique_ptr<EnrolmentAuthority>(new EnrolmentAuthority(
      std::move(factory), std::move(options), std::move(vendor_cas), std::move(ledger)));
}

EnrolmentAuthority::EnrolmentAuthority(Factory factory, AuthorityOptions options,
                                       std::vector<TrustBundle> vendor_cas, std::unique_ptr<Ledger> ledger)
    : factory_(std::move(factory)),
      options_(std::move(options)),
      vendor_cas_(std::move(vendor_cas)),
      ledger_(std::move(ledger)) {}

EnrolmentRefusal EnrolmentAuthority::Refused(const std::string& session, EnrolmentRefusal refusal) {
  if (options_.log) {
    options_.log(
        fmt::format("refused session {}: {}: {}", DisplayText(session), refusal.reason, refusal.detail));
  }
  return refusal;
}

Result<EnrolmentAnswer<EnrolmentSession>> EnrolmentAuthority::Begin(const EnrolmentOrder& order) {
  for (auto [what, value] : {std::pair{"serial number", &order.serial}, std::pair{"model", &order.model}}) {
    if (auto valid = ValidateIdentityField(what, *value); !valid) {
      return Refused("", {std::string(refusal::kOrder), valid.error().message()});
    }
  }
  // A committed serial is refused before the unit's TPM is touched; everything else is decided
  // when the EK is known (Activate).
  IDEVID_ASSIGN_OR_RETURN(std::optional<UnitRow> row, ledger_->FindBySerial(order.serial),
                          "looking up serial {} in the ledger {}", QuotedDisplayText(order.serial),
                          ledger_->location());
  if (row && row->state == UnitState::kCommitted) {
    return Refused("", {std::string(refusal::kSerialIssued),
                        fmt::format("serial {} has been issued already (committed by station {})",
                                    QuotedDisplayText(order.serial), QuotedDisplayText(row->station))});
  }
  IDEVID_ASSIGN_OR_RETURN(Bytes id, RandomBytes(16));
  IDEVID_ASSIGN_OR_RETURN(Bytes nonce, RandomBytes(kNonceBytes));
  EnrolmentSession answer{Hex(id), nonce};
  std::lock_guard lock(mutex_);
  // Expired sessions leave the table whenever a new one starts.
  auto now = std::chrono::steady_clock::now();
  std::erase_if(sessions_, [&](const auto& entry) { return entry.second.expires < now; });
  sessions_[answer.id] = Session{order, std::move(nonce), now + options_.session_lifetime, std::nullopt, {}};
  return answer;
}

std::variant<EnrolmentAuthority::Session, EnrolmentRefusal> EnrolmentAuthority::TakeSession(
    const std::string& id) {
  std::lock_guard lock(mutex_);
  auto found = sessions_.find(id);
  if (found == sessions_.end()) {
    return EnrolmentRefusal{
        std::string(refusal::kSession),
        fmt::format("no enrolment session {} (unknown, used or expired)", QuotedDisplayText(id))};
  }
  Session session = std::move(found->second);
  sessions_.erase(found);
  if (session.expires < std::chrono::steady_clock::now()) {
    return EnrolmentRefusal{std::string(refusal::kSession), "the enrolment session timed out"};
  }
  return session;
}

Result<EnrolmentAnswer<Credential>> EnrolmentAuthority::Submit(const std::string& id,
                                                               std::span<const std::uint8_t> csr) {
  auto taken = TakeSession(id);
  if (auto* refused = std::get_if<EnrolmentRefusal>(&taken)) return Refused(id, *refused);
  Session session = std::move(std::get<Session>(taken));
  if (session.request) {
    // A repeated request leaves the session as it was, for the station that holds the credential.
    Restore(id, std::move(session));
    return Refused(id, {std::string(refusal::kSession), "the request was submitted already"});
  }
  auto checked = CheckEnrolmentRequest(
      csr, {.order = &session.order, .nonce = session.nonce, .vendor_cas = &vendor_cas_});
  if (auto* refused = std::get_if<EnrolmentRefusal>(&checked)) return Refused(id, *refused);
  session.request = std::move(std::get<CheckedRequest>(checked));
  // §6.2 step 5: a credential only the TPM holding both the EK and the IAK can open.
  IDEVID_ASSIGN_OR_RETURN(session.secret, RandomBytes(kSecretBytes));
  IDEVID_ASSIGN_OR_RETURN(Bytes iak_name, ObjectName(session.request->iak), "the IAK's name");
  EVP_PKEY* ek_key = X509_get0_pubkey(session.request->ek_certificate.get());
  if (ek_key == nullptr) {
    return Refused(id,
                   {std::string(refusal::kEkCertificate), "the EK certificate's public key does not load"});
  }
  auto credential = MakeCredential(*ek_key, iak_name, session.secret);
  if (!credential && credential.error().domain() == ErrorDomain::kUsage) {
    return Refused(id, {std::string(refusal::kEkCertificate),
                        "no credential can be made to this EK: " + credential.error().message()});
  }
  IDEVID_TRY(credential, "making the credential");
  Credential made = *credential;
  Restore(id, std::move(session));
  return made;
}

void EnrolmentAuthority::Restore(const std::string& id, Session session) {
  std::lock_guard lock(mutex_);
  sessions_[id] = std::move(session);
}

Result<EnrolmentAnswer<EnrolmentCertificates>> EnrolmentAuthority::Activate(
    const std::string& id, std::span<const std::uint8_t> secret) {
  auto taken = TakeSession(id);
  if (auto* refused = std::get_if<EnrolmentRefusal>(&taken)) return Refused(id, *refused);
  const Session& session = std::get<Session>(taken);
  if (!session.request) return Refused(id, {std::string(refusal::kSession), "no request was submitted"});
  if (secret.size() != session.secret.size() ||
      CRYPTO_memcmp(secret.data(), session.secret.data(), secret.size()) != 0) {
    return Refused(id, {std::string(refusal::kActivation),
                        "the answer to the credential is wrong: the IAK is not in the TPM of this EK"});
  }
  return IssueRecorded(id, std::move(std::get<Session>(taken)));
}

Result<EnrolmentAnswer<EnrolmentCertificates>> EnrolmentAuthority::IssueRecorded(const std::string& id,
                                                                                 Session session) {
  const EnrolmentOrder& order = session.order;
  IDEVID_ASSIGN_OR_RETURN(session.ek_sha256, EkSha256(*session.request->ek_certificate),
                          "the EK certificate");
  ReserveRequest reserve{order.serial, order.model, order.station, session.ek_sha256};
  IDEVID_ASSIGN_OR_RETURN(auto reserved, ledger_->Reserve(reserve), "reserving serial {} in the ledger {}",
                          QuotedDisplayText(order.serial), ledger_->location());
  if (auto* refused = std::get_if<LedgerRefusal>(&reserved)) return Refused(id, FromLedger(*refused));
  auto recorded = IssueAndRecord(session, reserve, std::get<Reservation>(reserved));
  if (!recorded || std::holds_alternative<LedgerRefusal>(*recorded)) {
    (void)ledger_->Release(order.serial, session.ek_sha256);  // frees only a row without certificate
    IDEVID_TRY(recorded);
    return Refused(id, FromLedger(std::get<LedgerRefusal>(*recorded)));
  }
  if (options_.log) {
    options_.log(fmt::format("issued serial {} model {} to station {}", QuotedDisplayText(order.serial),
                             QuotedDisplayText(order.model), QuotedDisplayText(order.station)));
  }
  // The session stays open for the station's Commit.
  session.issued = true;
  session.expires = std::chrono::steady_clock::now() + options_.session_lifetime;
  EnrolmentCertificates certificates = std::get<EnrolmentCertificates>(std::move(*recorded));
  Restore(id, std::move(session));
  return certificates;
}

Result<EnrolmentAnswer<EnrolmentCommitted>> EnrolmentAuthority::Commit(const std::string& id,
                                                                       const EnrolmentCommit& commit) {
  auto taken = TakeSession(id);
  if (auto* refused = std::get_if<EnrolmentRefusal>(&taken)) return Refused(id, *refused);
  Session session = std::move(std::get<Session>(taken));
  auto refuse = [&](std::string detail) {
    bool issued = session.issued;
    Restore(id, std::move(session));
    return Refused(id, {std::string(issued ? refusal::kOrder : refusal::kSession), std::move(detail)});
  };
  if (!session.issued) return refuse("the certificates have not been issued in this session");
  if (commit.station != session.order.station) {
    return refuse(fmt::format("station {} cannot commit the session station {} began",
                              QuotedDisplayText(commit.station), QuotedDisplayText(session.order.station)));
  }
  if (commit.line_check != "PASS" && commit.line_check != "FAIL") {
    return refuse(fmt::format("the line check's outcome {} is neither PASS nor FAIL",
                              QuotedDisplayText(commit.line_check)));
  }
  auto committed = ledger_->Commit({.serial = session.order.serial,
                                    .ek_sha256 = session.ek_sha256,
                                    .station = commit.station,
                                    .line_check = commit.line_check,
                                    .record = commit.record});
  if (!committed) {
    std::string serial = session.order.serial;
    Restore(id, std::move(session));  // the station may try again
    return Fail(std::move(committed).error().WithContext(
        fmt::format("committing {} in the ledger {}", QuotedDisplayText(serial), ledger_->location())));
  }
  if (auto* refused = std::get_if<LedgerRefusal>(&*committed)) return Refused(id, FromLedger(*refused));
  if (options_.log) {
    options_.log(fmt::format("committed serial {} (line check {}) from station {}",
                             QuotedDisplayText(session.order.serial), commit.line_check,
                             QuotedDisplayText(commit.station)));
  }
  return EnrolmentCommitted{session.order.serial};
}

Result<EnrolmentCertificates> EnrolmentAuthority::Issue(const Session& session,
                                                        const Reservation& reservation) {
  const CheckedRequest& request = *session.request;
  IDEVID_ASSIGN_OR_RETURN(Bytes hw_serial, HardwareSerialFromEk(*request.ek_certificate),
                          "hardwareModuleName");
  UnitIdentity unit{session.order.serial, session.order.model, factory_.manufacturer, std::move(hw_serial)};
  IDEVID_ASSIGN_OR_RETURN(CertificateSpec spec, IdevidCertificateSpec(unit));
  EnrolmentCertificates out;
  // An earlier attempt of this unit that was issued for the same IDevID key gets its certificate
  // again instead of a second one for that key.
  if (reservation.resumed) {
    IDEVID_ASSIGN_OR_RETURN(ossl::PKey key, PublicKeyFromTpm(request.idevid));
    IDEVID_ASSIGN_OR_RETURN(std::optional<Bytes> recorded,
                            ReusableCertificate(reservation.row, *key, session.order.model));
    if (recorded) out.idevid_certificate = std::move(*recorded);
  }
  if (out.idevid_certificate.empty()) {
    IDEVID_ASSIGN_OR_RETURN(ossl::Cert idevid, IssueFor(spec, request.idevid, factory_),
                            "the IDevID certificate");
    IDEVID_ASSIGN_OR_RETURN(out.idevid_certificate, CertificateDer(*idevid));
  }
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert iak, IssueFor(IakSpec(spec), request.iak, factory_),
                          "the IAK certificate");
  IDEVID_ASSIGN_OR_RETURN(out.iak_certificate, CertificateDer(*iak));
  return out;
}

Result<LedgerAnswer<EnrolmentCertificates>> EnrolmentAuthority::IssueAndRecord(
    const Session& session, const ReserveRequest& reserve, const Reservation& reservation) {
  IDEVID_ASSIGN_OR_RETURN(EnrolmentCertificates certificates, Issue(session, reservation));
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert idevid, ParseCertificate(certificates.idevid_certificate),
                          "the IDevID certificate");
  IDEVID_ASSIGN_OR_RETURN(IssuedRequest issued, IssuedRequestFor(reserve, *idevid));
  IDEVID_ASSIGN_OR_RETURN(auto row, ledger_->RecordIssued(issued),
                          "recording the certificate of {} in the ledger {}",
                          QuotedDisplayText(reserve.serial), ledger_->location());
  if (auto* refused = std::get_if<LedgerRefusal>(&row)) return *refused;
  return certificates;
}

}  // namespace idevid
