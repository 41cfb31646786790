// Many stations, one ledger (PostgreSQL, a private cluster; and SQLite, one file): four stations
// issue 200 units between them, each through its own `idevid factory issue --ledger` processes
// (at most four at once), with serials of another station among their orders. Every serial is issued once,
// every collision is refused as a clone (exit 1) and the ledger holds exactly the units issued, all
// committed.
//
// A unit needs an identity of its own in the ledger (its EK hash). Manufacturing 200 swtpms
// (swtpm_setup, an RSA EK and its certificate each) takes minutes; a file-mode identity's fresh
// key pair is a real, distinct key per unit in milliseconds, and its hash stands in for the EK.
#include <future>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "core/ledger.h"
#include "core/testing/result_matchers.h"
#include "engine/postgres_instance.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::testing::HasSubstr;

constexpr int kStations = 4;
constexpr int kUnits = 200;
constexpr int kCollisionsPerStation = 10;

std::string Serial(int unit) { return fmt::format("CW{:06d}", unit); }

struct Attempt {
  int station = 0;
  std::string serial;
  CommandOutput output;
};

enum class Backend { kPostgres, kSqlite };

class LedgerStations : public ::testing::TestWithParam<Backend> {
 protected:
  // The ledger every station shares.
  std::string SharedLedger() {
    if (GetParam() == Backend::kSqlite) return "sqlite:" + (temp_.path() / "line.sqlite").string();
    auto started = PostgresInstance::Start();
    EXPECT_THAT(started, IsOk());
    if (!started) return "";
    postgres_.emplace(std::move(*started));
    auto spec = postgres_->CreateDatabase("line");
    EXPECT_THAT(spec, IsOk());
    return spec.value_or("");
  }

  testing::TempDir temp_;
  std::optional<PostgresInstance> postgres_;
};

TEST_P(LedgerStations, FourStationsIssueEachSerialOnceAndCollisionsAreRefusedAsClones) {
  testing::TempDir& temp = temp_;
  std::string factory = (temp.path() / "factory").string();
  auto init = RunCommand({IDEVID_BINARY, "factory", "init", "--dir", factory});
  ASSERT_TRUE(init && init->exit_status == 0);
  std::string ledger = SharedLedger();
  ASSERT_FALSE(ledger.empty());

  // Station k is ordered the units k, k+4, ...; every fifth order is a unit of station k+1.
  std::vector<std::vector<std::string>> orders(kStations);
  for (int unit = 0; unit < kUnits; ++unit) orders[unit % kStations].push_back(Serial(unit));
  for (int k = 0; k < kStations; ++k) {
    for (int j = 0; j < kCollisionsPerStation; ++j) {
      int stolen = (k + 1) % kStations + kStations * (j * 5);
      orders[k].insert(orders[k].begin() + j * 6, Serial(stolen));
    }
  }
  auto station = [&](int k) {
    std::vector<Attempt> attempts;
    std::filesystem::create_directories(temp.path() / std::to_string(k));
    for (std::size_t i = 0; i < orders[k].size(); ++i) {
      const std::string& serial = orders[k][i];
      auto out =
          RunCommand({IDEVID_BINARY, "factory", "issue", "--dir", factory, "--serial", serial, "--model",
                      "SRX4300", "--out", (temp.path() / std::to_string(k) / std::to_string(i)).string(),
                      "--ledger", ledger, "--station", fmt::format("station-{}", k)},
                     {}, std::chrono::seconds(60));
      attempts.push_back({k, serial, out.value_or(CommandOutput{})});
    }
    return attempts;
  };
  std::vector<std::future<std::vector<Attempt>>> running;
  for (int k = 0; k < kStations; ++k) running.push_back(std::async(std::launch::async, station, k));

  std::map<std::string, std::vector<int>> winners;  // serial -> stations that got it
  int refused = 0;
  for (auto& done : running) {
    for (const Attempt& a : done.get()) {
      SCOPED_TRACE(a.serial);
      if (a.output.exit_status == 0) {
        winners[a.serial].push_back(a.station);
        continue;
      }
      ++refused;
      EXPECT_EQ(a.output.exit_status, 1) << a.output.out << a.output.err;
      EXPECT_THAT(a.output.out, HasSubstr(": clone: serial \"" + a.serial + "\" belongs to another TPM"));
    }
  }
  EXPECT_EQ(refused, kStations * kCollisionsPerStation);
  EXPECT_EQ(winners.size(), static_cast<std::size_t>(kUnits));
  for (const auto& [serial, stations] : winners) EXPECT_EQ(stations.size(), 1u) << serial;

  auto opened = OpenLedger(ledger);
  ASSERT_THAT(opened, IsOk());
  auto units = (*opened)->Units();
  ASSERT_THAT(units, IsOk());
  EXPECT_EQ(units->size(), static_cast<std::size_t>(kUnits));
  std::set<std::string> certificate_serials;
  for (const UnitRow& row : *units) {
    SCOPED_TRACE(row.serial);
    EXPECT_EQ(row.state, UnitState::kCommitted);
    EXPECT_EQ(row.line_check, "PASS");
    ASSERT_TRUE(winners.count(row.serial));
    EXPECT_EQ(row.station, fmt::format("station-{}", winners[row.serial].front()));
    certificate_serials.insert(row.certificate_serial);
  }
  EXPECT_EQ(certificate_serials.size(), units->size());
}

// `factory init --ledger` records the spec in factory.json; the commands that take --factory use it.
TEST(LedgerOfAFactory, InitRecordsItAndTheLedgerCommandsReadIt) {
  testing::TempDir temp;
  std::string factory = (temp.path() / "factory").string();
  std::string spec = "sqlite:" + (temp.path() / "elsewhere.sqlite").string();
  auto init = RunCommand({IDEVID_BINARY, "factory", "init", "--dir", factory, "--ledger", spec});
  ASSERT_TRUE(init && init->exit_status == 0);
  auto json = nlohmann::json::parse(*ReadFileText(temp.path() / "factory" / "factory.json"));
  EXPECT_EQ(json["ledger"], spec);
  auto issued = RunCommand({IDEVID_BINARY, "factory", "issue", "--dir", factory, "--serial", "CW1", "--model",
                            "SRX4300", "--out", (temp.path() / "cw1").string(), "--ledger", spec});
  ASSERT_TRUE(issued && issued->exit_status == 0) << issued->err;
  auto shown = RunCommand({IDEVID_BINARY, "ledger", "show", "--factory", factory});
  ASSERT_TRUE(shown);
  EXPECT_EQ(shown->exit_status, 0) << shown->err;
  EXPECT_THAT(shown->out, HasSubstr("CW1  model SRX4300  committed"));
  auto both = RunCommand({IDEVID_BINARY, "ledger", "show", "--factory", factory, "--ledger", spec});
  ASSERT_TRUE(both);
  EXPECT_EQ(both->exit_status, 4);
}

INSTANTIATE_TEST_SUITE_P(Ledgers, LedgerStations, ::testing::Values(Backend::kPostgres, Backend::kSqlite),
                         [](const auto& param) {
                           return std::string(param.param == Backend::kPostgres ? "PostgreSql" : "Sqlite");
                         });

}  // namespace
}  // namespace idevid
