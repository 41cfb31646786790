// The ledger: one record of every unit a factory has given an identity, shared by every station of
// the line. Two back ends behind one interface: SQLite ("sqlite:PATH", the default for one station,
// a file beside the factory) and PostgreSQL ("postgresql://..." or a libpq keyword/value string,
// for many stations). The schema is created and migrated by the program (a version table).
//
// Provisioning is reserve -> issue -> commit, so that a station that dies at any step leaves a
// state the next attempt resolves:
//   Reserve       a row for (serial, TPM's EK) before anything is signed; the same serial on the
//                 same TPM resumes the earlier attempt, on another TPM it is refused as a clone;
//                 a TPM whose unit was revoked may take a new serial (a returned unit, refurbished);
//   RecordIssued  the certificate, written before it leaves the factory: no certificate without
//                 its row (unique IDevID key and certificate serial);
//   Commit        the certificate is in the TPM's NV, with the line check's outcome and the
//                 per-unit record.
// Every step is one transaction and idempotent, so a retry after a lost answer is harmless.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "core/x509.h"

namespace idevid {

using LedgerClock = std::chrono::system_clock;

// Where a unit is in its provisioning.
enum class UnitState { kReserved, kIssued, kCommitted };
// "reserved", "issued", "committed".
std::string_view UnitStateName(UnitState state);

// RFC 5280 5.3.1 CRLReason (value 7 is unused).
enum class RevocationReason {
  kUnspecified = 0,
  kKeyCompromise = 1,
  kCaCompromise = 2,
  kAffiliationChanged = 3,
  kSuperseded = 4,
  kCessationOfOperation = 5,
  kCertificateHold = 6,
  kRemoveFromCrl = 8,
  kPrivilegeWithdrawn = 9,
  kAaCompromise = 10,
};
// The ASN.1 name RFC 5280 gives it: "keyCompromise", "cessationOfOperation", ...
std::string_view RevocationReasonName(RevocationReason reason);
// The reason named `name` (RFC 5280 spelling). kUsage/kInvalidArgument listing the names otherwise.
Result<RevocationReason> ParseRevocationReason(std::string_view name);

struct Revocation {
  RevocationReason reason = RevocationReason::kUnspecified;
  LedgerClock::time_point since;
};

// One unit's row.
struct UnitRow {
  std::string serial;
  std::string model;
  std::string station;  // the station of the latest step
  UnitState state = UnitState::kReserved;
  // A revoked row whose TPM took a new serial since keeps its ek_sha256: that TPM has two rows then.
  std::string ek_sha256;           // lower-case hex SHA-256 of the EK's SubjectPublicKeyInfo DER
  std::string idevid_key_sha256;   // the same of the IDevID public key; empty while reserved
  std::string certificate_serial;  // the idev-id certificate's serial, lower-case hex; empty while reserved
  Bytes certificate;               // the idev-id certificate (DER); empty while reserved
  std::string line_check;          // "PASS" or "FAIL" once committed, else empty
  nlohmann::json record;           // the per-unit record given to Commit (null before)
  LedgerClock::time_point reserved_at;
  std::optional<LedgerClock::time_point> issued_at;
  std::optional<LedgerClock::time_point> committed_at;
  std::optional<Revocation> revocation;
};

// Why the ledger refused a step: a verdict about the unit, not an error. A stable reason id (one of
// ledger_refusal::*) and a sentence naming the evidence (outside input escaped).
struct LedgerRefusal {
  std::string reason;
  std::string detail;
};
namespace ledger_refusal {
inline constexpr std::string_view kClone = "clone";                  // the serial is another TPM's
inline constexpr std::string_view kSerialIssued = "serial-issued";   // committed already
inline constexpr std::string_view kTpmHasSerial = "tpm-has-serial";  // this TPM is another serial's
inline constexpr std::string_view kDuplicateKey = "duplicate-key";   // IDevID key or cert serial in use
inline constexpr std::string_view kRevoked = "revoked";              // the unit is revoked
inline constexpr std::string_view kUnknownSerial = "unknown-serial";
inline constexpr std::string_view kWrongState = "wrong-state";  // e.g. commit of a reserved row
}  // namespace ledger_refusal

// The answer of one step: its row, or the refusal.
template <typename T>
using LedgerAnswer = std::variant<T, LedgerRefusal>;

struct ReserveRequest {
  std::string serial;
  std::string model;
  std::string station;
  std::string ek_sha256;
};

// A reservation: a new row, or the row of an earlier attempt of this serial on this TPM that did
// not commit (reserved, or issued: then its certificate is handed back to be used again).
struct Reservation {
  bool resumed = false;
  UnitRow row;
};

struct IssuedRequest {
  std::string serial;
  std::string ek_sha256;  // must be the reservation's
  std::string station;
  std::string idevid_key_sha256;
  std::string certificate_serial;
  Bytes certificate;
};

struct CommitRequest {
  std::string serial;
  std::string ek_sha256;  // must be the reservation's
  std::string station;
  std::string line_check;  // "PASS" or "FAIL"
  nlohmann::json record;   // the per-unit record (never a private key)
};

// The ledger. Thread-safe (calls are serialized on its connection); several processes may share
// one database, each step is a transaction. Database failures are kDatabase errors (exit 2 at the
// command line), never refusals.
class Ledger {
 public:
  virtual ~Ledger() = default;

