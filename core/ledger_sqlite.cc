// The ledger's SQLite back end: one file, WAL mode so that readers do not wait for a writer, a
// short busy wait so that stations sharing the file take turns, and BEGIN IMMEDIATE for writes so
// that a step's read and write are one decision.
#include <sqlite3.h>

#include <charconv>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/ledger_sql.h"

namespace idevid {
namespace {

// How long a step waits for another process's write transaction before it fails.
constexpr int kBusyTimeoutMs = 10000;

struct DatabaseCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};
using DatabasePtr = std::unique_ptr<sqlite3, DatabaseCloser>;
using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// Resets a cached statement when a query is done with it, so that it holds no read lock.
struct StatementReset {
  sqlite3_stmt* statement;
  ~StatementReset() {
    sqlite3_reset(statement);
    sqlite3_clear_bindings(statement);
  }
};

// What a person should do about an SQLite result code.
std::string_view Advice(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "another process held the ledger's write lock too long; retry, and look for a station stuck in "
             "a "
             "step";
    case SQLITE_CANTOPEN: return "check that the directory exists and that this user may write in it";
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return "this user may not write the ledger file; check its permissions";
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return "the file is not an intact SQLite ledger; restore it from a backup";
    case SQLITE_FULL:
    case SQLITE_IOERR: return "the disk failed or is full; free space or repair it, then retry";
    case SQLITE_CONSTRAINT: return "the ledger refused a row that would break its constraints";
    default: return "check the ledger file";
  }
}

class SqliteConnection final : public SqlConnection {
 public:
  SqliteConnection(DatabasePtr db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}

  std::string location() const override { return "sqlite:" + path_; }
  const SqlDialect& dialect() const override {
    static constexpr SqlDialect kSqlite{.key_text = "TEXT", .integer = "INTEGER", .blob = "BLOB"};
    return kSqlite;
  }
  Result<void> Connect() override { return {}; }
  Result<void> Begin(bool write, Durability durability) override {
    if (write && durability != durability_) {
      IDEVID_TRY(
          Run(durability == Durability::kNow ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
      durability_ = durability;
    }
    return Run(write ? "BEGIN IMMEDIATE" : "BEGIN");
  }
  Result<void> Commit() override { return Run("COMMIT"); }
  void Rollback() override {
    if (!sqlite3_get_autocommit(db_.get())) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Result<std::vector<SqlRow>> Query(std::string_view sql, const std::vector<SqlValue>& params) override;
  SqlFailure Classify(const Error& error) const override {
    if (error.domain() != ErrorDomain::kDatabase) return SqlFailure::kFatal;
    auto code = static_cast<int>(error.code());
    if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED) return SqlFailure::kRetry;
    if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY)
      return SqlFailure::kUniqueViolation;
    return SqlFailure::kFatal;
  }

  // An error for result `code` of the last call on this connection.
  tl::unexpected<Error> Failure(int code, std::string_view what) const {
    return Fail(ErrorDomain::kDatabase, static_cast<std::uint64_t>(code),
                fmt::format("{}: {} ({}, SQLite code {}); {}", what, sqlite3_errmsg(db_.get()),
                            sqlite3_errstr(code), code, Advice(code)));
  }

  Result<void> Run(const char* sql) {
    int code = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
    if (code != SQLITE_OK) return Failure(code, sql);
    return {};
  }

 private:
  Durability durability_ = Durability::kNow;  // synchronous=FULL, set when opened
  Result<sqlite3_stmt*> Prepare(std::string_view sql);
  Result<void> Bind(sqlite3_stmt* statement, const std::vector<SqlValue>& params);

  DatabasePtr db_;
  std::string path_;
  // Prepared statements by their text; finalized before the database closes (declared after it).
  std::map<std::string, StatementPtr, std::less<>> statements_;
};

Result<sqlite3_stmt*> SqliteConnection::Prepare(std::string_view sql) {
  if (auto found = statements_.find(sql); found != statements_.end()) return found->second.get();
  sqlite3_stmt* raw = nullptr;
  int code = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
  StatementPtr statement(raw);
  if (code != SQLITE_OK) return Failure(code, "preparing a statement");
  return statements_.emplace(std::string(sql), std::move(statement)).first->second.get();
}

// Binds parameter $N to params[N-1].
Result<void> SqliteConnection::Bind(sqlite3_stmt* statement, const std::vector<SqlValue>& params) {
  for (int i = 1; i <= sqlite3_bind_parameter_count(statement); ++i) {
    const char* named = sqlite3_bind_parameter_name(statement, i);  // null for a bare '?'
    std::string_view name = named ? named : "?";
    std::size_t n = 0;
    auto parsed = std::from_chars(name.data() + 1, name.data() + name.size(), n);
    if (!name.starts_with('$') || parsed.ec != std::errc() || n < 1 || n > params.size()) {
      return Fail(ErrorDomain::kDatabase, SQLITE_RANGE,
                  fmt::format("statement parameter {} has no value", QuotedDisplayText(name)));
    }
    const SqlValue& value = params[n - 1];
    int code = SQLITE_OK;
    if (const auto* number = std::get_if<std::int64_t>(&value)) {
      code = sqlite3_bind_int64(statement, i, *number);
    } else if (const auto* text = std::get_if<std::string>(&value)) {
      code = sqlite3_bind_text(statement, i, text->data(), static_cast<int>(text->size()), SQLITE_TRANSIENT);
    } else if (const auto* bytes = std::get_if<Bytes>(&value)) {
      code =
          sqlite3_bind_blob(statement, i, bytes->data(), static_cast<int>(bytes->size()), SQLITE_TRANSIENT);
    } else {
      code = sqlite3_bind_null(statement, i);
    }
    if (code != SQLITE_OK) return Failure(code, "binding a statement parameter");
  }
  return {};
}

SqlValue ColumnValue(sqlite3_stmt* statement, int column) {
  switch (sqlite3_column_type(statement, column)) {
    case SQLITE_NULL: return std::monostate{};
    case SQLITE_INTEGER: return static_cast<std::int64_t>(sqlite3_column_int64(statement, column));
    case SQLITE_BLOB: {
      const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(statement, column));
      return Bytes(data, data + sqlite3_column_bytes(statement, column));
    }
    default: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, column));
      if (text == nullptr) return std::string();
      return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(statement, column)));
    }
  }
}

