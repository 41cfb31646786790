// The ledger on an SQL database: the steps' logic, the schema and its migrations are written once
// (core/ledger_sql.cc); a back end (core/ledger_sqlite.cc, core/ledger_postgres.cc) only runs
// statements and hands rows back.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/ledger.h"
#include "core/result.h"
#include "core/x509.h"

namespace idevid {

// A statement parameter or a column value: NULL, a 64-bit integer, text or bytes.
using SqlValue = std::variant<std::monostate, std::int64_t, std::string, Bytes>;
using SqlRow = std::vector<SqlValue>;

// What the ledger does about a failed statement or transaction.
enum class SqlFailure {
  kFatal,            // report it
  kRetry,            // lost a race (busy, serialization failure, deadlock): run the transaction again
  kUniqueViolation,  // a UNIQUE constraint: run again, the step then sees the other unit's row
  kConnectionLost,   // the connection broke: it is made again on the next call
};

// The column types that differ between back ends.
struct SqlDialect {
  std::string_view key_text;  // text compared byte by byte (serials and hashes)
  std::string_view integer;   // 64-bit signed
  std::string_view blob;      // bytes
};

// The kDatabase code of an error the ledger finds itself, with no back-end code: the database's
// schema is newer than this program, or a row holds what no version of the program writes.
inline constexpr std::uint64_t kLedgerOwnError = 0;

// One connection to the ledger's database. Not thread-safe (the ledger serializes its calls).
// Every failure is kDatabase with the back end's code and the location, never a password.
// How soon a write transaction's commit is on disk.
enum class Durability {
  kNow,  // on disk when the commit returns
  // Kept when the process ends, but a crash of the OS (SQLite) or of the server (PostgreSQL) may
  // undo it until a later kNow commit on the database carries it to disk (both write their log
  // in order); never torn. For a step whose loss leaves nothing that depends on it.
  kWithNextDurable,
};

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;

  // "sqlite:PATH", or the PostgreSQL connection without its password.
  virtual std::string location() const = 0;
  virtual const SqlDialect& dialect() const = 0;
  // Makes sure the connection is up: PostgreSQL connects again after a broken connection.
  virtual Result<void> Connect() = 0;
  // Starts a transaction; `write` takes the ledger's write lock at once (SQLite BEGIN IMMEDIATE,
  // PostgreSQL an advisory lock), so that write steps take turns and a step's reads and writes are
  // one decision. (The ledger's read steps are one statement each and start none.)
  // `durability` matters to a write transaction only.
  virtual Result<void> Begin(bool write, Durability durability) = 0;
  virtual Result<void> Commit() = 0;
  // Ends the transaction, if any, without its changes; a broken connection has none.
  virtual void Rollback() = 0;
  // Runs one statement with parameters $1, $2, ... and returns its rows.
  virtual Result<std::vector<SqlRow>> Query(std::string_view sql,
                                            const std::vector<SqlValue>& params = {}) = 0;
  // What the ledger may do about `error` (one this connection returned).
  virtual SqlFailure Classify(const Error& error) const = 0;
};

// The connection `spec` names (see OpenLedger), not yet migrated. kUsage for a spec of no known
// kind; kDatabase when the database cannot be reached.
Result<std::unique_ptr<SqlConnection>> OpenSqlConnection(const std::string& spec);
// "sqlite:PATH" with "sqlite:" removed: the SQLite file, created when missing.
Result<std::unique_ptr<SqlConnection>> OpenSqliteConnection(const std::string& path);
// A PostgreSQL URL or keyword/value string (libpq's syntax). kUsage when libpq cannot parse it.
Result<std::unique_ptr<SqlConnection>> OpenPostgresConnection(const std::string& spec);
// The kDatabase code of a PostgreSQL SQLSTATE: its five characters as a base-36 number.
std::uint64_t SqlStateCode(std::string_view sqlstate);

// The PostgreSQL advisory lock (one per database) that the ledger's write steps hold until their
// commit, "idevid" in ASCII: a tool that changes the units by hand takes it too.
inline constexpr std::int64_t kPostgresWriteLockKey = 0x696465766964;
// Whether `spec` is for PostgreSQL: a postgresql:// or postgres:// URL, or keyword=value pairs.
bool IsPostgresSpec(std::string_view spec);

// The newest schema version this program knows.
int LatestLedgerSchemaVersion();
// The ledger on `connection`, its schema migrated to `schema_version` (the latest unless a test
// builds an older database). kDatabase when the database's schema is newer than the program.
Result<std::unique_ptr<Ledger>> OpenSqlLedger(std::unique_ptr<SqlConnection> connection,
                                              int schema_version = LatestLedgerSchemaVersion());

}  // namespace idevid
