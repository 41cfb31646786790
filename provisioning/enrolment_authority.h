// The factory's enrolment authority (TCG "TPM 2.0 Keys for Device Identity and Attestation" v1.0
// rev 12 §6.2, §13): checks a unit's TCG-CSR-IDEVID, proves with credential activation that the
// IAK sits in the TPM whose EK certificate the request carries, and only then issues the IAK and
// IDevID certificates from the factory's issuing CA. Every unit goes through the factory's ledger:
// reserved for its EK and recorded as issued at Activate (before the certificates leave),
// committed at Commit. Thread-safe: a service calls it from several
// connections at once.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/ledger.h"
#include "provisioning/enrolment_channel.h"
#include "provisioning/enrolment_checks.h"
#include "provisioning/factory.h"

namespace idevid {

struct AuthorityOptions {
  std::vector<std::filesystem::path> tpm_vendor_cas;  // bundles the EK certificates must chain to
  std::chrono::milliseconds session_lifetime{60000};  // from Begin to Activate
  // The ledger units are recorded in (core/ledger.h): its spec, empty = the factory's.
  std::string ledger;
  // What the authority writes to its log, one line per decision (may be empty).
  std::function<void(const std::string& line)> log;
};

class EnrolmentAuthority : public EnrolmentChannel {
 public:
  // Loads the vendor CA bundles and opens the ledger. Fails with kConfig naming a bundle that does
  // not load or holds no root, kUsage when none is given, kDatabase when the ledger cannot open.
  static Result<std::unique_ptr<EnrolmentAuthority>> Create(Factory factory, AuthorityOptions options);

  Result<EnrolmentAnswer<EnrolmentSession>> Begin(const EnrolmentOrder& order) override;
  Result<EnrolmentAnswer<Credential>> Submit(const std::string& session,
                                             std::span<const std::uint8_t> csr) override;
  Result<EnrolmentAnswer<EnrolmentCertificates>> Activate(const std::string& session,
                                                          std::span<const std::uint8_t> secret) override;
  Result<EnrolmentAnswer<EnrolmentCommitted>> Commit(const std::string& session,
                                                     const EnrolmentCommit& commit) override;

  const Factory& factory() const { return factory_; }
  Ledger& ledger() { return *ledger_; }

 private:
  struct Session {
    EnrolmentOrder order;
    Bytes nonce;
    std::chrono::steady_clock::time_point expires;
    std::optional<CheckedRequest> request;  // set by Submit
    Bytes secret;                           // what activation must give back
    std::string ek_sha256;                  // the unit's, once activated
    bool issued = false;                    // the certificates were handed out: Commit is next
  };
  EnrolmentAuthority(Factory factory, AuthorityOptions options, std::vector<TrustBundle> vendor_cas,
                     std::unique_ptr<Ledger> ledger);
  // Takes the session out of the table (a session is used once); nullopt when unknown or expired.
  std::variant<Session, EnrolmentRefusal> TakeSession(const std::string& id);
  // Puts a session taken out back into the table.
  void Restore(const std::string& id, Session session);
  Result<EnrolmentCertificates> Issue(const Session& session, const Reservation& reservation);
  // The certificates issued and recorded in the ledger, or the ledger's refusal.
  Result<LedgerAnswer<EnrolmentCertificates>> IssueAndRecord(const Session& session,
                                                             const ReserveRequest& reserve,
                                                             const Reservation& reservation);
  // Activate after the credential was answered: reserve, issue, record.
  Result<EnrolmentAnswer<EnrolmentCertificates>> IssueRecorded(const std::string& id, Session session);
  EnrolmentRefusal Refused(const std::string& session, EnrolmentRefusal refusal);

  Factory factory_;
  AuthorityOptions options_;
  std::vector<TrustBundle> vendor_cas_;
  std::unique_ptr<Ledger> ledger_;
  std::mutex mutex_;
  std::map<std::string, Session> sessions_;
};

}  // namespace idevid
