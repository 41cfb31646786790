// A line station and its ledger as operators run them: `idevid provision` records each unit
// (reserve, issue, commit), a station killed at each step is resumed by the same command, a
// serial on a second TPM is refused as a clone, and `idevid ledger show|export` read the ledger;
// the inventory export is what `idevid cloud --inventory` reads. Manufactured swtpms, direct.
#include <signal.h>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cloud/inventory.h"
#include "core/file_io.h"
#include "core/ledger.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "engine/postgres_instance.h"
#include "engine/process.h"
#include "engine/swtpm_instance.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"
#include "provisioning/station_fault.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;

class LineStationTest : public testing::TpmTestBase, public ::testing::Test {
 protected:
  void SetUp() override {
    StartTpm(testing::TpmAccess::kDirect, /*manufacture=*/true);
    Disconnect();  // the commands open their own connections
    ASSERT_EQ(Run({"factory", "init", "--dir", Factory()}).exit_status, 0);
  }
  void TearDown() override {
    other_.reset();
    StopTpm();
  }

  CommandOutput Run(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), IDEVID_BINARY);
    env["TSS2_LOG"] = "all+NONE";
    auto out = RunCommand(args, env, std::chrono::seconds(120));
    EXPECT_TRUE(out) << out.error().ToString();
    return out.value_or(CommandOutput{});
  }
  CommandOutput Provision(const std::string& tcti, const std::string& serial, std::vector<std::string> extra,
                          std::map<std::string, std::string> env = {}) {
    std::vector<std::string> args = {"provision", "--tcti",  tcti,      "--factory", Factory(), "--serial",
                                     serial,      "--model", "SRX4300", "--station", "line-1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args, std::move(env));
  }
  // A second TPM of the same vendor, started on first use.
  std::string OtherTcti() {
    if (!other_) {
      auto started = SwtpmInstance::Start(
          {.state_dir = dir() / "other", .manufacture = true, .vendor = swtpm().state_dir()});
      EXPECT_TRUE(started) << started.error().ToString();
      other_ = std::move(*started);
    }
    return other_->tcti();
  }
  std::optional<UnitRow> Row(const std::string& ledger_spec, const std::string& serial) {
    auto ledger = OpenLedger(ledger_spec);
    EXPECT_THAT(ledger, IsOk());
    if (!ledger) return std::nullopt;
    auto row = (*ledger)->FindBySerial(serial);
    EXPECT_THAT(row, IsOk());
    return row ? *row : std::nullopt;
  }
  std::size_t RowCount(const std::string& ledger_spec) {
    auto ledger = OpenLedger(ledger_spec);
    auto units = (*ledger)->Units();
    EXPECT_THAT(units, IsOk());
    return units ? units->size() : 0;
  }
  Bytes NvCertificate() {
    Reconnect();
    auto der = NvRead(tpm(), 0x01C90000);
    Disconnect();
    EXPECT_THAT(der, IsOk());
    return der.value_or(Bytes{});
  }
  nlohmann::json Record(const std::string& path) { return nlohmann::json::parse(*ReadFileText(path)); }
  std::string Factory() const { return (dir() / "factory").string(); }
  std::string File(const std::string& name) const { return (dir() / name).string(); }

  std::optional<SwtpmInstance> other_;
};

