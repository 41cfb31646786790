#include "device/pkid/pkid_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <shared_mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "device/config/config_parser.h"
#include "device/pkid/command_handler.h"
#include "device/pkid/operational_command.h"
#include "device/pkid/unix_socket.h"

namespace idevid {
namespace {

// SIGHUP, SIGTERM and SIGINT as readable events instead of asynchronous handlers.
Result<Fd> SignalEvents() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&set, s);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return ErrnoError(errno, "cannot block signals");
  Fd fd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, "cannot create a signalfd");
  return fd;
}

class Daemon {
 public:
  Daemon(const PkidOptions& options, DeviceConfig config)
      : options_(options), config_(std::move(config)),
        handler_(store_, [this] { Reload(); }) {}

  void Load() {
    store_ = LoadNodeLocalStore(config_, options_.tcti, options_.now);
    for (const auto& [id, entry] : store_.entries) {
      if (entry.status.loaded) {
        spdlog::info("{}: {}", id, entry.status.ToString());
      } else {
        spdlog::warn("{}: {}", id, entry.status.ToString());
      }
    }
  }

  // A restart reads the configuration again; an invalid one keeps the running one.
  void Reload() {
    auto config = LoadDeviceConfig(options_.config);
    if (config) {
      config_ = std::move(*config);
    } else {
      spdlog::error("restart keeps the previous configuration: {}", config.error().message());
    }
    Load();
  }

  // Answers one client; runs on the client's own thread. Commands read the store under a shared
  // lock; a reload (command or SIGHUP) replaces it under an exclusive one.
  void Serve(int client) {
    auto line = ReadMessage(client, '\n', kMaxCommandLength + 1, std::chrono::seconds(5));
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
    (void)WriteAll(client, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  void ReloadExclusively() {
    std::unique_lock lock(mutex_);
    Reload();
  }

 private:
  const PkidOptions& options_;
  std::shared_mutex mutex_;
  DeviceConfig config_;
  NodeLocalStore store_;
  CommandHandler handler_;
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

}  // namespace

Result<void> RunPkid(const PkidOptions& given) {
  PkidOptions options = given;
  if (!options.now) options.now = [] { return std::chrono::system_clock::now(); };
  auto config = LoadDeviceConfig(options.config);
  if (!config) return Fail(config.error());
  auto signals = SignalEvents();
  if (!signals) return Fail(signals.error());
  auto listener = ListenUnix(options.socket, config->socket_group);
  if (!listener) return Fail(listener.error());
  Daemon daemon(options, std::move(*config));
  daemon.Load();
  spdlog::info("serving on {}", options.socket.string());
  std::atomic<int> in_flight{0};
  for (bool running = true; running;) {
    pollfd fds[2] = {{listener->get(), POLLIN, 0}, {signals->get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) running = HandleSignal(signals->get(), daemon);
    if (running && (fds[0].revents & POLLIN)) {
      int client = ::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      // A slow or silent client holds only its own thread, never the daemon.
      timeval send_timeout{5, 0};
      ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
      ++in_flight;
      std::thread([&daemon, &in_flight, client] {
        Fd owned(client);
        daemon.Serve(owned.get());
        --in_flight;
      }).detach();
    }
  }
  // Clients still being answered finish (each within its own read and send deadlines).
  for (int i = 0; i < 1000 && in_flight > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ::unlink(options.socket.c_str());
  return {};
}

}  // namespace idevid
