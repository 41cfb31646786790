// The ledger's PostgreSQL back end, for many stations: the stations' write steps take turns at a
// lock of the ledger's own (as SQLite's stations do at its write lock), so that each step's reads
// and writes are one decision; a step that fails on a unique constraint is run again (the shared
// logic does that); a connection that broke is made again on the next call.
#include <libpq-fe.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/ledger_sql.h"

namespace idevid {
namespace {

// Column types (pg_type OIDs) the ledger reads as integers or bytes.
constexpr Oid kByteaOid = 17, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23;

struct ConnectionCloser {
  void operator()(PGconn* connection) const { PQfinish(connection); }
};
struct ResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
struct OptionsFreer {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};
struct MemoryFreer {
  void operator()(void* memory) const { PQfreemem(memory); }
};
using ConnectionPtr = std::unique_ptr<PGconn, ConnectionCloser>;
using ResultPtr = std::unique_ptr<PGresult, ResultClearer>;

bool IsUrl(std::string_view spec) {
  return spec.starts_with("postgresql://") || spec.starts_with("postgres://");
}

// A URL without the password of its user info and without a password= parameter.
std::string UrlWithoutPassword(std::string_view url) {
  std::size_t authority = url.find("://") + 3;
  std::size_t path = std::min(url.find_first_of("/?", authority), url.size());
  std::string_view host_part = url.substr(authority, path - authority);
  std::string out(url.substr(0, authority));
  if (std::size_t at = host_part.rfind('@'); at != std::string_view::npos) {
    std::string_view user = host_part.substr(0, at);
    out += user.substr(0, user.find(':'));
    out += host_part.substr(at);
  } else {
    out += host_part;
  }
  std::string_view rest = url.substr(path);
  std::size_t query = rest.find('?');
  out += rest.substr(0, query);
  if (query == std::string_view::npos) return out;
  char separator = '?';
  for (std::string_view params = rest.substr(query + 1); !params.empty();) {
    std::size_t amp = params.find('&');
    std::string_view param = params.substr(0, amp);
    if (!param.starts_with("password=")) {
      out += separator;
      out += param;
      separator = '&';
    }
    params = amp == std::string_view::npos ? std::string_view() : params.substr(amp + 1);
  }
  return out;
}

// A keyword/value string rebuilt from its parsed options, without the password.
std::string KeywordsWithoutPassword(const PQconninfoOption* options) {
  std::string out;
  for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    if (option->val == nullptr || std::string_view(option->keyword) == "password") continue;
    std::string value;
    for (char c : std::string_view(option->val)) {
      if (c == '\'' || c == '\\') value += '\\';
      value += c;
    }
    bool quote = value.empty() || value.find_first_of(" \t\n'\\") != std::string::npos;
    out += fmt::format("{}{}={}", out.empty() ? "" : " ", option->keyword, quote ? "'" + value + "'" : value);
  }
  return out;
}

// What a person should do about an SQLSTATE.
std::string_view Advice(std::string_view sqlstate) {
  if (sqlstate.starts_with("08") || sqlstate.starts_with("57P")) {
    return "PostgreSQL is not reachable: check that the server runs and that the ledger spec names it; the "
           "next step connects again";
  }
  if (sqlstate.starts_with("28")) {
    return "the server refused the user: check the user, its password (PGPASSWORD or ~/.pgpass) and "
           "pg_hba.conf";
  }
  if (sqlstate == "3D000") return "the database does not exist: create it (createdb) or fix the ledger spec";
  if (sqlstate == "42501") return "the user may not use the ledger's tables: grant it the rights";
  if (sqlstate.starts_with("53"))
    return "the server is out of disk, memory or connections: free some and retry";
  if (sqlstate.starts_with("40")) return "too many stations raced for the same units: retry";
  if (sqlstate.starts_with("23")) return "the ledger refused a row that would break its constraints";
  return "see the server's log";
}

std::string Trimmed(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

class PostgresConnection final : public SqlConnection {
 public:
  PostgresConnection(std::string spec, std::string location)
      : spec_(std::move(spec)), location_(std::move(location)) {}

  std::string location() const override { return location_; }
  const SqlDialect& dialect() const override {
    static constexpr SqlDialect kPostgres{
        .key_text = "TEXT COLLATE \"C\"", .integer = "BIGINT", .blob = "BYTEA"};
    return kPostgres;
  }
  Result<void> Connect() override;
  Result<void> Begin(bool write, Durability durability) override {
    if (!write) return Run("BEGIN ISOLATION LEVEL READ COMMITTED");
    // One write step at a time: a transaction-level advisory lock, held until the commit. READ
    // COMMITTED: each statement after the lock sees every step committed before it. (SERIALIZABLE
    // would also do, but its page-level checks fail most steps of 4 stations against each other
    // on a ledger's few index pages, and each failure costs a retry.)
    std::string begin = "BEGIN ISOLATION LEVEL READ COMMITTED; ";
    // The commit returns before its WAL record is flushed; the next synchronous commit flushes it.
    if (durability == Durability::kWithNextDurable) begin += "SET LOCAL synchronous_commit = off; ";
    return Run((begin + fmt::format("SELECT pg_advisory_xact_lock({})", kPostgresWriteLockKey)).c_str());
  }
  Result<void> Commit() override { return Run("COMMIT"); }
  void Rollback() override {
    if (connected() && PQtransactionStatus(connection_.get()) != PQTRANS_IDLE) {
      ResultPtr(PQexec(connection_.get(), "ROLLBACK"));
    }
  }
  Result<std::vector<SqlRow>> Query(std::string_view sql, const std::vector<SqlValue>& params) override;
  SqlFailure Classify(const Error& error) const override;

 private:
  bool connected() const { return connection_ && PQstatus(connection_.get()) == CONNECTION_OK; }
  // Runs statements without parameters (several, separated by ';').
  Result<void> Run(const char* sql) {
    if (!connected()) return Failure(nullptr, "the connection is broken");
    ResultPtr result(PQexec(connection_.get(), sql));
    ExecStatusType status = PQresultStatus(result.get());  // of the last statement
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      return Failure(result.get(), "running a statement");
    return {};
  }
  // The name of `sql` prepared on this connection (prepared now when it is not yet): the ledger
  // runs the same few statements again and again, parsed and planned once per connection.
  Result<std::string> Prepared(const std::string& sql);
  // The error of a statement that failed with `result` (null: no answer at all).
  tl::unexpected<Error> Failure(const PGresult* result, std::string_view what) const;

  std::string spec_;  // holds the password, if any: never shown
  std::string location_;
  ConnectionPtr connection_;
  std::map<std::string, std::string, std::less<>> prepared_;  // name by text, on connection_
};

Result<std::string> PostgresConnection::Prepared(const std::string& sql) {
  if (auto found = prepared_.find(sql); found != prepared_.end()) return found->second;
  std::string name = fmt::format("idevid_{}", prepared_.size() + 1);
  ResultPtr result(PQprepare(connection_.get(), name.c_str(), sql.c_str(), 0, nullptr));
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) return Failure(result.get(), "preparing a statement");
  prepared_.emplace(sql, name);
  return name;
}

tl::unexpected<Error> PostgresConnection::Failure(const PGresult* result, std::string_view what) const {
  const char* field = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  // No SQLSTATE: libpq lost the connection (08006) or failed on its side.
  std::string sqlstate = field ? field : (connected() ? "XX000" : "08006");
  std::string message = Trimmed(result ? PQresultErrorMessage(result) : nullptr);
  if (message.empty()) message = Trimmed(PQerrorMessage(connection_.get()));
  return Fail(ErrorDomain::kDatabase, SqlStateCode(sqlstate),
              fmt::format("{}: {} (SQLSTATE {}); {}", what, message, sqlstate, Advice(sqlstate)));
}

Result<void> PostgresConnection::Connect() {
  if (connected()) return {};
  prepared_.clear();  // a new session has none
  if (connection_) {
    PQreset(connection_.get());
  } else {
    // connect_timeout first: a value in the spec itself, expanded from dbname, overrides it.
    const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
    const char* values[] = {"10", "idevid", spec_.c_str(), nullptr};
    connection_.reset(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  }
  if (!connection_) return Fail(ErrorDomain::kDatabase, SqlStateCode("08001"), "libpq is out of memory");
  if (PQstatus(connection_.get()) != CONNECTION_OK) {
    return Fail(ErrorDomain::kDatabase, SqlStateCode("08001"),
                fmt::format("cannot connect: {} (SQLSTATE 08001); {}",
                            Trimmed(PQerrorMessage(connection_.get())), Advice("08001")));
  }
  // CREATE TABLE IF NOT EXISTS and the like would print notices on stderr.
  PQsetNoticeProcessor(
      connection_.get(), [](void*, const char*) {}, nullptr);
  return {};
}

SqlValue ColumnValue(const PGresult* result, int row, int column) {
  if (PQgetisnull(result, row, column)) return std::monostate{};
  const char* text = PQgetvalue(result, row, column);
  switch (PQftype(result, column)) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid: return static_cast<std::int64_t>(std::strtoll(text, nullptr, 10));
    case kByteaOid: {
      std::size_t length = 0;
      std::unique_ptr<unsigned char, MemoryFreer> bytes(
          PQunescapeBytea(reinterpret_cast<const unsigned char*>(text), &length));
      if (!bytes) return Bytes();
      return Bytes(bytes.get(), bytes.get() + length);
    }
    default: return std::string(text, static_cast<std::size_t>(PQgetlength(result, row, column)));
  }
}

Result<std::vector<SqlRow>> PostgresConnection::Query(std::string_view sql,
                                                      const std::vector<SqlValue>& params) {
  if (!connected()) return Failure(nullptr, "the connection is broken");
  std::vector<std::string> numbers(params.size());
  std::vector<const char*> values(params.size(), nullptr);
  std::vector<int> lengths(params.size(), 0), formats(params.size(), 0);
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (const auto* number = std::get_if<std::int64_t>(&params[i])) {
      numbers[i] = std::to_string(*number);
      values[i] = numbers[i].c_str();
    } else if (const auto* text = std::get_if<std::string>(&params[i])) {
      values[i] = text->c_str();
    } else if (const auto* bytes = std::get_if<Bytes>(&params[i])) {
      values[i] = bytes->empty() ? "" : reinterpret_cast<const char*>(bytes->data());  // null would be NULL
      lengths[i] = static_cast<int>(bytes->size());
      formats[i] = 1;  // binary: bytea as is
    }
  }
  IDEVID_ASSIGN_OR_RETURN(std::string name, Prepared(std::string(sql)));
  ResultPtr result(PQexecPrepared(connection_.get(), name.c_str(), static_cast<int>(params.size()),
                                  values.data(), lengths.data(), formats.data(), /*resultFormat=*/0));
  ExecStatusType status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK) return std::vector<SqlRow>();
  if (status != PGRES_TUPLES_OK) return Failure(result.get(), "running a statement");
  std::vector<SqlRow> rows;
  for (int row = 0; row < PQntuples(result.get()); ++row) {
    SqlRow values_of_row;
    for (int column = 0; column < PQnfields(result.get()); ++column) {
      values_of_row.push_back(ColumnValue(result.get(), row, column));
    }
    rows.push_back(std::move(values_of_row));
  }
  return rows;
}

