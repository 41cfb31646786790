#include "engine/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/unique_fd.h"

extern char** environ;

namespace idevid {
namespace {

using Clock = std::chrono::steady_clock;

// argv and envp as C arrays, built before fork so the child only calls async-signal-safe code.
struct ExecArgs {
  std::vector<std::string> args_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;

  ExecArgs(const std::vector<std::string>& args, const std::map<std::string, std::string>& env)
      : args_storage(args),
        env_storage(MergedEnvironment(env)),
        argv(CStringArray(args_storage)),
        envp(CStringArray(env_storage)) {}
};

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return fmt::format("ended with wait status {:#x}", status);
}

// In the child after fork: only async-signal-safe calls, then exec. Never returns.
[[noreturn]] void ExecChild(const ExecArgs& args, int out_fd, int err_fd, int in_fd, bool detach,
                            pid_t parent) {
  // The parent may block signals (pkid, the cloud): the child starts with none blocked.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (detach) {
    ::setsid();
  } else {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
  }
  if (in_fd >= 0) ::dup2(in_fd, STDIN_FILENO);
  ::dup2(out_fd, STDOUT_FILENO);
  ::dup2(err_fd, STDERR_FILENO);
  ::execvpe(args.argv[0], args.argv.data(), args.envp.data());
  static const char kMsg[] = "exec failed: program not found or not executable\n";
  (void)!::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  ::_exit(127);
}

}  // namespace

std::vector<std::string> MergedEnvironment(const std::map<std::string, std::string>& env) {
  // Hierarchy authorization values reach a child only when it is given them explicitly.
  static const std::set<std::string> kSecrets = {"IDEVID_OWNER_AUTH", "IDEVID_ENDORSEMENT_AUTH"};
  std::vector<std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string name(entry.substr(0, entry.find('=')));
    if (!env.contains(name) && !kSecrets.contains(name)) merged.emplace_back(entry);
  }
  for (const auto& [k, v] : env) merged.push_back(k + "=" + v);
  return merged;
}

void HandleInterrupts(void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

std::vector<char*> CStringArray(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::uint64_t ProcessStatusCode(int wait_status) {
  if (WIFEXITED(wait_status)) return static_cast<std::uint64_t>(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return 128 + static_cast<std::uint64_t>(WTERMSIG(wait_status));
  return static_cast<std::uint64_t>(wait_status);
}

Result<ChildProcess> ChildProcess::Spawn(const ProcessSpec& spec) {
  if (spec.argv.empty()) return UsageError(UsageCode::kMissingArgument, "no program to start");
  UniqueFd log(::open(spec.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log) return ErrnoError(errno, fmt::format("cannot open log {}", spec.log.string()));
  UniqueFd null_input(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  ExecArgs args(spec.argv, spec.env);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) ExecChild(args, log.get(), log.get(), null_input.get(), spec.detach, parent);
  if (pid < 0) return ErrnoError(errno, fmt::format("cannot start {}", spec.argv[0]));
  return ChildProcess(pid, spec.argv[0]);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      name_(std::move(other.name_)),
      ended_(std::move(other.ended_)),
      status_code_(other.status_code_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) Stop();
    pid_ = std::exchange(other.pid_, -1);
    name_ = std::move(other.name_);
    ended_ = std::move(other.ended_);
    status_code_ = other.status_code_;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Stop();
}

std::optional<std::string> ChildProcess::Ended() {
  if (ended_ || pid_ <= 0) return ended_;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    ended_ = DescribeStatus(status);
    status_code_ = ProcessStatusCode(status);
  }
  if (r < 0 && errno == ECHILD) ended_ = "already reaped";  // never signal a pid we cannot wait for
  return ended_;
}

std::string ChildProcess::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return ended_.value_or("not running");
  if (!Ended()) {
    ::kill(pid_, SIGTERM);
    if (!PollUntil([&] { return Ended().has_value(); }, grace)) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      pid_t r;
      while ((r = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {}
      ended_ = r == pid_ ? DescribeStatus(status) : "already reaped";
      if (r == pid_) status_code_ = ProcessStatusCode(status);
    }
  }
  pid_ = -1;
  return *ended_;
}

pid_t ChildProcess::Release() { return std::exchange(pid_, -1); }

std::optional<std::string> ProcessCommandLine(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
  if (!in) return std::nullopt;
  std::string line((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A zombie (ended, not yet reaped) has an empty command line: treat it as gone.
  if (line.empty()) return std::nullopt;
  for (char& c : line) {
    if (c == '\0') c = ' ';
  }
  return line;
}

Result<void> StopProcessByPid(pid_t pid, const std::string& must_contain, std::chrono::milliseconds grace) {
  auto line = ProcessCommandLine(pid);
  if (!line) return {};
  if (line->find(must_contain) == std::string::npos) {
    return Fail(ErrorDomain::kIo, ESRCH,
                fmt::format("pid {} is not the expected process (its command line is '{}', "
                            "expected it to contain '{}'); leaving it alone",
                            pid, DisplayText(*line), DisplayText(must_contain)));
  }
  ::kill(pid, SIGTERM);
  if (PollUntil([&] { return !ProcessCommandLine(pid); }, grace)) return {};
  ::kill(pid, SIGKILL);
  if (PollUntil([&] { return !ProcessCommandLine(pid); }, grace)) return {};
  return Fail(ErrorDomain::kProcess, kProcessDeadline, fmt::format("pid {} did not stop after SIGKILL", pid));
}

bool PollUntil(const std::function<bool()>& ready, std::chrono::milliseconds timeout,
               std::chrono::milliseconds step) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (ready()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

std::string LogTail(const std::filesystem::path& log, std::size_t max_bytes) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return {};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  return text;
}

std::optional<std::size_t> ProcessRssKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return std::nullopt;
}

}  // namespace idevid
