#include "device/pkid/pkid_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "device/config/config_parser.h"
#include "device/pkid/command_handler.h"
#include "device/pkid/operational_command.h"
#include "device/pkid/unix_socket.h"

namespace idevid {
namespace {

// How long a client may take to send its command, and to take its answer.
constexpr std::chrono::seconds kClientDeadline{5};

// SIGHUP, SIGTERM and SIGINT as readable events instead of asynchronous handlers. Blocked in the
// calling thread, and so in every thread it starts afterwards.
Result<UniqueFd> SignalEvents() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&set, s);
  if (int e = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); e != 0)
    return ErrnoError(e, "cannot block signals");
  UniqueFd fd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!fd) return ErrnoError(errno, "cannot create a signalfd");
  return fd;
}

class Daemon {
 public:
  Daemon(const PkidOptions& options, DeviceConfig config)
      : options_(options), config_(std::move(config)), handler_(store_, [this] { return Reload(); }) {}

  // Loads the store from the configuration; the caller holds mutex_ exclusively (or no thread
  // runs yet). A TPM that does not answer starts the retries from their first pause.
  void Load() {
    store_ = LoadNodeLocalStore(config_, options_.tcti, options_.now);
    ++generation_;
    for (const auto& [id, entry] : store_.entries) {
      if (entry.status.loaded) {
        spdlog::info("{}: {}", id, entry.status.ToString());
      } else {
        spdlog::warn("{}: {}", id, entry.status.ToString());
      }
    }
    LoadStatus& idevid = store_.entries.at(kIdevidCertificateId).status;
    if (idevid.tpm_unreachable) {
      idevid.error += RetryingEvery(options_.tpm_retry.first_delay);
      RestartBackoff();
    }
  }

  // A restart reads the configuration again; an invalid one is refused and changes nothing
  // (the running configuration and store stay).
  Result<void> Reload() {
    auto config = LoadDeviceConfig(options_.config);
    if (!config) {
      spdlog::error("restart refused, the previous configuration stays: {}", config.error().message());
      return Fail(config.error());
    }
    config_ = std::move(*config);
    Load();
    return {};
  }

  // Watches the TPM until StopWatching(): while idev-id is loaded, asks the TPM every
  // max_delay; when it does not answer, reports idev-id not loaded naming the TPM and tries to
  // load it again after pauses that double from first_delay to max_delay.
  void WatchTpm() {
    auto delay = options_.tpm_retry.max_delay;
    std::unique_lock lock(watch_mutex_);
    while (!stopping_) {
      bool woken = watch_wake_.wait_for(lock, delay, [&] { return stopping_ || backoff_restarted_; });
      if (stopping_) break;
      if (woken) {
        backoff_restarted_ = false;
        delay = options_.tpm_retry.first_delay;
        continue;
      }
      lock.unlock();
      delay = WatchOnce(delay);
      lock.lock();
    }
  }

  void StopWatching() {
    std::lock_guard lock(watch_mutex_);
    stopping_ = true;
    watch_wake_.notify_all();
  }

  // Answers one client on one of the client threads; gives up when the client takes longer than
  // kClientDeadline to ask or to take the answer, or when `stop_fd` becomes readable. Commands
  // read the store under a shared lock; a reload (command or SIGHUP) replaces it under an
  // exclusive one.
  void Serve(int client, int stop_fd) {
    auto line = ReadMessage(client, '\n', kMaxCommandLength + 1, kClientDeadline, stop_fd);
    if (!line && line.error().Is(ErrorDomain::kIo, ECANCELED)) return;
    CommandResponse response;
    if (!line) {
      response = {2, line.error().message() + "\n", {}};
    } else if (auto command = ParseOperationalCommand(*line);
               command && command->kind == OperationalCommand::Kind::kReload) {
      std::unique_lock lock(mutex_);
      response = handler_.Execute(*line);
    } else {
      std::shared_lock lock(mutex_);
      response = handler_.Execute(*line);
    }
    nlohmann::json j = {{"status", response.status}, {"text", response.text}, {"data", response.data}};
    // Whatever a certificate or a client put in the text, the answer stays valid JSON.
    auto sent = WriteAll(client, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                         kClientDeadline, stop_fd);
    if (!sent) spdlog::debug("a client did not take its answer: {}", sent.error().message());
  }

  void ReloadExclusively() {
    std::unique_lock lock(mutex_);
    (void)Reload();  // a refused configuration is logged; SIGHUP has no one to answer
  }

 private:
  // Makes the watch try again after first_delay.
  void RestartBackoff() {
    std::lock_guard lock(watch_mutex_);
    backoff_restarted_ = true;
    watch_wake_.notify_all();
  }

