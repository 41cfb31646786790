#include "core/ledger_sql.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/display_text.h"
#include "core/utc_time.h"

namespace idevid {
namespace {

// How often, and how long, a transaction that lost a race runs again before the ledger gives up
// (SQLite has already waited its busy timeout before it says busy).
constexpr int kMaxAttempts = 20;
constexpr auto kRetryPeriod = std::chrono::seconds(15);

// Version 3's copy of the rows of version 2 (whose columns it keeps, adding retired_ek_sha256).
constexpr std::string_view kV2ToV3Copy =
    "INSERT INTO units_v3 (serial, model, station, state, ek_sha256, idevid_key_sha256, "
    "certificate_serial, certificate, line_check, record, reserved_at, issued_at, committed_at, "
    "revocation_reason, revoked_at) SELECT serial, model, station, state, ek_sha256, idevid_key_sha256, "
    "certificate_serial, certificate, line_check, record, reserved_at, issued_at, committed_at, "
    "revocation_reason, revoked_at FROM units";

struct Migration {
  int version;
  std::vector<std::string> statements;
};

// The schema, version by version. A database records each version it was migrated to in
// schema_version; a new version is appended here, never edited once released.
std::vector<Migration> Migrations(const SqlDialect& d) {
  return {
      {1,
       {fmt::format("CREATE TABLE units ("
                    "serial {0} PRIMARY KEY, "
                    "model TEXT NOT NULL, "
                    "station TEXT NOT NULL, "
                    "state TEXT NOT NULL CHECK (state IN ('reserved', 'issued', 'committed')), "
                    "ek_sha256 {0} NOT NULL UNIQUE, "
                    "idevid_key_sha256 {0} UNIQUE, "
                    "certificate_serial {0} UNIQUE, "
                    "certificate {2}, "
                    "line_check TEXT CHECK (line_check IN ('PASS', 'FAIL')), "
                    "record TEXT, "
                    "reserved_at {1} NOT NULL, "
                    "issued_at {1}, "
                    "committed_at {1})",
                    d.key_text, d.integer, d.blob)}},
      // Revocation (RFC 5280 5.3.1 reasons) and the CRL number counter (RFC 5280 5.2.3).
      {2,
       {"ALTER TABLE units ADD COLUMN revocation_reason INTEGER",
        fmt::format("ALTER TABLE units ADD COLUMN revoked_at {}", d.integer),
        "CREATE INDEX units_revoked ON units (certificate_serial) WHERE revocation_reason IS NOT NULL",
        fmt::format("CREATE TABLE crl_number (id INTEGER PRIMARY KEY CHECK (id = 1), last {} NOT NULL)",
                    d.integer),
        "INSERT INTO crl_number (id, last) VALUES (1, 0)"}},
      // A revoked unit's TPM may be given a new serial (a returned unit, refurbished): the old row
      // keeps its history with its EK moved to retired_ek_sha256, so that ek_sha256 (UNIQUE) names
      // the TPM's live row only. SQLite cannot drop a NOT NULL, so the table is built again.
      {3,
       {fmt::format("CREATE TABLE units_v3 ("
                    "serial {0} PRIMARY KEY, "
                    "model TEXT NOT NULL, "
                    "station TEXT NOT NULL, "
                    "state TEXT NOT NULL CHECK (state IN ('reserved', 'issued', 'committed')), "
                    "ek_sha256 {0} UNIQUE, "
                    "retired_ek_sha256 {0}, "
                    "idevid_key_sha256 {0} UNIQUE, "
                    "certificate_serial {0} UNIQUE, "
                    "certificate {2}, "
                    "line_check TEXT CHECK (line_check IN ('PASS', 'FAIL')), "
                    "record TEXT, "
                    "reserved_at {1} NOT NULL, "
                    "issued_at {1}, "
                    "committed_at {1}, "
                    "revocation_reason INTEGER, "
                    "revoked_at {1}, "
                    "CHECK ((ek_sha256 IS NULL) <> (retired_ek_sha256 IS NULL)), "
                    "CHECK (retired_ek_sha256 IS NULL OR revocation_reason IS NOT NULL))",
                    d.key_text, d.integer, d.blob),
        std::string(kV2ToV3Copy), "DROP TABLE units", "ALTER TABLE units_v3 RENAME TO units",
        "CREATE INDEX units_revoked ON units (certificate_serial) WHERE revocation_reason IS NOT NULL",
        "CREATE INDEX units_retired_ek ON units (retired_ek_sha256) WHERE retired_ek_sha256 IS NOT NULL"}},
  };
}

constexpr std::string_view kUnitColumns =
    "serial, model, station, state, ek_sha256, idevid_key_sha256, certificate_serial, certificate, "
    "line_check, record, reserved_at, issued_at, committed_at, revocation_reason, revoked_at, "
    "retired_ek_sha256";

std::int64_t Millis(LedgerClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
LedgerClock::time_point FromMillis(std::int64_t ms) {
  return LedgerClock::time_point(
      std::chrono::duration_cast<LedgerClock::duration>(std::chrono::milliseconds(ms)));
}

std::string TextOf(const SqlValue& value) {
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  return {};
}
std::optional<std::int64_t> IntegerOf(const SqlValue& value) {
  if (const auto* number = std::get_if<std::int64_t>(&value)) return *number;
  return std::nullopt;
}
Bytes BytesOf(const SqlValue& value) {
  if (const auto* bytes = std::get_if<Bytes>(&value)) return *bytes;
  if (const auto* text = std::get_if<std::string>(&value)) return Bytes(text->begin(), text->end());
  return {};
}

Error RowError(const std::string& location, std::string_view serial, std::string_view what) {
  return Error(ErrorDomain::kDatabase, kLedgerOwnError,
               fmt::format("the ledger {} holds a row for {} whose {}; this program did not write it: "
                           "restore the database from a backup or use the program that wrote it",
                           location, QuotedDisplayText(serial), what));
}

Result<UnitState> ParseState(const std::string& name, const std::string& location, std::string_view serial) {
  for (UnitState state : {UnitState::kReserved, UnitState::kIssued, UnitState::kCommitted}) {
    if (UnitStateName(state) == name) return state;
  }
  return Fail(RowError(location, serial, "state " + QuotedDisplayText(name) + " is unknown"));
}

Result<RevocationReason> ReasonFromCode(std::int64_t code, const std::string& location,
                                        std::string_view serial) {
  auto reason = static_cast<RevocationReason>(code);
  if (code >= 0 && code <= 10 && code != 7) return reason;  // RFC 5280 5.3.1: 7 is not used
  return Fail(RowError(location, serial, fmt::format("revocation reason {} is not in RFC 5280 5.3.1", code)));
}

// A row of kUnitColumns as a UnitRow.
Result<UnitRow> UnitFromRow(const SqlRow& row, const std::string& location) {
  UnitRow unit;
  unit.serial = TextOf(row.at(0));
  unit.model = TextOf(row.at(1));
  unit.station = TextOf(row.at(2));
  IDEVID_ASSIGN_OR_RETURN(unit.state, ParseState(TextOf(row.at(3)), location, unit.serial));
  unit.ek_sha256 = TextOf(row.at(4));
  // A retired row (revoked, its TPM serialised again) still names the TPM it was.
  if (unit.ek_sha256.empty()) unit.ek_sha256 = TextOf(row.at(15));
  unit.idevid_key_sha256 = TextOf(row.at(5));
  unit.certificate_serial = TextOf(row.at(6));
  unit.certificate = BytesOf(row.at(7));
  unit.line_check = TextOf(row.at(8));
  std::string record = TextOf(row.at(9));
  if (!record.empty()) {
    unit.record = nlohmann::json::parse(record, nullptr, /*allow_exceptions=*/false);
    if (unit.record.is_discarded()) return Fail(RowError(location, unit.serial, "record is not JSON"));
  }
  unit.reserved_at = FromMillis(IntegerOf(row.at(10)).value_or(0));
  if (auto ms = IntegerOf(row.at(11))) unit.issued_at = FromMillis(*ms);
  if (auto ms = IntegerOf(row.at(12))) unit.committed_at = FromMillis(*ms);
  if (auto code = IntegerOf(row.at(13))) {
    IDEVID_ASSIGN_OR_RETURN(RevocationReason reason, ReasonFromCode(*code, location, unit.serial));
    unit.revocation = Revocation{reason, FromMillis(IntegerOf(row.at(14)).value_or(0))};
  }
  return unit;
}

// The first 16 hex digits of a hash: enough to tell two TPMs or keys apart in a sentence.
std::string HashPrefix(std::string_view hex) { return DisplayText(hex.substr(0, 16)) + "..."; }

template <typename T>
LedgerAnswer<T> Refuse(std::string_view reason, std::string detail) {
  return LedgerRefusal{std::string(reason), std::move(detail)};
}

std::string RevokedDetail(const UnitRow& unit) {
  return fmt::format("unit {} is revoked ({} since {}); it is never given an identity again",
                     QuotedDisplayText(unit.serial), RevocationReasonName(unit.revocation->reason),
                     UtcTimestamp(unit.revocation->since));
}

// Why this TPM cannot take `serial` while its live row `other` stands, and what frees it.
std::string TpmHasSerialDetail(const UnitRow& other, std::string_view serial) {
  std::string remedy =
      other.state == UnitState::kReserved
          ? fmt::format(
                "an attempt that has no certificate yet: provision the unit as {} to resume it "
                "(a station whose attempt fails releases it)",
                QuotedDisplayText(other.serial))
          : fmt::format(
                "whose certificate was issued: revoke it first (idevid factory revoke --dir DIR "
                "--serial {} --reason superseded), then the TPM can take a new serial",
                QuotedDisplayText(other.serial));
  return fmt::format(
      "this TPM (EK sha256 {}) holds serial {} ({} at station {}), {}; it is not given serial {}",
      HashPrefix(other.ek_sha256), QuotedDisplayText(other.serial), UnitStateName(other.state),
      QuotedDisplayText(other.station), remedy, QuotedDisplayText(serial));
}

Result<void> Require(bool given, std::string_view what, std::string_view step) {
  if (given) return {};
  return UsageError(UsageCode::kMissingArgument, fmt::format("{} of the ledger needs {}", step, what));
}

// The ledger's steps on one SQL connection, each one transaction, serialized by a mutex.
class SqlLedger final : public Ledger {
 public:
  explicit SqlLedger(std::unique_ptr<SqlConnection> connection)
      : connection_(std::move(connection)), location_(connection_->location()) {}

  Result<void> Migrate(int target_version);

  std::string location() const override { return location_; }
  int schema_version() const override { return schema_version_; }

  Result<LedgerAnswer<Reservation>> Reserve(const ReserveRequest& request) override;
  Result<LedgerAnswer<UnitRow>> RecordIssued(const IssuedRequest& request) override;
  Result<LedgerAnswer<UnitRow>> Commit(const CommitRequest& request) override;
  Result<void> Release(std::string_view serial, std::string_view ek_sha256) override;
  Result<std::optional<UnitRow>> FindBySerial(std::string_view serial) override {
    return Read("finding a unit by serial", [&] { return UnitWhere("serial", serial); });
  }
  Result<std::optional<UnitRow>> FindByCertificateSerial(std::string_view certificate_serial) override {
    return Read("finding a unit by certificate serial",
                [&] { return UnitWhere("certificate_serial", certificate_serial); });
  }
  Result<std::optional<UnitRow>> FindByEk(std::string_view ek_sha256) override {
    return Read("finding a unit by EK", [&] { return UnitWhere("ek_sha256", ek_sha256); });
  }
  Result<std::vector<UnitRow>> Units() override {
    return Read("listing the units",
                [&] { return UnitsOf(fmt::format("SELECT {} FROM units ORDER BY serial", kUnitColumns)); });
  }
  Result<LedgerAnswer<UnitRow>> Revoke(std::string_view serial, RevocationReason reason,
                                       LedgerClock::time_point since) override;
  Result<std::vector<UnitRow>> Revoked() override {
    return Read("listing the revoked units", [&] {
      return UnitsOf(
          fmt::format("SELECT {} FROM units WHERE revocation_reason IS NOT NULL ORDER BY certificate_serial",
                      kUnitColumns));
    });
  }
  Result<std::uint64_t> NextCrlNumber() override;

 private:
  // Runs `step` in one write transaction (`write`), or as one read statement: commits what it
  // returns (a refusal too: it changed nothing), rolls back a failure, runs it again when it lost
  // a race or when the connection had broken before anything was written, and names the location
  // in an error. A read step must run exactly one statement.
  template <typename Step>
  std::invoke_result_t<Step&> Transact(std::string_view what, bool write, Durability durability, Step&& step);
  template <typename Step>
  std::invoke_result_t<Step&> Write(std::string_view what, Step&& step) {
    return Transact(what, true, Durability::kNow, std::forward<Step>(step));
  }
  // A write step whose loss to a crash leaves nothing that depends on it (see Durability).
  template <typename Step>
  std::invoke_result_t<Step&> WriteWithNextDurable(std::string_view what, Step&& step) {
    return Transact(what, true, Durability::kWithNextDurable, std::forward<Step>(step));
  }
  template <typename Step>
  std::invoke_result_t<Step&> Read(std::string_view what, Step&& step) {
    return Transact(what, false, Durability::kNow, std::forward<Step>(step));
  }

  // Runs a statement on the connection; kUsage for text with a NUL byte, which PostgreSQL cannot
  // store and SQLite would store whole: the two would not agree on which unit it names.
  Result<std::vector<SqlRow>> Run(std::string_view sql, const std::vector<SqlValue>& params = {});
  // The unit whose `column` (one of ours, never outside input) is `value`.
  Result<std::optional<UnitRow>> UnitWhere(std::string_view column, std::string_view value);
  // The units a SELECT of kUnitColumns (or a statement RETURNING them) yields.
  Result<std::vector<UnitRow>> UnitsOf(std::string_view sql, const std::vector<SqlValue>& params = {});
  // The one unit a statement RETURNING kUnitColumns yields.
  Result<UnitRow> OneUnit(std::string_view sql, const std::vector<SqlValue>& params);
  // The serial of another unit than `serial` whose `column` is `value`, if any.
  // The units with any of `matches` (column, value), in one statement: a step's lookups in one
  // round trip.
  Result<std::vector<UnitRow>> UnitsMatchingAny(
      const std::vector<std::pair<std::string_view, std::string>>& matches);

  std::mutex mutex_;
  std::unique_ptr<SqlConnection> connection_;
  std::string location_;
  int schema_version_ = 0;
};

template <typename Step>
std::invoke_result_t<Step&> SqlLedger::Transact(std::string_view what, bool write, Durability durability,
                                                Step&& step) {
  std::lock_guard lock(mutex_);
  thread_local std::minstd_rand jitter(std::random_device{}());
  auto give_up = std::chrono::steady_clock::now() + kRetryPeriod;
  for (int attempt = 1;; ++attempt) {
    bool begun = false;  // a write transaction began: its changes may have reached the database
    std::optional<Error> failure;
    if (auto connected = connection_->Connect(); !connected) {
      failure = connected.error();
    } else if (auto began = write ? connection_->Begin(true, durability) : Result<void>(); !began) {
      failure = began.error();
      // Begin may fail part-way (PostgreSQL's lock after its BEGIN): leave no transaction open.
      connection_->Rollback();
    } else {
      begun = write;
      auto result = step();
      if (result && !write) return result;  // a read step is one statement: atomic on its own
      if (result) {
        auto committed = connection_->Commit();
        if (committed) return result;
        failure = committed.error();
      } else {
        failure = result.error();
      }
    }
    if (begun) connection_->Rollback();
    SqlFailure kind = connection_->Classify(*failure);
    // A connection that broke before a write began (or under a read) is made again at once: the
    // database never saw the step.
    bool again = kind == SqlFailure::kRetry || kind == SqlFailure::kUniqueViolation ||
                 (kind == SqlFailure::kConnectionLost && !begun && attempt == 1);
    if (!again || attempt >= kMaxAttempts || std::chrono::steady_clock::now() > give_up) {
      if (failure->domain() != ErrorDomain::kDatabase) return Fail(std::move(*failure));
      return Fail(std::move(*failure).WithContext(fmt::format("{} in the ledger {}", what, location_)));
    }
    // Contention: back off a little, more each time, at random so that rivals do not meet again.
    std::this_thread::sleep_for(std::chrono::microseconds(jitter() % (500u << std::min(attempt, 6))));
  }
}

Result<void> SqlLedger::Migrate(int target_version) {
  std::vector<Migration> migrations = Migrations(connection_->dialect());
  auto applied = Write("migrating the schema", [&]() -> Result<int> {
    IDEVID_TRY(Run(fmt::format(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at {} NOT NULL)",
        connection_->dialect().integer)));
    IDEVID_ASSIGN_OR_RETURN(auto rows, Run("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
    int current = static_cast<int>(IntegerOf(rows.at(0).at(0)).value_or(0));
    if (current > LatestLedgerSchemaVersion()) {
      return Fail(ErrorDomain::kDatabase, kLedgerOwnError,
                  fmt::format("its schema is at version {}, newer than this program knows ({}): a newer "
                              "program has migrated it; use that version of idevid",
                              current, LatestLedgerSchemaVersion()));
    }
    for (const Migration& migration : migrations) {
      if (migration.version <= current || migration.version > target_version) continue;
      for (const std::string& statement : migration.statements) IDEVID_TRY(Run(statement));
      IDEVID_TRY(Run("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
                     {std::int64_t{migration.version}, Millis(LedgerClock::now())}));
      current = migration.version;
    }
    return current;
  });
  if (!applied) return Fail(applied.error());
  schema_version_ = *applied;
  return {};
}

Result<std::vector<SqlRow>> SqlLedger::Run(std::string_view sql, const std::vector<SqlValue>& params) {
  for (const SqlValue& value : params) {
    const auto* text = std::get_if<std::string>(&value);
    if (text && text->find('\0') != std::string::npos) {
      return UsageError(UsageCode::kInvalidArgument,
                        fmt::format("{} contains a NUL byte, which the ledger does not store: fix the input",
                                    QuotedDisplayText(*text)));
    }
  }
  return connection_->Query(sql, params);
}

Result<std::vector<UnitRow>> SqlLedger::UnitsOf(std::string_view sql, const std::vector<SqlValue>& params) {
  IDEVID_ASSIGN_OR_RETURN(auto rows, Run(sql, params));
  std::vector<UnitRow> units;
  units.reserve(rows.size());
  for (const SqlRow& row : rows) {
    IDEVID_ASSIGN_OR_RETURN(UnitRow unit, UnitFromRow(row, location_));
    units.push_back(std::move(unit));
  }
  return units;
}

Result<UnitRow> SqlLedger::OneUnit(std::string_view sql, const std::vector<SqlValue>& params) {
  IDEVID_ASSIGN_OR_RETURN(auto units, UnitsOf(sql, params));
  if (units.size() != 1) {
    return Fail(ErrorDomain::kDatabase, kLedgerOwnError,
                fmt::format("a statement changed {} rows instead of one; check the database's triggers",
                            units.size()));
  }
  return std::move(units.front());
}

Result<std::optional<UnitRow>> SqlLedger::UnitWhere(std::string_view column, std::string_view value) {
  IDEVID_ASSIGN_OR_RETURN(
      auto units,
      UnitsOf(fmt::format("SELECT {} FROM units WHERE {} = $1", kUnitColumns, column), {std::string(value)}));
  if (units.empty()) return std::optional<UnitRow>();
  return std::optional<UnitRow>(std::move(units.front()));
}

Result<std::vector<UnitRow>> SqlLedger::UnitsMatchingAny(
    const std::vector<std::pair<std::string_view, std::string>>& matches) {
  std::vector<std::string> conditions;
  std::vector<SqlValue> values;
  for (const auto& [column, value] : matches) {
    conditions.push_back(fmt::format("{} = ${}", column, conditions.size() + 1));
    values.emplace_back(value);
  }
  return UnitsOf(fmt::format("SELECT {} FROM units WHERE {}", kUnitColumns, fmt::join(conditions, " OR ")),
                 values);
}

// A copy of the first of `units` that `is` holds for.
template <typename Predicate>
std::optional<UnitRow> FirstUnit(const std::vector<UnitRow>& units, Predicate is) {
  auto found = std::find_if(units.begin(), units.end(), is);
  if (found == units.end()) return std::nullopt;
  return *found;
}

Result<LedgerAnswer<Reservation>> SqlLedger::Reserve(const ReserveRequest& request) {
  IDEVID_TRY(
      Require(!request.serial.empty() && !request.ek_sha256.empty(), "a serial and an EK hash", "Reserve"));
  using Answer = LedgerAnswer<Reservation>;
  // Nothing depends on a reservation until RecordIssued, whose durable commit carries it to disk
  // first: a crash that undoes it leaves no certificate (and the TPM's new key, if any, is
  // replaced with --force).
  return WriteWithNextDurable("reserving " + QuotedDisplayText(request.serial), [&]() -> Result<Answer> {
    IDEVID_ASSIGN_OR_RETURN(auto related,
                            UnitsMatchingAny({{"serial", request.serial}, {"ek_sha256", request.ek_sha256}}));
    auto held = FirstUnit(related, [&](const UnitRow& u) { return u.serial == request.serial; });
    if (held && held->ek_sha256 != request.ek_sha256) {
      return Refuse<Reservation>(
          ledger_refusal::kClone,
          fmt::format(
              "serial {} belongs to another TPM (EK sha256 {}, station {}), not to this one (EK sha256 "
              "{}): this unit may be a clone, or its serial label is wrong",
              QuotedDisplayText(request.serial), HashPrefix(held->ek_sha256),
              QuotedDisplayText(held->station), HashPrefix(request.ek_sha256)));
    }
    if (held && held->revocation) return Refuse<Reservation>(ledger_refusal::kRevoked, RevokedDetail(*held));
    if (held && held->state == UnitState::kCommitted) {
      return Refuse<Reservation>(
          ledger_refusal::kSerialIssued,
          fmt::format("serial {} was committed on this TPM at station {} on {}: the unit "
                      "has its identity already",
                      QuotedDisplayText(request.serial), QuotedDisplayText(held->station),
                      UtcTimestamp(held->committed_at.value_or(held->reserved_at))));
    }
    if (held) {
      // An earlier attempt on this TPM that did not commit: resume it at this station, for the model
      // asked now (the certificate issued next names it).
      IDEVID_ASSIGN_OR_RETURN(
          UnitRow row,
          OneUnit(fmt::format("UPDATE units SET station = $2, model = $3 WHERE serial = $1 RETURNING {}",
                              kUnitColumns),
                  {request.serial, request.station, request.model}));
      return Answer(Reservation{.resumed = true, .row = std::move(row)});
    }
    // Another row came by its EK: this TPM's earlier unit.
    auto other = FirstUnit(related, [&](const UnitRow& u) { return u.serial != request.serial; });
    if (other && !other->revocation) {
      return Refuse<Reservation>(ledger_refusal::kTpmHasSerial, TpmHasSerialDetail(*other, request.serial));
    }
    if (other) {
      // A revoked unit's TPM, serialised again: the old row keeps its history and certificate. Its
      // IDevID key (a primary key: the same TPM derives it again) may be certified anew unless it
      // was revoked as compromised (RFC 5280 5.3.1 keyCompromise): such a key stays refused.
      bool key_compromised = other->revocation->reason == RevocationReason::kKeyCompromise;
      IDEVID_TRY(
          Run(key_compromised
                  ? "UPDATE units SET retired_ek_sha256 = ek_sha256, ek_sha256 = NULL WHERE serial = $1"
                  : "UPDATE units SET retired_ek_sha256 = ek_sha256, ek_sha256 = NULL, "
                    "idevid_key_sha256 = NULL WHERE serial = $1",
              {other->serial}));
    }
    IDEVID_ASSIGN_OR_RETURN(
        UnitRow row, OneUnit(fmt::format("INSERT INTO units (serial, model, station, state, ek_sha256, "
                                         "reserved_at) VALUES ($1, $2, $3, 'reserved', $4, $5) RETURNING {}",
                                         kUnitColumns),
                             {request.serial, request.model, request.station, request.ek_sha256,
                              Millis(LedgerClock::now())}));
    return Answer(Reservation{.resumed = false, .row = std::move(row)});
  });
}

Result<LedgerAnswer<UnitRow>> SqlLedger::RecordIssued(const IssuedRequest& request) {
  IDEVID_TRY(Require(
      !request.serial.empty() && !request.ek_sha256.empty() && !request.idevid_key_sha256.empty() &&
          !request.certificate_serial.empty() && !request.certificate.empty(),
      "a serial, an EK hash, an IDevID key hash, a certificate serial and the certificate", "RecordIssued"));
  using Answer = LedgerAnswer<UnitRow>;
  return Write("recording the certificate of " + QuotedDisplayText(request.serial), [&]() -> Result<Answer> {
    IDEVID_ASSIGN_OR_RETURN(auto related,
                            UnitsMatchingAny({{"serial", request.serial},
                                              {"idevid_key_sha256", request.idevid_key_sha256},
                                              {"certificate_serial", request.certificate_serial}}));
    auto unit = FirstUnit(related, [&](const UnitRow& u) { return u.serial == request.serial; });
    if (!unit || unit->ek_sha256 != request.ek_sha256) {
      return Refuse<UnitRow>(
          ledger_refusal::kWrongState,
          fmt::format("serial {} has no reservation by this TPM (EK sha256 {}): reserve it first",
                      QuotedDisplayText(request.serial), HashPrefix(request.ek_sha256)));
    }
    if (unit->revocation) return Refuse<UnitRow>(ledger_refusal::kRevoked, RevokedDetail(*unit));
    if (unit->state == UnitState::kCommitted) {
      return Refuse<UnitRow>(
          ledger_refusal::kWrongState,
          fmt::format("unit {} is committed: its certificate (serial {}) cannot change",
                      QuotedDisplayText(request.serial), DisplayText(unit->certificate_serial)));
    }
    if (unit->state == UnitState::kIssued && unit->idevid_key_sha256 == request.idevid_key_sha256 &&
        unit->certificate_serial == request.certificate_serial && unit->certificate == request.certificate) {
      return Answer(std::move(*unit));  // a retry after a lost answer
    }
    auto key_holder = FirstUnit(related, [&](const UnitRow& u) {
      return u.serial != request.serial && u.idevid_key_sha256 == request.idevid_key_sha256;
    });
    if (key_holder) {
      return Refuse<UnitRow>(
          ledger_refusal::kDuplicateKey,
          fmt::format("the IDevID key (sha256 {}) is the key of unit {}, not of {}",
                      HashPrefix(request.idevid_key_sha256), QuotedDisplayText(key_holder->serial),
                      QuotedDisplayText(request.serial)));
    }
    auto serial_holder = FirstUnit(related, [&](const UnitRow& u) {
      return u.serial != request.serial && u.certificate_serial == request.certificate_serial;
    });
    if (serial_holder) {
      return Refuse<UnitRow>(
          ledger_refusal::kDuplicateKey,
          fmt::format("certificate serial {} was issued to unit {}, not to {}",
                      QuotedDisplayText(request.certificate_serial), QuotedDisplayText(serial_holder->serial),
                      QuotedDisplayText(request.serial)));
    }
    // A unique violation here means a rival committed in between: the transaction runs again and
    // the checks above name the holder.
    IDEVID_ASSIGN_OR_RETURN(
        UnitRow row,
        OneUnit(fmt::format("UPDATE units SET state = 'issued', station = $2, idevid_key_sha256 = "
                            "$3, certificate_serial = $4, certificate = $5, issued_at = $6 "
                            "WHERE serial = $1 RETURNING {}",
                            kUnitColumns),
                {request.serial, request.station, request.idevid_key_sha256, request.certificate_serial,
                 request.certificate, Millis(LedgerClock::now())}));
    return Answer(std::move(row));
  });
}

Result<LedgerAnswer<UnitRow>> SqlLedger::Commit(const CommitRequest& request) {
  IDEVID_TRY(
      Require(!request.serial.empty() && !request.ek_sha256.empty(), "a serial and an EK hash", "Commit"));
  if (request.line_check != "PASS" && request.line_check != "FAIL") {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("the line check's outcome is {}; the ledger records PASS or FAIL",
                                  QuotedDisplayText(request.line_check)));
  }
  using Answer = LedgerAnswer<UnitRow>;
  return Write("committing " + QuotedDisplayText(request.serial), [&]() -> Result<Answer> {
    IDEVID_ASSIGN_OR_RETURN(auto unit, UnitWhere("serial", request.serial));
    if (!unit || unit->ek_sha256 != request.ek_sha256) {
      return Refuse<UnitRow>(ledger_refusal::kWrongState,
                             fmt::format("serial {} was not issued to this TPM (EK sha256 {})",
                                         QuotedDisplayText(request.serial), HashPrefix(request.ek_sha256)));
    }
    if (unit->state == UnitState::kCommitted) return Answer(std::move(*unit));  // a retry after a lost answer
    if (unit->revocation) return Refuse<UnitRow>(ledger_refusal::kRevoked, RevokedDetail(*unit));
    if (unit->state != UnitState::kIssued) {
      return Refuse<UnitRow>(ledger_refusal::kWrongState,
                             fmt::format("unit {} is reserved but has no certificate: record the issued "
                                         "certificate before committing",
                                         QuotedDisplayText(request.serial)));
    }
    IDEVID_ASSIGN_OR_RETURN(
        UnitRow row,
        OneUnit(fmt::format("UPDATE units SET state = 'committed', station = $2, line_check = $3, "
                            "record = $4, committed_at = $5 WHERE serial = $1 RETURNING {}",
                            kUnitColumns),
                {request.serial, request.station, request.line_check,
                 // invalid UTF-8 in the record becomes U+FFFD rather than an exception
                 request.record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                 Millis(LedgerClock::now())}));
    return Answer(std::move(row));
  });
}

Result<void> SqlLedger::Release(std::string_view serial, std::string_view ek_sha256) {
  return Write("releasing " + QuotedDisplayText(serial), [&]() -> Result<void> {
    IDEVID_TRY(Run("DELETE FROM units WHERE serial = $1 AND ek_sha256 = $2 AND state = 'reserved'",
                   {std::string(serial), std::string(ek_sha256)}));
    return {};
  });
}

Result<LedgerAnswer<UnitRow>> SqlLedger::Revoke(std::string_view serial, RevocationReason reason,
                                                LedgerClock::time_point since) {
  using Answer = LedgerAnswer<UnitRow>;
  return Write("revoking " + QuotedDisplayText(serial), [&]() -> Result<Answer> {
    IDEVID_ASSIGN_OR_RETURN(auto unit, UnitWhere("serial", serial));
    if (!unit) {
      return Refuse<UnitRow>(ledger_refusal::kUnknownSerial,
                             fmt::format("no unit has serial {}", QuotedDisplayText(serial)));
    }
    if (unit->revocation) return Answer(std::move(*unit));  // the first reason and time stand
    if (unit->state == UnitState::kReserved) {
      return Refuse<UnitRow>(
          ledger_refusal::kWrongState,
          fmt::format("unit {} is reserved and has no certificate to revoke; release it instead",
                      QuotedDisplayText(serial)));
    }
    IDEVID_ASSIGN_OR_RETURN(
        UnitRow row,
        OneUnit(fmt::format(
                    "UPDATE units SET revocation_reason = $2, revoked_at = $3 WHERE serial = $1 RETURNING {}",
                    kUnitColumns),
                {std::string(serial), static_cast<std::int64_t>(reason), Millis(since)}));
    return Answer(std::move(row));
  });
}

Result<std::uint64_t> SqlLedger::NextCrlNumber() {
  return Write("taking the next CRL number", [&]() -> Result<std::uint64_t> {
    IDEVID_ASSIGN_OR_RETURN(auto rows,
                            Run("UPDATE crl_number SET last = last + 1 WHERE id = 1 RETURNING last"));
    if (rows.size() != 1 || !IntegerOf(rows[0].at(0))) {
      return Fail(ErrorDomain::kDatabase, kLedgerOwnError,
                  "the CRL number counter is missing; restore the database from a backup");
    }
    return static_cast<std::uint64_t>(*IntegerOf(rows[0].at(0)));
  });
}

// The part of a spec that names its kind ("mysql:"), never more: the rest may hold a password.
std::string SpecKind(std::string_view spec) {
  std::size_t colon = spec.find(':');
  if (colon == std::string_view::npos || colon > 20) return "no \"kind:\" prefix";
  return "the kind " + QuotedDisplayText(spec.substr(0, colon + 1));
}

}  // namespace

int LatestLedgerSchemaVersion() { return 3; }

bool IsPostgresSpec(std::string_view spec) {
  return spec.starts_with("postgresql://") || spec.starts_with("postgres://") ||
         (!spec.starts_with("sqlite:") && spec.find('=') != std::string_view::npos);
}

Result<std::unique_ptr<SqlConnection>> OpenSqlConnection(const std::string& spec) {
  if (spec.starts_with("sqlite:")) {
    std::string path = spec.substr(std::string_view("sqlite:").size());
    if (path.empty()) {
      return UsageError(UsageCode::kMissingArgument,
                        "the ledger spec \"sqlite:\" names no file: use sqlite:PATH");
    }
    return OpenSqliteConnection(path);
  }
  if (IsPostgresSpec(spec)) return OpenPostgresConnection(spec);
  return UsageError(
      UsageCode::kInvalidArgument,
      fmt::format("the ledger spec has {}: use sqlite:PATH, postgresql://USER@HOST/DB or a libpq "
                  "keyword/value string (\"host=/run/pg dbname=line\")",
                  SpecKind(spec)));
}

Result<std::unique_ptr<Ledger>> OpenSqlLedger(std::unique_ptr<SqlConnection> connection, int schema_version) {
  auto ledger = std::make_unique<SqlLedger>(std::move(connection));
  IDEVID_TRY(ledger->Migrate(schema_version));
  return std::unique_ptr<Ledger>(std::move(ledger));
}

Result<std::unique_ptr<Ledger>> OpenLedger(const std::string& spec) {
  IDEVID_ASSIGN_OR_RETURN(auto connection, OpenSqlConnection(spec));
  return OpenSqlLedger(std::move(connection));
}

}  // namespace idevid