TEST_F(LineStationTest, AProvisionedUnitIsCommittedWithItsLineCheckAndTheLedgerReadsBack) {
  auto provisioned = Provision(swtpm().tcti(), "CW100", {"--record", File("r.json")});
  ASSERT_EQ(provisioned.exit_status, 0) << provisioned.out << provisioned.err;
  EXPECT_THAT(provisioned.out, HasSubstr("line check: PASS"));
  auto record = Record(File("r.json"));
  EXPECT_EQ(record["outcome"], "PASS");
  EXPECT_EQ(record["line_check"]["outcome"], "PASS");
  EXPECT_EQ(record["ledger"]["state"], "committed");

  std::string spec = DefaultLedgerSpec(Factory());
  auto row = Row(spec, "CW100");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->state, UnitState::kCommitted);
  EXPECT_EQ(row->station, "line-1");
  EXPECT_EQ(row->line_check, "PASS");
  EXPECT_EQ(row->record["unit"]["serial"], "CW100");
  EXPECT_EQ(row->certificate, NvCertificate());

  auto shown = Run({"ledger", "show", "--factory", Factory()});
  ASSERT_EQ(shown.exit_status, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("CW100  model SRX4300  committed  station line-1"));
  EXPECT_THAT(shown.out, HasSubstr("line check PASS"));
  auto missing = Run({"ledger", "show", "--ledger", spec, "--serial", "CW999"});
  EXPECT_EQ(missing.exit_status, 1);
  EXPECT_THAT(missing.err, HasSubstr("no unit \"CW999\""));

  ASSERT_EQ(Run({"ledger", "export", "--factory", Factory(), "--format", "json", "--out", File("l.json")})
                .exit_status,
            0);
  auto exported = Record(File("l.json"));
  ASSERT_EQ(exported["units"].size(), 1u);
  EXPECT_EQ(exported["units"][0]["serial"], "CW100");
  EXPECT_EQ(exported["units"][0]["state"], "committed");
  auto pem = exported["units"][0]["certificate_pem"].get<std::string>();
  auto cert = ParseCertificate(row->certificate);
  ASSERT_THAT(cert, IsOk());
  EXPECT_EQ(pem, *CertificatePem(**cert));
  EXPECT_THAT(*ReadFileText(File("l.json")), Not(HasSubstr("PRIVATE KEY")));

  auto csv = Run({"ledger", "export", "--ledger", spec, "--format", "csv"});
  ASSERT_EQ(csv.exit_status, 0);
  EXPECT_THAT(csv.out, HasSubstr("serial,model,state,station,line_check,"));
  EXPECT_THAT(csv.out, HasSubstr("\r\nCW100,SRX4300,committed,line-1,PASS,"));

  // The inventory export is the cloud's inventory file.
  ASSERT_EQ(
      Run({"ledger", "export", "--factory", Factory(), "--format", "inventory", "--out", File("inv.csv")})
          .exit_status,
      0);
  auto inventory = LoadInventory(File("inv.csv"));
  ASSERT_THAT(inventory, IsOk());
  EXPECT_EQ(*inventory, (Inventory{{"CW100", "SRX4300"}}));
}

// The station SIGKILLs itself at each step (IDEVID_FAULT_KILL_AT); the same command resumes the
// unit: one row, committed, the certificate recorded before the death written again, NV holding
// it. The serial on another TPM is then a clone.
TEST_F(LineStationTest, AStationKilledAtEachStepIsResumedAndTheSerialIsNoOtherTpms) {
  for (std::string_view point : {station_fault::kReserved, station_fault::kIssued, station_fault::kWritten}) {
    SCOPED_TRACE(std::string(point));
    std::string spec = "sqlite:" + File(std::string(point) + ".sqlite");
    std::string serial = fmt::format("CW-{}", point);
    // --force: the TPM holds the identity of the previous round.
    auto killed = Provision(swtpm().tcti(), serial, {"--ledger", spec, "--force"},
                            {{kFaultKillAtVariable, std::string(point)}});
    EXPECT_EQ(killed.exit_status, -1) << killed.out << killed.err;
    EXPECT_EQ(killed.status_code, 128u + SIGKILL);
    auto left = Row(spec, serial);
    ASSERT_TRUE(left);
    EXPECT_EQ(left->state, point == station_fault::kReserved ? UnitState::kReserved : UnitState::kIssued);

    auto resumed = Provision(swtpm().tcti(), serial, {"--ledger", spec, "--record", File("resumed.json")});
    ASSERT_EQ(resumed.exit_status, 0) << resumed.out << resumed.err;
    EXPECT_THAT(resumed.out, HasSubstr("an earlier attempt resumed"));
    auto row = Row(spec, serial);
    ASSERT_TRUE(row);
    EXPECT_EQ(RowCount(spec), 1u);
    EXPECT_EQ(row->state, UnitState::kCommitted);
    EXPECT_EQ(row->line_check, "PASS");
    if (point != station_fault::kReserved) {
      EXPECT_EQ(row->certificate, left->certificate) << "a second certificate was issued for the same key";
      EXPECT_TRUE(Record(File("resumed.json"))["ledger"]["certificate_reused"].get<bool>());
    }
    EXPECT_EQ(NvCertificate(), row->certificate);

    auto clone = Provision(OtherTcti(), serial, {"--ledger", spec, "--record", File("clone.json")});
    EXPECT_EQ(clone.exit_status, 1) << clone.out << clone.err;
    EXPECT_THAT(clone.out, HasSubstr("clone"));
    EXPECT_EQ(Record(File("clone.json"))["refusal"]["reason"], "clone");
    EXPECT_EQ(RowCount(spec), 1u);
  }
  // Nothing was written to the other TPM: it takes a serial of its own.
  auto own = Provision(OtherTcti(), "CW-OTHER", {"--ledger", "sqlite:" + File("reserved.sqlite")});
  EXPECT_EQ(own.exit_status, 0) << own.out << own.err;
  EXPECT_THAT(own.out, Not(HasSubstr("replaced")));
}

