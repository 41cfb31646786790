#include "engine/postgres_instance.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "core/display_text.h"

namespace idevid {
namespace {

// The port only names the socket file (.s.PGSQL.PORT) in the private socket directory: no TCP.
constexpr int kPort = 5432;

struct PgConnCloser {
  void operator()(PGconn* connection) const { PQfinish(connection); }
};
struct PgResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};

// `argv` run as the cluster's owner: setpriv execs (no process in between), so that a server
// started this way has the pid of the child that runs it. The kernel forgets the parent-death
// signal when the user changes; setpriv sets it again afterwards: SIGINT, a fast shutdown, so that
// a server whose owner died (a crashed test) does not run on.
std::vector<std::string> AsUser(const std::string& user, std::vector<std::string> argv) {
  std::vector<std::string> full = {"setpriv",       "--reuid=" + user, "--regid=" + user,
                                   "--init-groups", "--pdeathsig",     "SIGINT"};
  full.insert(full.end(), argv.begin(), argv.end());
  return full;
}

}  // namespace

Result<PostgresInstance> PostgresInstance::Start(const PostgresOptions& options) {
  const passwd* owner = ::getpwnam(options.os_user.c_str());
  if (owner == nullptr) {
    return UsageError(UsageCode::kUnsupported,
                      fmt::format("there is no OS user {} to own a PostgreSQL cluster; install postgresql",
                                  QuotedDisplayText(options.os_user)));
  }
  IDEVID_ASSIGN_OR_RETURN(WorkDir dir, WorkDir::Create("idevid-pg"));
  if (::chown(dir.path().c_str(), owner->pw_uid, owner->pw_gid) != 0) {
    return ErrnoError(errno, fmt::format("cannot give {} to {}", dir.path().string(), options.os_user));
  }
  PostgresInstance instance(options, std::move(dir));
  auto data = instance.dir_->path() / "data";
  IDEVID_ASSIGN_OR_RETURN(
      CommandOutput initdb,
      RunCommand(AsUser(options.os_user, {(options.bin_dir / "initdb").string(), "-D", data.string(),
                                          "--auth=trust", "--username=postgres", "--encoding=UTF8",
                                          "--locale=C", "--no-sync", "--no-instructions"}),
                 {{"LC_ALL", "C"}}, options.start_timeout),
      "initializing a PostgreSQL cluster in {}", data.string());
  if (initdb.exit_status != 0) {
    return Fail(
        ErrorDomain::kProcess, initdb.status_code,
        fmt::format("initdb did not create the cluster in {} (is postgresql 15 installed, may {} write "
                    "in {}?): {}{}",
                    data.string(), options.os_user, instance.dir_->path().string(), initdb.err, initdb.out));
  }
  IDEVID_TRY(instance.StartServer());
  return instance;
}

PostgresInstance::~PostgresInstance() { (void)StopServer(); }

bool PostgresInstance::AcceptsConnections() const {
  std::string spec = AdminSpec() + " connect_timeout=2";
  return PQping(spec.c_str()) == PQPING_OK;
}

Result<void> PostgresInstance::StartServer() {
  if (running()) return {};
  auto log = dir_->path() / "postgres.log";
  std::vector<std::string> argv = {(options_.bin_dir / "postgres").string(),
                                   "-D",
                                   (dir_->path() / "data").string(),
                                   "-k",
                                   dir_->path().string(),
                                   "-p",
                                   std::to_string(kPort),
                                   "-c",
                                   "listen_addresses=",
                                   "-c",
                                   "shared_buffers=16MB",
                                   "-c",
                                   "max_connections=40"};
  if (!options_.fsync) argv.insert(argv.end(), {"-c", "fsync=off", "-c", "full_page_writes=off"});
  IDEVID_ASSIGN_OR_RETURN(server_, ChildProcess::Spawn({.argv = AsUser(options_.os_user, argv), .log = log}));
  if (!PollUntil([&] { return server_.Ended() || AcceptsConnections(); }, options_.start_timeout,
                 std::chrono::milliseconds(20)) ||
      server_.Ended()) {
    std::optional<std::string> ended = server_.Ended();
    std::uint64_t code = server_.status_code().value_or(kProcessDeadline);
    (void)StopServer();
    return Fail(ErrorDomain::kProcess, code,
                fmt::format("postgres did not start: {}; its log {} ends with:\n{}",
                            ended.value_or("it accepted no connection in time"), log.string(), LogTail(log)));
  }
  return {};
}

Result<void> PostgresInstance::StopServer() {
  if (!running()) return {};
  if (server_.Ended()) {
    server_ = ChildProcess();  // reaped: never signal a pid that may be another process's now
    return {};
  }
  pid_t pid = server_.pid();
  // SIGINT is the fast shutdown: clients are disconnected, a checkpoint writes everything out.
  // (SIGTERM, what ChildProcess sends, would wait for every client to leave.)
  ::kill(pid, SIGINT);
  if (PollUntil([&] { return server_.Ended().has_value(); }, std::chrono::seconds(30))) {
    server_ = ChildProcess();
    return {};
  }
  ::kill(pid, SIGQUIT);  // immediate shutdown: ends the server's own children too
  PollUntil([&] { return server_.Ended().has_value(); }, std::chrono::seconds(5));
  std::string how = server_.Stop(std::chrono::seconds(1));
  server_ = ChildProcess();
  return Fail(
      ErrorDomain::kProcess, kProcessDeadline,
      fmt::format("postgres (pid {}) did not end within 30 s of a fast shutdown; it was stopped at once ({})",
                  pid, how));
}

Result<void> PostgresInstance::Restart() {
  IDEVID_TRY(StopServer());
  return StartServer();
}

std::string PostgresInstance::ConnectionSpec(const std::string& dbname) const {
  return fmt::format("host={} port={} dbname={} user=postgres", dir_->path().string(), kPort, dbname);
}

std::string PostgresInstance::ConnectionUrl(const std::string& dbname) const {
  return fmt::format("postgresql://postgres@/{}?host={}&port={}", dbname, dir_->path().string(), kPort);
}

Result<std::string> PostgresInstance::CreateDatabase(const std::string& name) {
  bool plain =
      !name.empty() && name.size() < 60 &&
      std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
  if (!plain) {
    return UsageError(
        UsageCode::kInvalidArgument,
        fmt::format("database name {} is not letters, digits and '_'", QuotedDisplayText(name)));
  }
  std::string admin = AdminSpec();
  std::unique_ptr<PGconn, PgConnCloser> connection(PQconnectdb(admin.c_str()));
  if (PQstatus(connection.get()) != CONNECTION_OK) {
    return Fail(ErrorDomain::kDatabase, 0,
                fmt::format("cannot connect to the private cluster in {}: {}", dir_->path().string(),
                            PQerrorMessage(connection.get())));
  }
  std::unique_ptr<PGresult, PgResultClearer> result(
      PQexec(connection.get(), fmt::format("CREATE DATABASE \"{}\"", name).c_str()));
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
    return Fail(ErrorDomain::kDatabase, state ? std::strtoull(state, nullptr, 36) : 0,
                fmt::format("cannot create database {}: {}", name, PQresultErrorMessage(result.get())));
  }
  return ConnectionSpec(name);
}

}  // namespace idevid
