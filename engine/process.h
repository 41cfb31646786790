// Child processes the harness starts and stops: spawn with a log file, stop by pid with a
// deadline, run a command and capture its output.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace idevid {

// The code of a kProcess error is an exit status as a shell reports it: N for a process that
// exited with N, 128 + S for one that signal S ended, and kProcessDeadline (124, as timeout(1)
// reports it) for one that did not finish, or did not become ready, by its deadline.
inline constexpr std::uint64_t kProcessDeadline = 124;
// The kProcess code of a wait status from waitpid().
std::uint64_t ProcessStatusCode(int wait_status);

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH
  std::filesystem::path log;      // stdout and stderr go here (appended)
  // Added to (or replacing in) this environment; IDEVID_OWNER_AUTH / IDEVID_ENDORSEMENT_AUTH are
  // not inherited, only passed when named here.
  std::map<std::string, std::string> env;
  // true: the child gets its own session and outlives this process (`idevid tpm start`);
  // false: it receives SIGTERM when this process's thread that started it exits.
  bool detach = false;
};

// A running child: move-only; stopped (SIGTERM, then SIGKILL after the grace time) and reaped
// when destroyed unless released.
class ChildProcess {
 public:
  // Starts the program. A program that cannot be executed (not installed) still starts a child,
  // which exits with status 127 and "exec failed" in the log; Spawn itself fails only with kIo
  // when the log cannot be opened or fork fails, and kUsage kMissingArgument for an empty argv.
  static Result<ChildProcess> Spawn(const ProcessSpec& spec);

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  // Exit description ("exited with status 1", "killed by signal 9") once it ended, else nullopt.
  std::optional<std::string> Ended();
  // How it ended as the code of a kProcess error (ProcessStatusCode), as last seen by Ended() or
  // Stop(); nullopt while it runs, and when it was reaped elsewhere.
  std::optional<std::uint64_t> status_code() const { return status_code_; }
  // SIGTERM, wait up to `grace`, then SIGKILL; reaps it. Returns how it ended.
  std::string Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // Stops managing the process (it keeps running); returns its pid.
  pid_t Release();

 private:
  ChildProcess(pid_t pid, std::string name) : pid_(pid), name_(std::move(name)) {}
  pid_t pid_ = -1;
  std::string name_;
  std::optional<std::string> ended_;
  std::optional<std::uint64_t> status_code_;
};

// Stops a process this one did not start (found in a state file): verifies that its command
// line contains `must_contain` (so a recycled pid is left alone: kIo ESRCH), sends SIGTERM, waits
// up to `grace` for it to disappear, then SIGKILL (kProcess kProcessDeadline when even that does
// not end it). A process already gone is success.
Result<void> StopProcessByPid(pid_t pid, const std::string& must_contain,
                              std::chrono::milliseconds grace = std::chrono::seconds(5));

// The command line of a live process (NULs replaced by blanks); nullopt when it is gone.
std::optional<std::string> ProcessCommandLine(pid_t pid);

// The resident set size of a live process in KiB (VmRSS); nullopt when it is gone.
std::optional<std::size_t> ProcessRssKib(pid_t pid);

struct CommandOutput {
  int exit_status = -1;  // -1 when killed by a signal or the deadline
  std::string out;
  std::string err;
  std::uint64_t status_code = 0;  // how it ended as the code of a kProcess error (ProcessStatusCode)
};

// Runs a command to completion and captures stdout and stderr; kills it at the deadline (a
// kProcess kProcessDeadline error). `stdin_data` is written to its standard input, which is then
// closed. A command that runs is success whatever its exit status; kUsage for an empty `argv`,
// kIo when the pipes or the fork fail.
Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& env = {},
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60),
                                 const std::string& stdin_data = {});

// Calls `ready` every `step` until it returns true or `timeout` passes; returns its last answer.
bool PollUntil(const std::function<bool()>& ready, std::chrono::milliseconds timeout,
               std::chrono::milliseconds step = std::chrono::milliseconds(10));

// Calls `handler` on SIGINT and SIGTERM (instead of ending the process), so that a command can
// stop what it started and write its reports before it exits.
void HandleInterrupts(void (*handler)(int));

// This process's environment with `env` added or replacing, as "KEY=VALUE" strings.
std::vector<std::string> MergedEnvironment(const std::map<std::string, std::string>& env);
// Pointers into `strings` followed by nullptr, for exec; valid while `strings` is unchanged.
std::vector<char*> CStringArray(std::vector<std::string>& strings);

// The last `max_bytes` of a log file, for error messages; empty if unreadable.
std::string LogTail(const std::filesystem::path& log, std::size_t max_bytes = 2000);

}  // namespace idevid
