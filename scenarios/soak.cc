// soak: minutes of continuous TPM-mode SSL-I handshakes from several clients through
// tpm2-abrmd, with pkid restarted between rounds. Reports handshakes and failures (must be 0),
// the memory growth of each process of the bench (bounded), the harness's open descriptors and
// the TPM's transient slots (no leak). Run on request: idevid run --suite soak [--soak-seconds N].
#include <atomic>
#include <thread>

#include "core/tpm_capability.h"
#include "device/ssli/ssli_client.h"
#include "engine/tested_unit.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

constexpr int kClients = 4;
constexpr int kRounds = 3;

struct Tally {
  std::atomic<std::uint64_t> handshakes{0};
  std::atomic<std::uint64_t> failures{0};
  std::mutex mutex;
  std::string first_failure;
};

// One client: its own SSL-I client with idev-id from pkid, handshakes until `until`.
void Client(TestedUnit& unit, const std::filesystem::path& socket,
            std::chrono::steady_clock::time_point until, Tally& tally) {
  auto fail = [&](const std::string& why) {
    ++tally.failures;
    std::lock_guard lock(tally.mutex);
    if (tally.first_failure.empty()) tally.first_failure = why;
  };
  auto client =
      SsliClient::Create({&unit.config(), "aamw-tpm", socket, unit.tcti(), "127.0.0.1", unit.cloud().port()});
  if (!client) return fail(client.error().message());
  while (std::chrono::steady_clock::now() < until) {
    auto session = (*client)->Connect();
    if (!session)
      fail(session.error().message());
    else if (session->refused())
      fail("the cloud refused the unit: " + session->refusal->reason);
    else if (!session->accepted())
      fail(fmt::format("the cloud answered HTTP {} without a verdict", session->http_status));
    else
      ++tally.handshakes;
  }
}

// The RSS in KiB of each named process (this one included).
std::map<std::string, std::size_t> Memory(const std::map<std::string, pid_t>& pids) {
  std::map<std::string, std::size_t> rss;
  for (const auto& [name, pid] : pids) {
    if (auto kib = ProcessRssKib(pid)) rss[name] = *kib;
  }
  return rss;
}

// This process's open file descriptors.
std::size_t OpenDescriptors() {
  std::error_code ec;
  auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
  return ec ? 0 : static_cast<std::size_t>(std::distance(it, std::filesystem::directory_iterator()));
}

Result<std::uint32_t> TransientSlots(const std::string& tcti) {
  IDEVID_ASSIGN_OR_RETURN(auto tpm, TpmContext::Open(tcti));
  return ReadTpmProperty(tpm, TPM2_PT_HR_TRANSIENT_AVAIL);
}

void Soak(TestedUnit& unit, ScenarioContext& s) {
  auto socket = unit.dir() / "soak.sock";
  auto round_time = std::chrono::seconds(std::max(1, unit.options().soak_seconds / kRounds));
  Tally tally;
  std::map<std::string, std::size_t> before, after;
  std::uint32_t slots_before = 0;
  std::size_t fds_before = 0;
  s.Phase("the TPM's free transient slots before", [&](PhaseContext&) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(slots_before, TransientSlots(unit.tcti()));
    return {};
  });
  for (int round = 1; round <= kRounds; ++round) {
    std::optional<ChildProcess> pkid;
    if (!scenarios::StartPkidPhase(unit, s, socket, pkid)) return;
    s.Phase(fmt::format("round {}: {} clients for {} s", round, kClients, round_time.count()),
            [&](PhaseContext&) -> Result<void> {
              auto pids = unit.processes();
              pids["idevid run"] = ::getpid();
              pids["pkid"] = pkid->pid();
              if (round == 2) {  // round 1 warms caches and pools up
                before = Memory(pids);
                fds_before = OpenDescriptors();
              }
              auto until = std::chrono::steady_clock::now() + round_time;
              std::vector<std::thread> clients;
              for (int c = 0; c < kClients; ++c)
                clients.emplace_back([&] { Client(unit, socket, until, tally); });
              for (auto& c : clients) c.join();
              if (round == kRounds) after = Memory(pids);
              return {};
            });
    pkid->Stop();
  }
  s.Phase("handshakes, failures, memory and transient slots", [&](PhaseContext& p) -> Result<void> {
    p.Measure("handshakes", static_cast<double>(tally.handshakes), "count", 1.0);
    p.Measure("failures", static_cast<double>(tally.failures), "count", std::nullopt, 0.0);
    Limit growth = unit.options().limits.Get("soak_rss_growth_kib");
    for (const auto& [name, kib] : after) {
      if (name == "pkid" || before.count(name) == 0) continue;  // pkid is a new process each round
      p.Measure("rss_growth_" + name, static_cast<double>(kib) - static_cast<double>(before[name]), "KiB",
                std::nullopt, growth.high);
    }
    IDEVID_ASSIGN_OR_RETURN(std::uint32_t slots, TransientSlots(unit.tcti()));
    // Through tpm2-abrmd a client's objects are saved and flushed after each command: what this
    // sees is objects left loaded in the TPM itself. A client that leaks connections (and with them
    // the objects tpm2-abrmd keeps for it) shows as open descriptors of the harness.
    p.Measure("tpm_transient_slots_lost", static_cast<double>(slots_before) - static_cast<double>(slots),
              "count", std::nullopt, 0.0);
    p.Measure("open_fds_growth_idevid_run",
              static_cast<double>(OpenDescriptors()) - static_cast<double>(fds_before), "count", std::nullopt,
              8.0);
    // The failures are counted (the measurement above fails the phase); the first says what it was.
    if (tally.failures != 0) p.Finding("session-failed", "first failure: " + tally.first_failure);
    return {};
  });
}

}  // namespace

std::vector<Scenario> SoakSuite() {
  return {{"soak", "continuous TPM-mode handshakes through tpm2-abrmd with pkid restarts", Soak}};
}

}  // namespace idevid