Result<std::vector<SqlRow>> SqliteConnection::Query(std::string_view sql,
                                                    const std::vector<SqlValue>& params) {
  IDEVID_ASSIGN_OR_RETURN(sqlite3_stmt * statement, Prepare(sql));
  StatementReset reset{statement};
  IDEVID_TRY(Bind(statement, params));
  std::vector<SqlRow> rows;
  for (;;) {
    int code = sqlite3_step(statement);
    if (code == SQLITE_DONE) return rows;
    if (code != SQLITE_ROW) return Failure(code, "running a statement");
    SqlRow row;
    for (int column = 0; column < sqlite3_column_count(statement); ++column) {
      row.push_back(ColumnValue(statement, column));
    }
    rows.push_back(std::move(row));
  }
}

// Waits for a lock in short steps, for kBusyTimeoutMs at most: a station holds the write lock for
// about a millisecond a step, and SQLite's own busy timeout sleeps from 1 ms up to 100 ms at a
// time, which leaves the lock idle while stations sleep.
int WaitBriefly(void*, int count) {
  thread_local std::chrono::steady_clock::time_point since;
  auto now = std::chrono::steady_clock::now();
  if (count == 0) since = now;
  if (now - since >= std::chrono::milliseconds(kBusyTimeoutMs)) return 0;
  std::this_thread::sleep_for(std::chrono::microseconds(count < 10 ? 50 : 250));
  return 1;
}

// Switches a new connection to WAL. Another process that is switching the same new file at the
// same moment makes it SQLITE_BUSY without calling the busy handler: tried again, for
// kBusyTimeoutMs at most.
Result<void> UseWal(SqliteConnection& connection) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (;;) {
    auto wal = connection.Run("PRAGMA journal_mode=WAL");
    if (wal || (wal.error().code() & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() > give_up) {
      return wal;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

Result<std::unique_ptr<SqlConnection>> OpenSqliteConnection(const std::string& path) {
  sqlite3* raw = nullptr;
  int code = sqlite3_open_v2(path.c_str(), &raw,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DatabasePtr db(raw);
  if (code != SQLITE_OK) {
    return Fail(ErrorDomain::kDatabase, static_cast<std::uint64_t>(code),
                fmt::format("cannot open the ledger sqlite:{}: {} (SQLite code {}); {}", path,
                            raw ? sqlite3_errmsg(raw) : sqlite3_errstr(code), code, Advice(code)));
  }
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_handler(db.get(), WaitBriefly, nullptr);
  auto connection = std::make_unique<SqliteConnection>(std::move(db), path);
  // WAL: readers never wait for the writer; synchronous=FULL keeps every committed step on disk
  // (no certificate leaves the factory without its row); a kWithNextDurable step commits with
  // synchronous=NORMAL, in the WAL the next FULL commit syncs.
  auto wal = UseWal(*connection).and_then([&] { return connection->Run("PRAGMA synchronous=FULL"); });
  if (!wal) {
    return Fail(wal.error().WithContext("opening the ledger " + connection->location()));
  }
  return std::unique_ptr<SqlConnection>(std::move(connection));
}

}  // namespace idevid
