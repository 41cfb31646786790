#include "provisioning/enrolment_authority.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/idevid_profile.h"
#include "core/openssl_error.h"
#include "core/utc_time.h"
#include "core/x509_build.h"

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

nlohmann::json IssuedRecord(const EnrolmentOrder& order, const X509& ek) {
  return {{"serial", order.serial},
          {"model", order.model},
          {"station", order.station},
          {"ek_certificate", SubjectLine(ek)},
          {"issued_at", UtcTimestamp(std::chrono::system_clock::now())}};
}

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
  return std::unique_ptr<EnrolmentAuthority>(
      new EnrolmentAuthority(std::move(factory), std::move(options), std::move(vendor_cas)));
}

EnrolmentAuthority::EnrolmentAuthority(Factory factory, AuthorityOptions options,
                                       std::vector<TrustBundle> vendor_cas)
    : factory_(std::move(factory)),
      options_(std::move(options)),
      vendor_cas_(std::move(vendor_cas)),
      issued_(factory_.dir) {}

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
  if (issued_.Contains(order.serial)) {
    return Refused("", {std::string(refusal::kSerialIssued),
                        fmt::format("serial {} has been issued already", QuotedDisplayText(order.serial))});
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
  IDEVID_ASSIGN_OR_RETURN(
      bool reserved,
      issued_.Reserve(session.order.serial, IssuedRecord(session.order, *session.request->ek_certificate)));
  if (!reserved) {
    return Refused(
        id, {std::string(refusal::kSerialIssued),
             fmt::format("serial {} has been issued already", QuotedDisplayText(session.order.serial))});
  }
  auto issued = Issue(session);
  if (!issued) issued_.Release(session.order.serial);
  IDEVID_ASSIGN_OR_RETURN(EnrolmentCertificates certificates, std::move(issued));
  if (options_.log) {
    options_.log(fmt::format("issued serial {} model {} to station {}",
                             QuotedDisplayText(session.order.serial), QuotedDisplayText(session.order.model),
                             QuotedDisplayText(session.order.station)));
  }
  return certificates;
}

Result<EnrolmentCertificates> EnrolmentAuthority::Issue(const Session& session) {
  const CheckedRequest& request = *session.request;
  IDEVID_ASSIGN_OR_RETURN(Bytes hw_serial, HardwareSerialFromEk(*request.ek_certificate),
                          "hardwareModuleName");
  UnitIdentity unit{session.order.serial, session.order.model, factory_.manufacturer, std::move(hw_serial)};
  IDEVID_ASSIGN_OR_RETURN(CertificateSpec spec, IdevidCertificateSpec(unit));
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert idevid, IssueFor(spec, request.idevid, factory_),
                          "the IDevID certificate");
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert iak, IssueFor(IakSpec(spec), request.iak, factory_),
                          "the IAK certificate");
  EnrolmentCertificates out;
  IDEVID_ASSIGN_OR_RETURN(out.idevid_certificate, CertificateDer(*idevid));
  IDEVID_ASSIGN_OR_RETURN(out.iak_certificate, CertificateDer(*iak));
  return out;
}

}  // namespace idevid
