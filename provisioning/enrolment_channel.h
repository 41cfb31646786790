// The enrolment exchange between a line station and the factory's enrolment authority, the same
// whether the authority runs in the station's process (--factory DIR) or as a service
// (--factory https://HOST:PORT):
//   1. Begin(order)            -> a session and its nonce (the qualifying data of TPM2_Certify)
//   2. Submit(session, csr)    -> a credential made to the unit's EK for its IAK's name
//   3. Activate(session, secret from TPM2_ActivateCredential) -> the IDevID and IAK certificates
//   4. Commit(session, line check outcome and per-unit record) once both are in NV and the line
//      check ran: the unit is committed in the factory's ledger (core/ledger.h)
// Any step may answer with a refusal instead: a verdict about the unit, not an error. Errors are
// reserved for the exchange itself failing (factory unreachable, malformed answer, I/O).
#pragma once

#include <nlohmann/json.hpp>

#include <span>
#include <string>
#include <variant>

#include "core/result.h"
#include "core/tpm_wire.h"
#include "core/x509.h"

namespace idevid {

// What the station was ordered to make.
struct EnrolmentOrder {
  std::string serial;
  std::string model;
  std::string station;  // who asks (a service takes it from the station's TLS certificate)
};

// An open enrolment: its id and the nonce the TPM2_Certify must carry as qualifying data.
struct EnrolmentSession {
  std::string id;
  Bytes nonce;
};

// The certificates issued at the end (DER).
struct EnrolmentCertificates {
  Bytes idevid_certificate;
  Bytes iak_certificate;
};

// What the station reports at the end: who it is (a service takes it from the station's TLS
// certificate), the line check's outcome ("PASS" or "FAIL") and the per-unit record (never a
// private key).
struct EnrolmentCommit {
  std::string station;
  std::string line_check;
  nlohmann::json record;
};

// The committed unit.
struct EnrolmentCommitted {
  std::string serial;
};

// Why the authority refused the unit: a stable reason id ("ek-chain", "idevid-attributes", ...)
// and a sentence with the evidence (outside input escaped).
struct EnrolmentRefusal {
  std::string reason;
  std::string detail;
};

// The answer of one step: what it gives, or the refusal.
template <typename T>
using EnrolmentAnswer = std::variant<T, EnrolmentRefusal>;

// One side of the exchange; the authority implements it, and so does the HTTPS client that
// forwards to an authority behind `idevid factory serve`.
class EnrolmentChannel {
 public:
  virtual ~EnrolmentChannel() = default;
  [[nodiscard]] virtual Result<EnrolmentAnswer<EnrolmentSession>> Begin(const EnrolmentOrder& order) = 0;
  [[nodiscard]] virtual Result<EnrolmentAnswer<Credential>> Submit(const std::string& session,
                                                                   std::span<const std::uint8_t> csr) = 0;
  [[nodiscard]] virtual Result<EnrolmentAnswer<EnrolmentCertificates>> Activate(
      const std::string& session, std::span<const std::uint8_t> secret) = 0;
  // Only the station that began the session (the same station name) may commit it.
  [[nodiscard]] virtual Result<EnrolmentAnswer<EnrolmentCommitted>> Commit(const std::string& session,
                                                                           const EnrolmentCommit& commit) = 0;
};

}  // namespace idevid
