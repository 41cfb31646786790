// A private PostgreSQL 15 cluster for tests and benchmarks of the ledger: its own data directory
// and Unix socket in a temporary directory, no TCP port, trust authentication for the `postgres`
// user. PostgreSQL refuses to run as root, so the cluster belongs to the `postgres` user; the
// server is this process's child (its pid is the server's), stopped by pid.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "core/result.h"
#include "core/work_dir.h"
#include "engine/process.h"

namespace idevid {

struct PostgresOptions {
  std::filesystem::path bin_dir = "/usr/lib/postgresql/15/bin";  // initdb and postgres
  std::string os_user = "postgres";  // the cluster's owner (PostgreSQL does not run as root)
  std::chrono::milliseconds start_timeout{60000};
  // A throwaway cluster skips fsync unless asked; a fast shutdown still writes everything out.
  bool fsync = false;
};

// A running cluster: move-only; the server is stopped (fast shutdown) and the directory removed
// when it is destroyed. Nothing is left running: the server also shuts down when the thread that
// started it ends (a parent-death signal), so start it on a thread that outlives its use.
class PostgresInstance {
 public:
  // Creates the directory (owned by options.os_user), runs initdb and starts the server, ready
  // when it returns (about 1-3 s). kProcess naming the program that failed and showing its log;
  // kIo when the directory cannot be made; kUsage when the OS user does not exist.
  static Result<PostgresInstance> Start(const PostgresOptions& options = {});

  PostgresInstance(PostgresInstance&& other) noexcept = default;
  PostgresInstance& operator=(PostgresInstance&&) = delete;
  PostgresInstance(const PostgresInstance&) = delete;
  PostgresInstance& operator=(const PostgresInstance&) = delete;
  ~PostgresInstance();

  // Creates database `name` (letters, digits, '_'), returns its ledger spec (a libpq keyword/value
  // string). kUsage for another name; kDatabase (SQLSTATE) when the server refuses.
  Result<std::string> CreateDatabase(const std::string& name);
  // The libpq keyword/value string of database `dbname` on this cluster.
  std::string ConnectionSpec(const std::string& dbname) const;
  // The same as a postgresql:// URL.
  std::string ConnectionUrl(const std::string& dbname) const;
  const std::filesystem::path& socket_dir() const { return dir_->path(); }
  // The server's pid; -1 while it is stopped.
  pid_t pid() const { return server_.pid(); }
  bool running() const { return server_.pid() > 0; }

  // Fast shutdown (SIGINT: clients are disconnected, everything committed is written out) and
  // waits for the server to end. kProcess when it does not end in time (it is then killed).
  Result<void> StopServer();
  // Starts the server again on the same data directory and waits until it accepts connections.
  Result<void> StartServer();
  // StopServer then StartServer.
  Result<void> Restart();

 private:
  explicit PostgresInstance(PostgresOptions options, WorkDir dir)
      : options_(std::move(options)), dir_(std::move(dir)) {}
  std::string AdminSpec() const { return ConnectionSpec("postgres"); }
  bool AcceptsConnections() const;

  PostgresOptions options_;
  std::optional<WorkDir> dir_;  // holds data/ and the socket; removed after the server stopped
  ChildProcess server_;
};

}  // namespace idevid
