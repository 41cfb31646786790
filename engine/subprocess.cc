// RunCommand: a child with piped standard streams, read until it ends or the deadline passes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <array>
#include <cerrno>

#include <fmt/format.h>

#include "core/unique_fd.h"
#include "engine/process.h"

namespace idevid {
namespace {

// write() that reports EPIPE instead of raising SIGPIPE when the reader is gone.
ssize_t WriteNoSigpipe(int fd, const char* data, std::size_t size) {
  sigset_t pipe_signal, old_mask;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &old_mask);
  ssize_t n = ::write(fd, data, size);
  int saved = errno;
  if (n < 0 && saved == EPIPE) {
    timespec zero{};
    sigtimedwait(&pipe_signal, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  errno = saved;
  return n;
}

// Feeds `input` to `in` and drains `out` and `err` into `result` until both are closed or the
// deadline passes; closes each stream as it ends.
bool Pump(UniqueFd& in, UniqueFd& out, UniqueFd& err, const std::string& input, CommandOutput& result,
          std::chrono::steady_clock::time_point deadline) {
  std::size_t fed = 0;
  if (input.empty()) in.reset();
  while (out || err) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    std::array<pollfd, 3> fds{{{out.get(), POLLIN, 0}, {err.get(), POLLIN, 0}, {in.get(), POLLOUT, 0}}};
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) {
      return false;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        (i == 0 ? out : err).reset();
      }
    }
    if (fds[2].fd >= 0 && fds[2].revents != 0) {
      ssize_t n = WriteNoSigpipe(in.get(), input.data() + fed, input.size() - fed);
      if (n > 0) fed += static_cast<std::size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || fed == input.size()) in.reset();
    }
  }
  return true;
}

}  // namespace

Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& env,
                                 std::chrono::milliseconds timeout, const std::string& stdin_data) {
  if (argv.empty()) return UsageError(UsageCode::kMissingArgument, "no command to run");
  IDEVID_ASSIGN_OR_RETURN(Pipe in, OpenPipe(), "running {}", argv[0]);
  IDEVID_ASSIGN_OR_RETURN(Pipe out, OpenPipe(), "running {}", argv[0]);
  IDEVID_ASSIGN_OR_RETURN(Pipe err, OpenPipe(), "running {}", argv[0]);
  std::vector<std::string> args = argv;
  std::vector<std::string> env_strings = MergedEnvironment(env);
  std::vector<char*> c_args = CStringArray(args);
  std::vector<char*> c_env = CStringArray(env_strings);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError(errno, fmt::format("cannot run {}", argv[0]));
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(in.read.get(), STDIN_FILENO);
    ::dup2(out.write.get(), STDOUT_FILENO);
    ::dup2(err.write.get(), STDERR_FILENO);
    ::execvpe(c_args[0], c_args.data(), c_env.data());
    ::_exit(127);
  }
  in.read.reset();
  ::fcntl(in.write.get(), F_SETFL, O_NONBLOCK);
  out.write.reset();
  err.write.reset();
  CommandOutput result;
  bool finished =
      Pump(in.write, out.read, err.read, stdin_data, result, std::chrono::steady_clock::now() + timeout);
  if (!finished) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (!finished) {
    return Fail(ErrorDomain::kProcess, kProcessDeadline,
                fmt::format("{} did not finish within {} ms and was killed", argv[0], timeout.count()));
  }
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.status_code = ProcessStatusCode(status);
  return result;
}

}  // namespace idevid