SqlFailure PostgresConnection::Classify(const Error& error) const {
  if (error.domain() != ErrorDomain::kDatabase) return SqlFailure::kFatal;
  if (!connected()) return SqlFailure::kConnectionLost;
  std::uint64_t code = error.code();
  if (code == SqlStateCode("40001") || code == SqlStateCode("40P01")) return SqlFailure::kRetry;
  // Two stations creating the schema at once: the second sees the first's table appear.
  if (code == SqlStateCode("42P07")) return SqlFailure::kRetry;
  if (code == SqlStateCode("23505")) return SqlFailure::kUniqueViolation;
  return SqlFailure::kFatal;
}

}  // namespace

std::uint64_t SqlStateCode(std::string_view sqlstate) {
  return std::strtoull(std::string(sqlstate).c_str(), nullptr, 36);
}

Result<std::unique_ptr<SqlConnection>> OpenPostgresConnection(const std::string& spec) {
  char* parse_error = nullptr;
  std::unique_ptr<PQconninfoOption, OptionsFreer> options(PQconninfoParse(spec.c_str(), &parse_error));
  if (!options) {
    PQfreemem(parse_error);  // its text may quote part of a password: not shown
    return UsageError(
        UsageCode::kInvalidArgument,
        "the ledger spec is not a PostgreSQL connection: use postgresql://USER@HOST/DB or libpq "
        "keyword=value pairs (values with blanks in single quotes)");
  }
  std::string location = IsUrl(spec) ? UrlWithoutPassword(spec) : KeywordsWithoutPassword(options.get());
  auto connection = std::make_unique<PostgresConnection>(spec, location);
  IDEVID_TRY(connection->Connect(), "opening the ledger {}", location);
  return std::unique_ptr<SqlConnection>(std::move(connection));
}

}  // namespace idevid