  // The ledger's location for logs and records: "sqlite:PATH" or the PostgreSQL connection with
  // any password removed.
  virtual std::string location() const = 0;
  // The schema version the database is at after opening (migrated to the newest).
  virtual int schema_version() const = 0;

  // Reserves `serial` for the TPM of `ek_sha256`, for `model`. Resuming an earlier attempt that did
  // not commit takes the request's station and model. When this EK's unit is revoked and `serial` is
  // a new one, the revoked row is retired (it keeps its history, revocation and certificate; FindByEk
  // then finds the new row) and `serial` is reserved. Refusals: clone (the serial is held by another
  // EK), serial-issued (committed on this TPM already), tpm-has-serial (this EK holds another serial
  // that is not revoked), revoked (this serial's unit is revoked).
  [[nodiscard]] virtual Result<LedgerAnswer<Reservation>> Reserve(const ReserveRequest& request) = 0;
  // Records the certificate issued to a reserved unit. Idempotent for the same certificate; an
  // issued row given another certificate (e.g. a resumed unit whose key changed) is updated.
  // Refusals: wrong-state (no reservation of this serial by this EK, or committed),
  // duplicate-key (the IDevID key or certificate serial belongs to another unit).
  [[nodiscard]] virtual Result<LedgerAnswer<UnitRow>> RecordIssued(const IssuedRequest& request) = 0;
  // Marks an issued unit committed. Idempotent. Refusals: wrong-state (not issued by this EK).
  [[nodiscard]] virtual Result<LedgerAnswer<UnitRow>> Commit(const CommitRequest& request) = 0;
  // Gives back a reservation that has no certificate yet (a failed attempt frees its serial); does
  // nothing to a row that is issued, committed or another EK's.
  [[nodiscard]] virtual Result<void> Release(std::string_view serial, std::string_view ek_sha256) = 0;

  // The unit of `serial`, of certificate serial `certificate_serial` (lower-case hex) or of the
  // EK `ek_sha256` (its live row, never a retired one); nullopt when none.
  [[nodiscard]] virtual Result<std::optional<UnitRow>> FindBySerial(std::string_view serial) = 0;
  [[nodiscard]] virtual Result<std::optional<UnitRow>> FindByCertificateSerial(
      std::string_view certificate_serial) = 0;
  [[nodiscard]] virtual Result<std::optional<UnitRow>> FindByEk(std::string_view ek_sha256) = 0;
  // Every unit, ordered by serial.
  [[nodiscard]] virtual Result<std::vector<UnitRow>> Units() = 0;

  // Revokes the unit's certificate. Revoking again keeps the first reason and time. Refusals:
  // unknown-serial, wrong-state (no certificate was issued).
  [[nodiscard]] virtual Result<LedgerAnswer<UnitRow>> Revoke(std::string_view serial, RevocationReason reason,
                                                             LedgerClock::time_point since) = 0;
  // Every revoked unit, ordered by certificate serial (the CRL's entries).
  [[nodiscard]] virtual Result<std::vector<UnitRow>> Revoked() = 0;
  // The next CRL number (RFC 5280 5.2.3): strictly increasing across calls and processes.
  [[nodiscard]] virtual Result<std::uint64_t> NextCrlNumber() = 0;
};

// Opens the ledger `spec` names, creating the database (SQLite) or the schema (both) and applying
// the migrations it lacks: "sqlite:PATH", "postgresql://..." / "postgres://...", or a libpq
// keyword/value string ("host=/run/x dbname=line"). kUsage/kInvalidArgument for a spec of no known
// kind; kDatabase naming the location (never a password) when it cannot be opened, or when the
// database's schema is newer than this program knows.
Result<std::unique_ptr<Ledger>> OpenLedger(const std::string& spec);

// The ledger of a factory directory when none is named: "sqlite:DIR/ledger.sqlite".
std::string DefaultLedgerSpec(const std::filesystem::path& factory_dir);

// Lower-case hex SHA-256 of a public key's SubjectPublicKeyInfo DER: the ek_sha256 and
// idevid_key_sha256 of a row. kOpenSsl when the key cannot be encoded.
Result<std::string> PublicKeySha256(const EVP_PKEY& key);

}  // namespace idevid