  // One look at the TPM after a pause of `delay`; returns the pause before the next.
  std::chrono::milliseconds WatchOnce(std::chrono::milliseconds delay) {
    const TpmBackoff& backoff = options_.tpm_retry;
    IdevidLocation location;
    StoreEntry current;
    std::uint64_t generation = 0;
    {
      std::shared_lock lock(mutex_);
      location = config_.idevid;
      current = store_.entries.at(kIdevidCertificateId);
      generation = generation_;
    }
    if (current.status.loaded) {
      auto probe = ProbeTpm(options_.tcti, location.key_handle);
      if (probe || !IsTpmUnreachable(probe.error())) {
        probe_failed_once_ = false;
        return backoff.max_delay;
      }
      // A TPM busy with another client for a moment (a direct TCTI serves one at a time) is not
      // gone: idev-id is unloaded only when a second look, soon after, fails too.
      if (!probe_failed_once_) {
        probe_failed_once_ = true;
        return backoff.first_delay;
      }
      probe_failed_once_ = false;
      current.certificate = nullptr;
      current.status = {
          false, options_.now(), current.status.source,
          TpmUnreachableReason(options_.tcti, probe.error()) + RetryingEvery(backoff.first_delay), true};
      spdlog::warn("{}: {}", kIdevidCertificateId, current.status.ToString());
      ReplaceIdevid(generation, std::move(current));
      return backoff.first_delay;
    }
    if (!current.status.tpm_unreachable) return backoff.max_delay;  // until a restart
    StoreEntry entry = LoadIdevidEntry(location, options_.tcti, options_.now);
    std::chrono::milliseconds next = backoff.max_delay;
    if (entry.status.tpm_unreachable) {
      next = backoff.After(delay);
      entry.status.error += RetryingEvery(next);
    } else {
      spdlog::info("{}: the TPM answers again: {}", kIdevidCertificateId, entry.status.ToString());
    }
    ReplaceIdevid(generation, std::move(entry));
    return next;
  }

  // Puts `entry` in the store unless a restart loaded it anew since `generation`.
  void ReplaceIdevid(std::uint64_t generation, StoreEntry entry) {
    std::unique_lock lock(mutex_);
    if (generation != generation_) return;
    store_.entries[kIdevidCertificateId] = std::move(entry);
  }

  const PkidOptions& options_;
  std::shared_mutex mutex_;
  DeviceConfig config_;
  NodeLocalStore store_;
  std::uint64_t generation_ = 0;  // counts loads; under mutex_
  CommandHandler handler_;
  std::mutex watch_mutex_;
  std::condition_variable watch_wake_;
  bool stopping_ = false;           // under watch_mutex_
  bool backoff_restarted_ = false;  // under watch_mutex_
  bool probe_failed_once_ = false;  // the watch thread's own
};

// Returns false when pkid should stop.
bool HandleSignal(int signal_fd, Daemon& daemon) {
  signalfd_siginfo info{};
  if (::read(signal_fd, &info, sizeof info) != sizeof info) return true;
  if (info.ssi_signo == SIGHUP) {
    spdlog::info("SIGHUP: restart load");
    daemon.ReloadExclusively();
    return true;
  }
  spdlog::info("signal {}: stopping", info.ssi_signo);
  return false;
}

// One of the client threads: accepts a client whenever the listener has one and answers it,
// until `stop_fd` becomes readable.
void AnswerClients(Daemon& daemon, int listener, int stop_fd) {
  for (;;) {
    pollfd fds[2] = {{listener, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("a client thread stops: cannot wait for clients: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    // Another thread may have taken the client first: the listener does not block (EAGAIN).
    UniqueFd client(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    if (client) daemon.Serve(client.get(), stop_fd);
  }
}

// Ends the wait of every thread that polls `stop`'s read end: a byte nobody reads keeps it
// readable.
void Broadcast(const Pipe& stop) {
  char byte = 1;
  while (::write(stop.write.get(), &byte, 1) < 0 && errno == EINTR) {}
}

}  // namespace

Result<void> RunPkid(const PkidOptions& given) {
  PkidOptions options = given;
  if (!options.now) options.now = [] { return std::chrono::system_clock::now(); };
  IDEVID_ASSIGN_OR_RETURN(DeviceConfig config, LoadDeviceConfig(options.config));
  IDEVID_ASSIGN_OR_RETURN(UniqueFd signals, SignalEvents());
  IDEVID_ASSIGN_OR_RETURN(Pipe stop, OpenPipe());
  IDEVID_ASSIGN_OR_RETURN(UniqueFd listener, ListenUnix(options.socket, config.socket_group));
  Daemon daemon(options, std::move(config));
  daemon.Load();
  std::stop_callback stop_requested(options.stop, [&stop] { Broadcast(stop); });
  {
    std::jthread watch([&daemon] { daemon.WatchTpm(); });
    // A silent or slow client holds one client thread for at most kClientDeadline, never the
    // daemon; the threads end when `stop` is broadcast, a client being answered with them.
    std::vector<std::jthread> clients;
    for (std::size_t i = 0; i < kClientThreads; ++i) {
      clients.emplace_back(
          [&daemon, &listener, &stop] { AnswerClients(daemon, listener.get(), stop.read.get()); });
    }
    spdlog::info("serving on {}", options.socket.string());
    for (bool running = true; running;) {
      pollfd fds[2] = {{signals.get(), POLLIN, 0}, {stop.read.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
      if (fds[0].revents & POLLIN) running = HandleSignal(signals.get(), daemon);
      if (fds[1].revents != 0) running = false;
    }
    Broadcast(stop);
    clients.clear();  // joins them
    daemon.StopWatching();
  }  // joins the watch
  ::unlink(options.socket.c_str());
  return {};
}

}  // namespace idevid