// The same on the ledger many stations share: a private PostgreSQL cluster.
TEST_F(LineStationTest, AStationKilledAfterIssueResumesOnAPostgresLedger) {
  auto postgres = PostgresInstance::Start();
  ASSERT_THAT(postgres, IsOk());
  auto spec = postgres->CreateDatabase("line");
  ASSERT_THAT(spec, IsOk());
  auto killed = Provision(swtpm().tcti(), "CW300", {"--ledger", *spec},
                          {{kFaultKillAtVariable, std::string(station_fault::kIssued)}});
  EXPECT_EQ(killed.status_code, 128u + SIGKILL) << killed.out << killed.err;
  auto left = Row(*spec, "CW300");
  ASSERT_TRUE(left);
  EXPECT_EQ(left->state, UnitState::kIssued);
  auto resumed = Provision(swtpm().tcti(), "CW300", {"--ledger", *spec});
  ASSERT_EQ(resumed.exit_status, 0) << resumed.out << resumed.err;
  auto row = Row(*spec, "CW300");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->state, UnitState::kCommitted);
  EXPECT_EQ(row->certificate, left->certificate);
  EXPECT_EQ(NvCertificate(), row->certificate);
  auto clone = Provision(OtherTcti(), "CW300", {"--ledger", *spec});
  EXPECT_EQ(clone.exit_status, 1) << clone.out << clone.err;
  EXPECT_THAT(clone.out, HasSubstr(": clone: "));
}

// A station that fails after the reservation, before a certificate is recorded (here: the
// endorsement hierarchy's password is not given, so the IDevID key cannot be made) gives the
// serial back: the next attempt, on any TPM, finds it free.
TEST_F(LineStationTest, AFailureBeforeTheCertificateIsRecordedReleasesTheSerial) {
  auto changed = RunTool({"tpm2_changeauth", "-c", "endorsement", "s3cret-endorsement"});
  ASSERT_EQ(changed.exit_status, 0) << changed.err;
  std::string spec = "sqlite:" + File("released.sqlite");
  auto failed = Provision(swtpm().tcti(), "CW200", {"--ledger", spec});
  EXPECT_EQ(failed.exit_status, 2) << failed.out << failed.err;
  EXPECT_THAT(failed.err, HasSubstr("creating the IDevID key"));
  EXPECT_FALSE(Row(spec, "CW200")) << "the reservation of a unit that failed stayed";
  auto elsewhere = Provision(OtherTcti(), "CW200", {"--ledger", spec});
  EXPECT_EQ(elsewhere.exit_status, 0) << elsewhere.out << elsewhere.err;
}

}  // namespace
}  // namespace idevid
