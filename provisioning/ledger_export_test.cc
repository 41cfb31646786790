#include "provisioning/ledger_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloud/inventory.h"
#include "core/testing/result_matchers.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;

UnitRow Unit(std::string serial, UnitState state, std::string line_check) {
  UnitRow row;
  row.serial = std::move(serial);
  row.model = "SRX4300";
  row.station = "line-1";
  row.state = state;
  row.ek_sha256 = std::string(64, 'e');
  row.line_check = std::move(line_check);
  row.reserved_at = LedgerClock::time_point(std::chrono::seconds(1795000000));
  if (state == UnitState::kCommitted) row.committed_at = row.reserved_at + std::chrono::seconds(3);
  return row;
}

TEST(LedgerExport, CsvQuotesWhatRfc4180Demands) {
  UnitRow odd = Unit("CW,1", UnitState::kReserved, "");
  odd.station = "say \"hi\"";
  std::string csv = LedgerCsv({odd});
  EXPECT_THAT(csv, HasSubstr(std::string(kLedgerCsvHeader) + "\r\n"));
  EXPECT_THAT(csv, HasSubstr("\"CW,1\",SRX4300,reserved,\"say \"\"hi\"\"\",,"));
}

TEST(LedgerExport, TheInventoryListsCommittedPassedUnrevokedUnitsAndTheCloudReadsIt) {
  UnitRow revoked = Unit("CW3", UnitState::kCommitted, "PASS");
  revoked.revocation = Revocation{RevocationReason::kKeyCompromise, revoked.reserved_at};
  auto text = LedgerInventory(
      {Unit("CW1", UnitState::kCommitted, "PASS"), Unit("CW2", UnitState::kCommitted, "FAIL"), revoked,
       Unit("CW4", UnitState::kIssued, ""), Unit("CW5", UnitState::kCommitted, "PASS")});
  ASSERT_THAT(text, IsOk());
  auto inventory = ParseInventory(*text, "ledger");
  ASSERT_THAT(inventory, IsOk());
  EXPECT_EQ(*inventory, (Inventory{{"CW1", "SRX4300"}, {"CW5", "SRX4300"}}));
}

TEST(LedgerExport, AnInventoryCannotCarryACommaInASerial) {
  EXPECT_THAT(LedgerInventory({Unit("CW,1", UnitState::kCommitted, "PASS")}),
              ResultIs(ErrorDomain::kUsage, static_cast<std::uint64_t>(UsageCode::kInvalidArgument),
                       HasSubstr("export it as csv or json")));
}

TEST(LedgerExport, ShowAndJsonSayStateTimesAndRevocation) {
  UnitRow revoked = Unit("CW3", UnitState::kCommitted, "PASS");
  revoked.revocation = Revocation{RevocationReason::kKeyCompromise, revoked.reserved_at};
  std::string shown = LedgerShowText({revoked});
  EXPECT_THAT(shown, HasSubstr("CW3  model SRX4300  committed  station line-1"));
  EXPECT_THAT(shown, HasSubstr("line check PASS"));
  EXPECT_THAT(shown, HasSubstr("revoked keyCompromise since 2026-"));
  auto json = LedgerJson({revoked});
  ASSERT_THAT(json, IsOk());
  EXPECT_EQ((*json)["units"][0]["revocation"]["reason"], "keyCompromise");
  EXPECT_FALSE((*json)["units"][0].contains("certificate_pem"));  // no certificate recorded
}

}  // namespace
}  // namespace idevid
