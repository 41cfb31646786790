#include "cli/parallel_run.h"

#include <signal.h>

#include <cctype>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "engine/exit_codes.h"
#include "engine/process.h"
#include "engine/tested_unit.h"

namespace idevid::cli {
namespace {

struct Unit {
  std::string serial;
  std::filesystem::path dir;
  ChildProcess process;
  std::optional<int> exit_code;
};

// "exited with status N" -> N; killed by a signal -> infrastructure.
int ExitCodeOf(const std::string& ended) {
  int code = kExitInfrastructure;
  return std::sscanf(ended.c_str(), "exited with status %d", &code) == 1 ? code : kExitInfrastructure;
}

// The unit's record: run-record.json, or run-record-shard-I-of-N.json when it ran a shard.
std::string OutcomeOf(const Unit& unit) {
  std::filesystem::path file;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(unit.dir, ec)) {
    auto name = entry.path().filename().string();
    if (name.rfind("run-record", 0) == 0 && entry.path().extension() == ".json") file = entry.path();
  }
  if (file.empty()) return "NO RECORD";
  auto text = ReadFileText(file);
  if (!text) return "NO RECORD";
  auto record = nlohmann::json::parse(*text, nullptr, false);
  return record.is_discarded() ? "BAD RECORD" : record.value("outcome", "?");
}

int Worst(int a, int b) {
  auto rank = [](int c) { return c == kExitPass ? 0 : c == kExitFail ? 1 : 2; };
  return rank(a) >= rank(b) ? a : b;
}

Result<std::vector<Unit>> StartUnits(const ParallelRun& run) {
  std::vector<Unit> units;
  for (int k = 0; k < run.units; ++k) {
    Unit unit{"", run.report / fmt::format("unit-{}", k + 1), {}, std::nullopt};
    std::error_code ec;
    std::filesystem::create_directories(unit.dir, ec);
    if (ec) return ErrnoError(ec.value(), "cannot create " + unit.dir.string());
    std::vector<std::string> argv = {IdevidExecutable(), "run", "--report", unit.dir.string()};
    for (auto& a : run.args(k)) argv.push_back(std::move(a));
    for (std::size_t i = 0; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--serial") unit.serial = argv[i + 1];
    }
    IDEVID_ASSIGN_OR_RETURN(unit.process, ChildProcess::Spawn({.argv = argv, .log = unit.dir / "run.log"}),
                            "starting unit {}", k + 1);
    std::cerr << fmt::format("unit {} ({}): started, log in {}\n", k + 1, unit.serial,
                             (unit.dir / "run.log").string());
    units.push_back(std::move(unit));
  }
  return units;
}

// Waits for every unit; an interrupt is forwarded once, and units that still run a minute later
// are stopped.
void AwaitUnits(std::vector<Unit>& units, const ParallelRun& run) {
  bool forwarded = false;
  auto deadline = std::chrono::steady_clock::time_point::max();
  auto all_ended = [&] {
    bool done = true;
    for (std::size_t k = 0; k < units.size(); ++k) {
      Unit& u = units[k];
      if (u.exit_code) continue;
      if (auto ended = u.process.Ended()) {
        u.exit_code = ExitCodeOf(*ended);
        std::cerr << fmt::format("unit {} ({}): {} - {}\n", k + 1, u.serial, OutcomeOf(u), *ended);
      } else {
        done = false;
      }
    }
    if (!forwarded && run.interrupted()) {
      forwarded = true;
      deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
      for (auto& u : units) {
        if (!u.exit_code) ::kill(u.process.pid(), SIGINT);
      }
    }
    return done || std::chrono::steady_clock::now() > deadline;
  };
  PollUntil(all_ended, std::chrono::hours(24),
            std::chrono::milliseconds(100));  // units keep their own deadlines
  for (auto& u : units) {
    if (!u.exit_code) u.exit_code = ExitCodeOf(u.process.Stop());
  }
}

}  // namespace

std::string NthSerial(const std::string& base, int k) {
  std::size_t digits = base.size();
  while (digits > 0 && std::isdigit(static_cast<unsigned char>(base[digits - 1]))) --digits;
  if (digits == base.size()) return fmt::format("{}-{}", base, k + 1);
  // Decimal addition on the digits themselves: any length, no overflow.
  std::string tail = base.substr(digits);
  unsigned carry = static_cast<unsigned>(k);
  for (std::size_t i = tail.size(); i-- > 0 && carry != 0;) {
    unsigned sum = static_cast<unsigned>(tail[i] - '0') + carry;
    tail[i] = static_cast<char>('0' + sum % 10);
    carry = sum / 10;
  }
  return base.substr(0, digits) + (carry != 0 ? std::to_string(carry) : "") + tail;
}

int RunUnitsInParallel(const ParallelRun& run) {
  auto units = StartUnits(run);
  if (!units) return ReportError(units.error());
  AwaitUnits(*units, run);
  int worst = kExitPass;
  nlohmann::json summary = nlohmann::json::array();
  for (const auto& u : *units) {
    worst = Worst(worst, *u.exit_code);
    summary.push_back({{"serial", u.serial},
                       {"report", u.dir.string()},
                       {"outcome", OutcomeOf(u)},
                       {"exit_code", *u.exit_code}});
  }
  if (auto w = WriteFileAtomic(run.report / "units.json", summary.dump(2) + "\n"); !w) {
    return Worst(ReportError(w.error()), worst);
  }
  std::cerr << fmt::format("idevid run: {} units - summary in {}\n", units->size(),
                           (run.report / "units.json").string());
  return worst;
}

}  // namespace idevid::cli
