// The ledger's contract, run against each back end: SQLite on a file per test, PostgreSQL on a
// private cluster (one per test suite) with a database per test.
#include "core/ledger.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "core/ledger_sql.h"
#include "core/testing/result_matchers.h"
#include "engine/postgres_instance.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultIs;
using ::testing::_;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

enum class Backend { kSqlite, kPostgres };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

// A TPM's EK hash, distinct per number.
std::string Ek(int n) { return fmt::format("{:064x}", 0xe0000000u + static_cast<unsigned>(n)); }
std::string Key(int n) { return fmt::format("{:064x}", 0xa0000000u + static_cast<unsigned>(n)); }
Bytes Certificate(int n) { return Bytes{0x30, 0x03, 0x02, 0x01, static_cast<std::uint8_t>(n)}; }

ReserveRequest Reserving(const std::string& serial, int tpm, const std::string& station = "st-1") {
  return {.serial = serial, .model = "SRX4300", .station = station, .ek_sha256 = Ek(tpm)};
}
IssuedRequest Issued(const std::string& serial, int tpm, int key) {
  return {.serial = serial,
          .ek_sha256 = Ek(tpm),
          .station = "st-2",
          .idevid_key_sha256 = Key(key),
          .certificate_serial = fmt::format("5e{:02x}", key),
          .certificate = Certificate(key)};
}
CommitRequest Committed(const std::string& serial, int tpm) {
  return {.serial = serial,
          .ek_sha256 = Ek(tpm),
          .station = "st-3",
          .line_check = "PASS",
          .record = {{"serial", serial}, {"outcome", "PASS"}}};
}

// What an answer grants (by value: the answer is often a temporary); aborts the test otherwise.
template <typename T>
T Granted(const Result<LedgerAnswer<T>>& answer) {
  if (!answer) throw std::runtime_error("an error instead of an answer: " + answer.error().ToString());
  if (const auto* refusal = std::get_if<LedgerRefusal>(&*answer)) {
    throw std::runtime_error("refused: " + refusal->reason + ": " + refusal->detail);
  }
  return std::get<T>(*answer);
}

// The refusal an answer holds (a failed test when it holds a row or an error).
template <typename T>
LedgerRefusal Refusal(const Result<LedgerAnswer<T>>& answer) {
  if (!answer) {
    ADD_FAILURE() << "error instead of a refusal: " << answer.error().ToString();
    return {};
  }
  if (const auto* refusal = std::get_if<LedgerRefusal>(&*answer)) return *refusal;
  ADD_FAILURE() << "granted instead of refused";
  return {};
}

// The value of a Result that must have succeeded, by value (safe in a range-for).
template <typename T>
T Value(Result<T> result) {
  if (!result) throw std::runtime_error(result.error().ToString());
  return std::move(*result);
}

class LedgerTest : public ::testing::TestWithParam<Backend> {
 protected:
  // The cluster is started by the first PostgreSQL test of the suite and stopped after the last.
  static void TearDownTestSuite() { postgres_.reset(); }

  void SetUp() override {
    spec_ = NewSpec();
    auto opened = OpenLedger(spec_);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    ledger_ = std::move(*opened);
  }

  // A new, empty database of this test's back end.
  std::string NewSpec() {
    if (GetParam() == Backend::kSqlite)
      return "sqlite:" + (temp_.path() / fmt::format("ledger{}.sqlite", ++databases_)).string();
    if (!postgres_) {
      auto started = PostgresInstance::Start();
      if (!started) throw std::runtime_error(started.error().ToString());
      postgres_ = std::make_unique<PostgresInstance>(std::move(*started));
    }
    if (auto up = postgres_->StartServer(); !up)
      throw std::runtime_error(up.error().ToString());  // a test stopped it
    database_ = fmt::format("ledger{}", ++databases_);
    auto created = postgres_->CreateDatabase(database_);
    if (!created) throw std::runtime_error(created.error().ToString());
    return *created;
  }

  std::unique_ptr<Ledger> Reopen() {
    auto opened = OpenLedger(spec_);
    if (!opened) throw std::runtime_error(opened.error().ToString());
    return std::move(*opened);
  }

  // Reserves, issues and commits `serial` on TPM `tpm` with key `key`.
  UnitRow Provision(const std::string& serial, int tpm, int key) {
    (void)Granted(ledger_->Reserve(Reserving(serial, tpm)));
    (void)Granted(ledger_->RecordIssued(Issued(serial, tpm, key)));
    return Granted(ledger_->Commit(Committed(serial, tpm)));
  }

  static inline std::unique_ptr<PostgresInstance> postgres_;
  testing::TempDir temp_;
  static inline int databases_ = 0;  // names each test's database apart in the shared cluster
  std::string database_;             // PostgreSQL: the name of the latest database NewSpec made
  std::string spec_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_P(LedgerTest, OpensAtTheLatestSchemaVersion) {
  EXPECT_EQ(ledger_->schema_version(), LatestLedgerSchemaVersion());
  EXPECT_EQ(Reopen()->schema_version(), LatestLedgerSchemaVersion());
}

TEST_P(LedgerTest, ReserveMakesANewRow) {
  auto before = LedgerClock::now() - std::chrono::seconds(1);
  const Reservation& reservation = Granted(ledger_->Reserve(Reserving("CW1", 1)));
  EXPECT_FALSE(reservation.resumed);
  const UnitRow& row = reservation.row;
  EXPECT_EQ(row.serial, "CW1");
  EXPECT_EQ(row.model, "SRX4300");
  EXPECT_EQ(row.station, "st-1");
  EXPECT_EQ(row.state, UnitState::kReserved);
  EXPECT_EQ(row.ek_sha256, Ek(1));
  EXPECT_TRUE(row.idevid_key_sha256.empty());
  EXPECT_TRUE(row.certificate_serial.empty());
  EXPECT_TRUE(row.certificate.empty());
  EXPECT_TRUE(row.record.is_null());
  EXPECT_GE(row.reserved_at, before);
  EXPECT_LE(row.reserved_at, LedgerClock::now() + std::chrono::seconds(1));
  EXPECT_FALSE(row.issued_at || row.committed_at || row.revocation);
}

TEST_P(LedgerTest, ReserveOnTheSameTpmResumesAReservedRow) {
  auto first = Granted(ledger_->Reserve(Reserving("CW1", 1)));
  const Reservation& again = Granted(ledger_->Reserve(Reserving("CW1", 1, "st-9")));
  EXPECT_TRUE(again.resumed);
  EXPECT_EQ(again.row.station, "st-9");
  EXPECT_EQ(again.row.reserved_at, first.row.reserved_at);
  EXPECT_EQ(ledger_->Units()->size(), 1u);
}

TEST_P(LedgerTest, ReserveOnTheSameTpmHandsBackAnIssuedCertificate) {
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  (void)Granted(ledger_->RecordIssued(Issued("CW1", 1, 7)));
  const Reservation& again = Granted(ledger_->Reserve(Reserving("CW1", 1)));
  EXPECT_TRUE(again.resumed);
  EXPECT_EQ(again.row.state, UnitState::kIssued);
  EXPECT_EQ(again.row.certificate, Certificate(7));
  EXPECT_EQ(again.row.certificate_serial, "5e07");
}

TEST_P(LedgerTest, AResumedReservationTakesTheRequestsModel) {
  ReserveRequest other_model = Reserving("CW1", 1, "st-9");
  other_model.model = "SRX5000";
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  EXPECT_EQ(Granted(ledger_->Reserve(other_model)).row.model, "SRX5000");
  EXPECT_EQ(ledger_->FindBySerial("CW1")->value().model, "SRX5000");
  // Issued: the certificate issued next names the new model, and so does the row.
  (void)Granted(ledger_->RecordIssued(Issued("CW1", 1, 7)));
  const Reservation& issued = Granted(ledger_->Reserve(Reserving("CW1", 1)));
  EXPECT_EQ(issued.row.state, UnitState::kIssued);
  EXPECT_EQ(issued.row.model, "SRX4300");
  // Committed: refused, and the row keeps the model its certificate names.
  (void)Granted(ledger_->Commit(Committed("CW1", 1)));
  EXPECT_EQ(Refusal(ledger_->Reserve(other_model)).reason, ledger_refusal::kSerialIssued);
  EXPECT_EQ(ledger_->FindBySerial("CW1")->value().model, "SRX4300");
}

TEST_P(LedgerTest, ReserveRefusesASerialOfAnotherTpmAsAClone) {
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1, "st-a")));
  LedgerRefusal refusal = Refusal(ledger_->Reserve(Reserving("CW1", 2, "st-b")));
  EXPECT_EQ(refusal.reason, ledger_refusal::kClone);
  EXPECT_THAT(refusal.detail, AllOf(HasSubstr("\"CW1\""), HasSubstr(Ek(1).substr(0, 16)),
                                    HasSubstr("\"st-a\""), HasSubstr(Ek(2).substr(0, 16))));
  // A committed serial is a clone too when another TPM asks for it.
  Provision("CW2", 3, 3);
  EXPECT_EQ(Refusal(ledger_->Reserve(Reserving("CW2", 4))).reason, ledger_refusal::kClone);
}

TEST_P(LedgerTest, ReserveRefusesACommittedSerialOnItsOwnTpm) {
  Provision("CW1", 1, 1);
  LedgerRefusal refusal = Refusal(ledger_->Reserve(Reserving("CW1", 1)));
  EXPECT_EQ(refusal.reason, ledger_refusal::kSerialIssued);
  EXPECT_THAT(refusal.detail, AllOf(HasSubstr("\"CW1\""), HasSubstr("\"st-3\"")));
}

TEST_P(LedgerTest, ReserveRefusesATpmThatHoldsAnotherSerial) {
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1, "st-a")));
  LedgerRefusal refusal = Refusal(ledger_->Reserve(Reserving("CW2", 1)));
  EXPECT_EQ(refusal.reason, ledger_refusal::kTpmHasSerial);
  EXPECT_THAT(refusal.detail,
              AllOf(HasSubstr("\"CW1\""), HasSubstr("\"CW2\""), HasSubstr("\"st-a\""),
                    HasSubstr(Ek(1).substr(0, 16)), HasSubstr("resume"), Not(HasSubstr("revoke"))));
  EXPECT_EQ(ledger_->Units()->size(), 1u);
  // An issued (or committed) unit is not released: revoking it is what frees its TPM.
  (void)Granted(ledger_->RecordIssued(Issued("CW1", 1, 1)));
  EXPECT_THAT(Refusal(ledger_->Reserve(Reserving("CW2", 1))).detail,
              AllOf(HasSubstr("idevid factory revoke"), HasSubstr("--serial \"CW1\""),
                    HasSubstr("--reason superseded"), Not(HasSubstr("release"))));
  Provision("CW1", 1, 1);
  EXPECT_EQ(Refusal(ledger_->Reserve(Reserving("CW2", 1))).reason, ledger_refusal::kTpmHasSerial);
  EXPECT_EQ(ledger_->Units()->size(), 1u);
}

TEST_P(LedgerTest, ARevokedUnitsTpmTakesANewSerialAndTheOldRowKeepsItsHistory) {
  UnitRow old = Provision("CW1", 1, 1);
  (void)Granted(ledger_->Revoke("CW1", RevocationReason::kSuperseded, LedgerClock::now()));
  const Reservation& reservation = Granted(ledger_->Reserve(Reserving("CW2", 1)));
  EXPECT_FALSE(reservation.resumed);
  EXPECT_EQ(reservation.row.ek_sha256, Ek(1));
  EXPECT_EQ(ledger_->FindByEk(Ek(1))->value().serial, "CW2");
  UnitRow retired = ledger_->FindBySerial("CW1")->value();
  EXPECT_EQ(retired.ek_sha256, Ek(1));
  EXPECT_EQ(retired.state, UnitState::kCommitted);
  EXPECT_EQ(retired.certificate, old.certificate);
  ASSERT_TRUE(retired.revocation.has_value());
  EXPECT_EQ(retired.revocation->reason, RevocationReason::kSuperseded);
  EXPECT_EQ(ledger_->FindByCertificateSerial("5e01")->value().serial, "CW1");
  EXPECT_EQ(Value(ledger_->Revoked()).size(), 1u);
  // The old serial stays revoked, for this TPM and any other.
  EXPECT_EQ(Refusal(ledger_->Reserve(Reserving("CW1", 1))).reason, ledger_refusal::kRevoked);
  EXPECT_EQ(Refusal(ledger_->Reserve(Reserving("CW1", 2))).reason, ledger_refusal::kClone);
  // The new serial goes through; while it stands the TPM takes no third one, once revoked it may.
  (void)Granted(ledger_->RecordIssued(Issued("CW2", 1, 2)));
  (void)Granted(ledger_->Commit(Committed("CW2", 1)));
  EXPECT_EQ(Refusal(ledger_->Reserve(Reserving("CW3", 1))).reason, ledger_refusal::kTpmHasSerial);
  (void)Granted(ledger_->Revoke("CW2", RevocationReason::kSuperseded, LedgerClock::now()));
  (void)Granted(ledger_->Reserve(Reserving("CW3", 1)));
  EXPECT_EQ(ledger_->FindByEk(Ek(1))->value().serial, "CW3");
  EXPECT_EQ(Value(ledger_->Units()).size(), 3u);
  EXPECT_EQ(Reopen()->FindBySerial("CW2")->value().ek_sha256, Ek(1));
}

TEST_P(LedgerTest, AnIssuedRevokedUnitsTpmTakesANewSerialButNotItsOldKey) {
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  (void)Granted(ledger_->RecordIssued(Issued("CW1", 1, 1)));
  (void)Granted(ledger_->Revoke("CW1", RevocationReason::kKeyCompromise, LedgerClock::now()));
  (void)Granted(ledger_->Reserve(Reserving("CW2", 1)));
  EXPECT_EQ(Refusal(ledger_->RecordIssued(Issued("CW2", 1, 1))).reason, ledger_refusal::kDuplicateKey);
  EXPECT_EQ(ledger_->FindBySerial("CW1")->value().state, UnitState::kIssued);
}

TEST_P(LedgerTest, ASupersededUnitsTpmTakesANewSerialWithTheSameKey) {
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  (void)Granted(ledger_->RecordIssued(Issued("CW1", 1, 1)));
  (void)Granted(ledger_->Revoke("CW1", RevocationReason::kSuperseded, LedgerClock::now()));
  (void)Granted(ledger_->Reserve(Reserving("CW2", 1)));
  IssuedRequest again = Issued("CW2", 1, 1);  // the same key, a new certificate
  again.certificate_serial = "5e99";
  again.certificate = Certificate(99);
  EXPECT_EQ(Granted(ledger_->RecordIssued(again)).idevid_key_sha256, Key(1));
  UnitRow old = Value(ledger_->FindBySerial("CW1")).value();
  EXPECT_TRUE(old.revocation.has_value());
  EXPECT_FALSE(old.certificate.empty());
}

TEST_P(LedgerTest, ReserveRefusesARevokedUnit) {
  Provision("CW1", 1, 1);
  (void)Granted(ledger_->Revoke("CW1", RevocationReason::kKeyCompromise, LedgerClock::now()));
  LedgerRefusal refusal = Refusal(ledger_->Reserve(Reserving("CW1", 1)));
  EXPECT_EQ(refusal.reason, ledger_refusal::kRevoked);
  EXPECT_THAT(refusal.detail, AllOf(HasSubstr("\"CW1\""), HasSubstr("keyCompromise")));
}

TEST_P(LedgerTest, ReserveEscapesTheSerialInARefusal) {
  (void)Granted(ledger_->Reserve(Reserving("CW\x1b[1", 1)));
  LedgerRefusal refusal = Refusal(ledger_->Reserve(Reserving("CW\x1b[1", 2)));
  EXPECT_EQ(refusal.reason, ledger_refusal::kClone);
  EXPECT_THAT(refusal.detail, AllOf(HasSubstr("\"CW\\x1b[1\""), Not(HasSubstr("\x1b"))));
}

TEST_P(LedgerTest, TextWithANulByteIsRefusedAlike) {
  std::string serial(
      "CW\0"
      "1",
      4);
  EXPECT_THAT(
      ledger_->Reserve(Reserving(serial, 1)),
      ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("\"CW\\x001\" contains a NUL")));
  EXPECT_THAT(ledger_->FindBySerial(serial), ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, _));
  EXPECT_TRUE(Value(ledger_->Units()).empty());
}

TEST_P(LedgerTest, ReserveNeedsASerialAndAnEk) {
  EXPECT_THAT(ledger_->Reserve(Reserving("", 1)),
              ResultIs(ErrorDomain::kUsage, UsageCode::kMissingArgument, HasSubstr("serial")));
}

TEST_P(LedgerTest, RecordIssuedStoresTheCertificate) {
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  const UnitRow& row = Granted(ledger_->RecordIssued(Issued("CW1", 1, 7)));
  EXPECT_EQ(row.state, UnitState::kIssued);
  EXPECT_EQ(row.station, "st-2");
  EXPECT_EQ(row.idevid_key_sha256, Key(7));
  EXPECT_EQ(row.certificate_serial, "5e07");
  EXPECT_EQ(row.certificate, Certificate(7));
  EXPECT_TRUE(row.issued_at.has_value());
  EXPECT_EQ(ledger_->FindBySerial("CW1")->value().certificate, Certificate(7));
}

TEST_P(LedgerTest, RecordIssuedIsIdempotentAndUpdatesAnIssuedRow) {
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  UnitRow first = Granted(ledger_->RecordIssued(Issued("CW1", 1, 7)));
  UnitRow again = Granted(ledger_->RecordIssued(Issued("CW1", 1, 7)));
  EXPECT_EQ(again.issued_at, first.issued_at);
  EXPECT_EQ(again.certificate, first.certificate);
  // A resumed unit whose key changed gets its new certificate recorded.
  const UnitRow& changed = Granted(ledger_->RecordIssued(Issued("CW1", 1, 8)));
  EXPECT_EQ(changed.idevid_key_sha256, Key(8));
  EXPECT_EQ(changed.certificate_serial, "5e08");
  EXPECT_EQ(ledger_->FindByCertificateSerial("5e07")->has_value(), false);
  EXPECT_EQ(ledger_->FindByCertificateSerial("5e08")->value().serial, "CW1");
}

TEST_P(LedgerTest, RecordIssuedRefusesWithoutAReservationByThisTpm) {
  EXPECT_EQ(Refusal(ledger_->RecordIssued(Issued("CW1", 1, 7))).reason, ledger_refusal::kWrongState);
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  LedgerRefusal refusal = Refusal(ledger_->RecordIssued(Issued("CW1", 2, 7)));
  EXPECT_EQ(refusal.reason, ledger_refusal::kWrongState);
  EXPECT_THAT(refusal.detail, HasSubstr("\"CW1\""));
}

TEST_P(LedgerTest, RecordIssuedRefusesACommittedUnit) {
  Provision("CW1", 1, 1);
  EXPECT_EQ(Refusal(ledger_->RecordIssued(Issued("CW1", 1, 1))).reason, ledger_refusal::kWrongState);
  EXPECT_EQ(Refusal(ledger_->RecordIssued(Issued("CW1", 1, 2))).reason, ledger_refusal::kWrongState);
}

TEST_P(LedgerTest, RecordIssuedRefusesAKeyOrCertificateSerialOfAnotherUnit) {
  Provision("CW1", 1, 1);
  (void)Granted(ledger_->Reserve(Reserving("CW2", 2)));
  LedgerRefusal same_key = Refusal(ledger_->RecordIssued(Issued("CW2", 2, 1)));
  EXPECT_EQ(same_key.reason, ledger_refusal::kDuplicateKey);
  EXPECT_THAT(same_key.detail, AllOf(HasSubstr("\"CW1\""), HasSubstr(Key(1).substr(0, 16))));
  IssuedRequest same_serial = Issued("CW2", 2, 2);
  same_serial.certificate_serial = "5e01";
  LedgerRefusal refusal = Refusal(ledger_->RecordIssued(same_serial));
  EXPECT_EQ(refusal.reason, ledger_refusal::kDuplicateKey);
  EXPECT_THAT(refusal.detail, AllOf(HasSubstr("\"5e01\""), HasSubstr("\"CW1\"")));
  EXPECT_EQ(ledger_->FindBySerial("CW2")->value().state, UnitState::kReserved);
}

TEST_P(LedgerTest, CommitRecordsTheLineCheckAndTheRecord) {
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  (void)Granted(ledger_->RecordIssued(Issued("CW1", 1, 1)));
  CommitRequest request = Committed("CW1", 1);
  request.line_check = "FAIL";
  const UnitRow& row = Granted(ledger_->Commit(request));
  EXPECT_EQ(row.state, UnitState::kCommitted);
  EXPECT_EQ(row.line_check, "FAIL");
  EXPECT_EQ(row.station, "st-3");
  EXPECT_EQ(row.record, request.record);
  EXPECT_TRUE(row.committed_at.has_value());
  EXPECT_EQ(ledger_->FindBySerial("CW1")->value().record, request.record);
}

TEST_P(LedgerTest, CommitIsIdempotent) {
  UnitRow first = Provision("CW1", 1, 1);
  UnitRow again = Granted(ledger_->Commit(Committed("CW1", 1)));
  EXPECT_EQ(again.committed_at, first.committed_at);
  EXPECT_EQ(again.state, UnitState::kCommitted);
}

TEST_P(LedgerTest, CommitRefusesAUnitNotIssuedByThisTpm) {
  EXPECT_EQ(Refusal(ledger_->Commit(Committed("CW1", 1))).reason, ledger_refusal::kWrongState);
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  LedgerRefusal reserved = Refusal(ledger_->Commit(Committed("CW1", 1)));
  EXPECT_EQ(reserved.reason, ledger_refusal::kWrongState);
  EXPECT_THAT(reserved.detail, HasSubstr("no certificate"));
  (void)Granted(ledger_->RecordIssued(Issued("CW1", 1, 1)));
  EXPECT_EQ(Refusal(ledger_->Commit(Committed("CW1", 2))).reason, ledger_refusal::kWrongState);
}

TEST_P(LedgerTest, CommitTakesOnlyPassOrFail) {
  CommitRequest request = Committed("CW1", 1);
  request.line_check = "MAYBE";
  EXPECT_THAT(ledger_->Commit(request),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("\"MAYBE\"")));
}

TEST_P(LedgerTest, ReleaseFreesOnlyAReservationWithoutCertificate) {
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  ASSERT_TRUE(ledger_->Release("CW1", Ek(2)).has_value());  // another TPM's: nothing happens
  EXPECT_TRUE(ledger_->FindBySerial("CW1")->has_value());
  ASSERT_TRUE(ledger_->Release("CW1", Ek(1)).has_value());
  EXPECT_FALSE(ledger_->FindBySerial("CW1")->has_value());
  // The freed serial goes to another TPM, the freed TPM to another serial.
  (void)Granted(ledger_->Reserve(Reserving("CW1", 2)));
  (void)Granted(ledger_->Reserve(Reserving("CW2", 1)));
  (void)Granted(ledger_->RecordIssued(Issued("CW2", 1, 5)));
  ASSERT_TRUE(ledger_->Release("CW2", Ek(1)).has_value());
  EXPECT_EQ(ledger_->FindBySerial("CW2")->value().state, UnitState::kIssued);
  ASSERT_TRUE(ledger_->Release("CW9", Ek(9)).has_value());
}

TEST_P(LedgerTest, FindsUnitsBySerialCertificateSerialAndEk) {
  Provision("CW1", 1, 1);
  (void)Granted(ledger_->Reserve(Reserving("CW2", 2)));
  EXPECT_EQ(ledger_->FindBySerial("CW2")->value().ek_sha256, Ek(2));
  EXPECT_EQ(ledger_->FindByCertificateSerial("5e01")->value().serial, "CW1");
  EXPECT_EQ(ledger_->FindByEk(Ek(2))->value().serial, "CW2");
  EXPECT_FALSE(ledger_->FindBySerial("CW3")->has_value());
  EXPECT_FALSE(ledger_->FindByCertificateSerial("5e02")->has_value());
  EXPECT_FALSE(ledger_->FindByEk(Ek(3))->has_value());
}

TEST_P(LedgerTest, UnitsAreOrderedBySerialBytewise) {
  for (const auto& [serial, tpm] :
       std::vector<std::pair<std::string, int>>{{"b-2", 1}, {"B1", 2}, {"a", 3}, {"B-1", 4}}) {
    (void)Granted(ledger_->Reserve(Reserving(serial, tpm)));
  }
  std::vector<std::string> serials;
  for (const UnitRow& row : Value(ledger_->Units())) serials.push_back(row.serial);
  EXPECT_THAT(serials, ::testing::ElementsAre("B-1", "B1", "a", "b-2"));
}

TEST_P(LedgerTest, RevokeRefusesAnUnknownOrUnissuedUnit) {
  LedgerRefusal unknown = Refusal(ledger_->Revoke("CW1", RevocationReason::kSuperseded, LedgerClock::now()));
  EXPECT_EQ(unknown.reason, ledger_refusal::kUnknownSerial);
  EXPECT_THAT(unknown.detail, HasSubstr("\"CW1\""));
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  EXPECT_EQ(Refusal(ledger_->Revoke("CW1", RevocationReason::kSuperseded, LedgerClock::now())).reason,
            ledger_refusal::kWrongState);
}

TEST_P(LedgerTest, RevokeKeepsTheFirstReasonAndTime) {
  Provision("CW1", 1, 1);
  auto since = LedgerClock::time_point(std::chrono::milliseconds(1'764'000'000'123));
  const UnitRow& row = Granted(ledger_->Revoke("CW1", RevocationReason::kKeyCompromise, since));
  ASSERT_TRUE(row.revocation.has_value());
  EXPECT_EQ(row.revocation->reason, RevocationReason::kKeyCompromise);
  EXPECT_EQ(row.revocation->since, since);
  const UnitRow& again = Granted(ledger_->Revoke("CW1", RevocationReason::kSuperseded, LedgerClock::now()));
  EXPECT_EQ(again.revocation->reason, RevocationReason::kKeyCompromise);
  EXPECT_EQ(again.revocation->since, since);
  EXPECT_EQ(ledger_->FindBySerial("CW1")->value().revocation->reason, RevocationReason::kKeyCompromise);
}

TEST_P(LedgerTest, AnIssuedUnitCanBeRevokedAndIsNotCommittedThen) {
  (void)Granted(ledger_->Reserve(Reserving("CW1", 1)));
  (void)Granted(ledger_->RecordIssued(Issued("CW1", 1, 1)));
  (void)Granted(ledger_->Revoke("CW1", RevocationReason::kCessationOfOperation, LedgerClock::now()));
  EXPECT_EQ(Refusal(ledger_->Commit(Committed("CW1", 1))).reason, ledger_refusal::kRevoked);
  EXPECT_EQ(Refusal(ledger_->RecordIssued(Issued("CW1", 1, 2))).reason, ledger_refusal::kRevoked);
}

TEST_P(LedgerTest, RevokedListsTheRevokedUnitsByCertificateSerial) {
  Provision("CW1", 1, 0x30);
  Provision("CW2", 2, 0x10);
  Provision("CW3", 3, 0x20);
  (void)Granted(ledger_->Revoke("CW1", RevocationReason::kKeyCompromise, LedgerClock::now()));
  (void)Granted(ledger_->Revoke("CW2", RevocationReason::kSuperseded, LedgerClock::now()));
  std::vector<std::string> serials;
  for (const UnitRow& row : Value(ledger_->Revoked())) serials.push_back(row.certificate_serial);
  EXPECT_THAT(serials, ::testing::ElementsAre("5e10", "5e30"));
}

TEST_P(LedgerTest, CrlNumbersIncreaseAcrossConnectionsAndReopening) {
  auto other = Reopen();
  std::uint64_t last = 0;
  for (int i = 0; i < 4; ++i) {
    auto mine = ledger_->NextCrlNumber();
    auto theirs = other->NextCrlNumber();
    ASSERT_TRUE(mine && theirs);
    EXPECT_GT(*mine, last);
    EXPECT_GT(*theirs, *mine);
    last = *theirs;
  }
  EXPECT_EQ(last, 8u);
  ledger_.reset();
  EXPECT_EQ(*Reopen()->NextCrlNumber(), 9u);
}

TEST_P(LedgerTest, AnOlderSchemaIsMigratedWithItsRows) {
  std::string spec = NewSpec();
  {
    auto connection = OpenSqlConnection(spec);
    ASSERT_TRUE(connection) << connection.error().ToString();
    auto old = OpenSqlLedger(std::move(*connection), 1);
    ASSERT_TRUE(old) << old.error().ToString();
    EXPECT_EQ((*old)->schema_version(), 1);
  }
  {
    auto connection = OpenSqlConnection(spec);
    ASSERT_TRUE(connection);
    ASSERT_TRUE((*connection)
                    ->Query("INSERT INTO units (serial, model, station, state, ek_sha256, reserved_at) "
                            "VALUES ($1, 'SRX4300', 'st-1', 'reserved', $2, $3)",
                            {std::string("CW1"), Ek(1), std::int64_t{1'764'000'000'000}}));
  }
  auto ledger = OpenLedger(spec);
  ASSERT_TRUE(ledger) << ledger.error().ToString();
  EXPECT_EQ((*ledger)->schema_version(), LatestLedgerSchemaVersion());
  auto row = (*ledger)->FindBySerial("CW1");
  ASSERT_TRUE(row && row->has_value());
  EXPECT_EQ((*row)->ek_sha256, Ek(1));
  EXPECT_FALSE((*row)->revocation.has_value());
  EXPECT_EQ(*(*ledger)->NextCrlNumber(), 1u);
}

TEST_P(LedgerTest, AVersion2LedgerIsMigratedAndItsRevokedUnitsTpmTakesANewSerial) {
  std::string spec = NewSpec();
  {
    auto connection = OpenSqlConnection(spec);
    ASSERT_TRUE(connection) << connection.error().ToString();
    auto old = OpenSqlLedger(std::move(*connection), 2);
    ASSERT_TRUE(old) << old.error().ToString();
    EXPECT_EQ((*old)->schema_version(), 2);
  }
  {
    auto connection = OpenSqlConnection(spec);
    ASSERT_TRUE(connection);
    for (int n : {1, 2}) {
      auto inserted = (*connection)
                          ->Query(
                              "INSERT INTO units (serial, model, station, state, ek_sha256, "
                              "idevid_key_sha256, certificate_serial, certificate, line_check, record, "
                              "reserved_at, issued_at, committed_at, revocation_reason, revoked_at) "
                              "VALUES ($1, 'SRX4300', 'st-3', 'committed', $2, $3, $4, $5, 'PASS', "
                              "'{}', 1764000000000, 1764000000001, 1764000000002, $6, $7)",
                              {fmt::format("CW{}", n), Ek(n), Key(n), fmt::format("5e{:02x}", n),
                               Certificate(n), n == 1 ? SqlValue(std::int64_t{4}) : SqlValue(),
                               n == 1 ? SqlValue(std::int64_t{1764000000003}) : SqlValue()});
      ASSERT_TRUE(inserted) << inserted.error().ToString();
    }
  }
  auto ledger = OpenLedger(spec);
  ASSERT_TRUE(ledger) << ledger.error().ToString();
  EXPECT_EQ((*ledger)->schema_version(), LatestLedgerSchemaVersion());
  UnitRow revoked = Value((*ledger)->FindBySerial("CW1")).value();
  EXPECT_EQ(revoked.ek_sha256, Ek(1));
  EXPECT_EQ(revoked.certificate, Certificate(1));
  ASSERT_TRUE(revoked.revocation.has_value());
  EXPECT_EQ(revoked.revocation->reason, RevocationReason::kSuperseded);
  EXPECT_EQ(Value((*ledger)->FindByEk(Ek(2))).value().serial, "CW2");
  // The constraints came through the migration: a unit still cannot take another's key or EK.
  EXPECT_EQ(Refusal((*ledger)->Reserve(Reserving("CW3", 2))).reason, ledger_refusal::kTpmHasSerial);
  (void)Granted((*ledger)->Reserve(Reserving("CW3", 1)));
  EXPECT_EQ(Refusal((*ledger)->RecordIssued(Issued("CW3", 1, 2))).reason, ledger_refusal::kDuplicateKey);
  EXPECT_EQ(Value((*ledger)->FindByEk(Ek(1))).value().serial, "CW3");
  EXPECT_EQ(Value((*ledger)->Revoked()).size(), 1u);
}

TEST_P(LedgerTest, ANewerSchemaIsRefused) {
  {
    auto connection = OpenSqlConnection(spec_);
    ASSERT_TRUE(connection);
    ASSERT_TRUE((*connection)->Query("INSERT INTO schema_version (version, applied_at) VALUES (99, 0)"));
  }
  EXPECT_THAT(OpenLedger(spec_),
              ResultIs(ErrorDomain::kDatabase, kLedgerOwnError,
                       AllOf(HasSubstr("version 99"), HasSubstr("newer"), HasSubstr(ledger_->location()))));
}

TEST_P(LedgerTest, ThreadsSharingOneLedgerReserveEachSerialOnce) {
  constexpr int kThreads = 4, kSerials = 15;
  std::atomic<int> granted{0}, refused{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int s = 0; s < kSerials; ++s) {
        auto answer = ledger_->Reserve(Reserving(fmt::format("CW{:02}", s), t * 100 + s));
        if (!answer)
          ++failed;
        else if (std::holds_alternative<Reservation>(*answer))
          ++granted;
        else if (std::get<LedgerRefusal>(*answer).reason == ledger_refusal::kClone)
          ++refused;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(granted, kSerials);
  EXPECT_EQ(refused, (kThreads - 1) * kSerials);
  EXPECT_EQ(ledger_->Units()->size(), static_cast<std::size_t>(kSerials));
}

TEST_P(LedgerTest, StationsRacingForOneKeyGetItOnceAndTheOthersLearnWhoHasIt) {
  constexpr int kStations = 4, kRounds = 5;
  std::vector<std::unique_ptr<Ledger>> stations;
  for (int t = 0; t < kStations; ++t) stations.push_back(Reopen());  // a connection each, as processes
  for (int round = 0; round < kRounds; ++round) {
    for (int t = 0; t < kStations; ++t) {
      (void)Granted(stations[t]->Reserve(Reserving(fmt::format("R{}-{}", round, t), round * 10 + t)));
    }
    std::atomic<int> waiting{kStations};
    std::vector<Result<LedgerAnswer<UnitRow>>> answers(kStations);
    std::vector<std::thread> threads;
    for (int t = 0; t < kStations; ++t) {
      threads.emplace_back([&, t] {
        --waiting;
        while (waiting > 0) std::this_thread::yield();  // all at once
        answers[t] =
            stations[t]->RecordIssued(Issued(fmt::format("R{}-{}", round, t), round * 10 + t, 100 + round));
      });
    }
    for (auto& thread : threads) thread.join();
    std::string winner;
    int refused = 0;
    for (int t = 0; t < kStations; ++t) {
      ASSERT_TRUE(answers[t].has_value()) << answers[t].error().ToString();
      if (std::holds_alternative<UnitRow>(*answers[t])) {
        EXPECT_TRUE(winner.empty()) << "the key was given twice";
        winner = std::get<UnitRow>(*answers[t]).serial;
      }
    }
    ASSERT_FALSE(winner.empty());
    for (int t = 0; t < kStations; ++t) {
      if (const auto* refusal = std::get_if<LedgerRefusal>(&*answers[t])) {
        ++refused;
        EXPECT_EQ(refusal->reason, ledger_refusal::kDuplicateKey);
        EXPECT_THAT(refusal->detail, HasSubstr("\"" + winner + "\""));
      }
    }
    EXPECT_EQ(refused, kStations - 1);
  }
}

// Each child process opens its own ledger and reserves every serial with a TPM of its own; its
// exit status is 100 + the serials it got, 1 for an error or an unexpected refusal.
int ReserveInChild(const std::string& spec, int child, int serials) {
  auto ledger = OpenLedger(spec);
  if (!ledger) {
    fmt::print(stderr, "child {}: {}\n", child, ledger.error().ToString());
    return 1;
  }
  int granted = 0;
  for (int s = 0; s < serials; ++s) {
    auto answer = (*ledger)->Reserve(
        Reserving(fmt::format("CW{:02}", s), child * 100 + s, fmt::format("st-{}", child)));
    if (!answer) {
      fmt::print(stderr, "child {}: {}\n", child, answer.error().ToString());
      return 1;
    }
    if (std::holds_alternative<Reservation>(*answer)) {
      ++granted;
      auto issued =
          (*ledger)->RecordIssued(Issued(fmt::format("CW{:02}", s), child * 100 + s, child * 100 + s));
      if (!issued || !std::holds_alternative<UnitRow>(*issued)) {
        fmt::print(stderr, "child {}: recording {}: {}\n", child, s,
                   issued ? std::get<LedgerRefusal>(*issued).detail : issued.error().ToString());
        return 1;
      }
    } else if (std::get<LedgerRefusal>(*answer).reason != ledger_refusal::kClone) {
      return 1;
    }
  }
  return 100 + granted;
}

TEST_P(LedgerTest, ProcessesSharingTheDatabaseReserveEachSerialOnce) {
  constexpr int kChildren = 4, kSerials = 20;
  // A database nobody opened yet: the children also race to create its schema.
  std::string fresh = NewSpec();
  std::vector<pid_t> children;
  for (int c = 1; c <= kChildren; ++c) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(ReserveInChild(fresh, c, kSerials));
    children.push_back(pid);
  }
  int granted = 0;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_GE(WEXITSTATUS(status), 100) << "a child failed";
    granted += WEXITSTATUS(status) - 100;
  }
  EXPECT_EQ(granted, kSerials);
  ledger_ = Value(OpenLedger(fresh));
  EXPECT_EQ(ledger_->schema_version(), LatestLedgerSchemaVersion());
  auto units = ledger_->Units();
  ASSERT_TRUE(units);
  ASSERT_EQ(units->size(), static_cast<std::size_t>(kSerials));
  std::set<std::string> keys;
  for (const UnitRow& row : *units) {
    EXPECT_EQ(row.state, UnitState::kIssued);
    keys.insert(row.idevid_key_sha256);
  }
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kSerials));
}

// Runs a step until the database answers (the steps are idempotent, so a retry after a lost
// answer is harmless), counting the failures; a refusal or a 30 s outage fails the test.
template <typename Step>
auto UntilAnswered(Step step, std::atomic<int>& failures) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    auto answer = step();
    if (answer || std::chrono::steady_clock::now() > deadline) return Granted(answer);
    EXPECT_EQ(answer.error().domain(), ErrorDomain::kDatabase) << answer.error().ToString();
    ++failures;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a station's back-off, not a readiness wait
  }
}

TEST_P(LedgerTest, TheLocationShowsNoPassword) {
  if (GetParam() == Backend::kSqlite) {
    EXPECT_EQ(ledger_->location(), spec_);
    return;
  }
  auto keywords = OpenLedger(spec_ + " password='s3cret x'");
  ASSERT_TRUE(keywords) << keywords.error().ToString();
  EXPECT_THAT((*keywords)->location(),
              AllOf(HasSubstr("dbname=" + database_), HasSubstr("host=" + postgres_->socket_dir().string()),
                    HasSubstr("user=postgres"), Not(HasSubstr("s3cret")), Not(HasSubstr("password"))));
  std::string url = fmt::format("postgresql://postgres:s3cret@/{}?host={}&password=s3cret&port=5432",
                                database_, postgres_->socket_dir().string());
  auto by_url = OpenLedger(url);
  ASSERT_TRUE(by_url) << by_url.error().ToString();
  EXPECT_EQ((*by_url)->location(), fmt::format("postgresql://postgres@/{}?host={}&port=5432", database_,
                                               postgres_->socket_dir().string()));
}

// What only a database server does: stop, restart, deny a lock to a rival session.
class PostgresLedgerTest : public LedgerTest {};

TEST_P(PostgresLedgerTest, ADatabaseThatStopsFailsEachCallUntilItIsBack) {
  Provision("CW1", 1, 1);
  ASSERT_TRUE(postgres_->StopServer());
  EXPECT_THAT(ledger_->Reserve(Reserving("CW2", 2)),
              ResultIs(ErrorDomain::kDatabase, SqlStateCode("08001"),
                       AllOf(HasSubstr(ledger_->location()), HasSubstr("server runs"))));
  EXPECT_THAT(ledger_->FindBySerial("CW1"),
              ResultIs(ErrorDomain::kDatabase, SqlStateCode("08001"), HasSubstr("finding a unit")));
  ASSERT_TRUE(postgres_->StartServer());
  Reservation reservation = Granted(ledger_->Reserve(Reserving("CW2", 2)));
  EXPECT_FALSE(reservation.resumed);
  EXPECT_EQ(Value(ledger_->Units()).size(), 2u);
  EXPECT_EQ(Value(ledger_->FindBySerial("CW1"))->state, UnitState::kCommitted);
}

TEST_P(PostgresLedgerTest, AStepDeniedTheWriteLockLeavesTheConnectionUsable) {
  // A rival session holds the write lock while the database gives up waiting for a lock after
  // 200 ms: the step's Begin fails after its BEGIN ran.
  std::unique_ptr<PGconn, decltype(&PQfinish)> rival(PQconnectdb(spec_.c_str()), &PQfinish);
  ASSERT_EQ(PQstatus(rival.get()), CONNECTION_OK) << PQerrorMessage(rival.get());
  auto run = [&](const std::string& sql) {
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(rival.get(), sql.c_str()), &PQclear);
    ExecStatusType status = PQresultStatus(result.get());
    EXPECT_TRUE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        << sql << ": " << PQerrorMessage(rival.get());
  };
  run(fmt::format("ALTER DATABASE {} SET lock_timeout = '200ms'", database_));
  ledger_ = Reopen();  // a new session takes the setting
  run(fmt::format("BEGIN; SELECT pg_advisory_xact_lock({})", kPostgresWriteLockKey));
  EXPECT_THAT(ledger_->Reserve(Reserving("CW1", 1)),
              ResultIs(ErrorDomain::kDatabase, SqlStateCode("55P03"), HasSubstr("reserving")));
  run("COMMIT");
  // No transaction of the failed step is left open on the connection: the next steps run.
  EXPECT_FALSE(Granted(ledger_->Reserve(Reserving("CW1", 1))).resumed);
  EXPECT_EQ(Value(ledger_->FindBySerial("CW1"))->state, UnitState::kReserved);
}

TEST_P(PostgresLedgerTest, AfterARestartBetweenTwoCallsTheNextCallWorks) {
  Provision("CW1", 1, 1);
  ASSERT_TRUE(postgres_->Restart());
  // The connection broke while idle: a read and a write each connect again before they run.
  EXPECT_EQ(Value(ledger_->FindBySerial("CW1"))->state, UnitState::kCommitted);
  ASSERT_TRUE(postgres_->Restart());
  EXPECT_FALSE(Granted(ledger_->Reserve(Reserving("CW2", 2))).resumed);
}

TEST_P(PostgresLedgerTest, ABatchLosesAndDuplicatesNothingWhenTheDatabaseRestartsUnderIt) {
  constexpr int kUnits = 40;
  std::atomic<int> failures{0}, committed{0};
  std::thread line([&] {
    for (int u = 0; u < kUnits; ++u) {
      std::string serial = fmt::format("CW{:02}", u);
      (void)UntilAnswered([&] { return ledger_->Reserve(Reserving(serial, u)); }, failures);
      (void)UntilAnswered([&] { return ledger_->RecordIssued(Issued(serial, u, u)); }, failures);
      (void)UntilAnswered([&] { return ledger_->Commit(Committed(serial, u)); }, failures);
      ++committed;
    }
  });
  bool midway = PollUntil([&] { return committed >= 10; }, std::chrono::seconds(30));
  auto restarted = postgres_->Restart();
  line.join();
  ASSERT_TRUE(midway);
  ASSERT_TRUE(restarted) << restarted.error().ToString();
  std::vector<UnitRow> units = Value(ledger_->Units());
  ASSERT_EQ(units.size(), static_cast<std::size_t>(kUnits));
  std::set<std::string> keys;
  for (const UnitRow& row : units) {
    EXPECT_EQ(row.state, UnitState::kCommitted) << row.serial;
    keys.insert(row.certificate_serial);
  }
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kUnits));
  RecordProperty("failed_calls_during_restart", failures.load());
}

TEST(LedgerSpecTest, AnUnreachablePostgresIsADatabaseErrorThatShowsNoPassword) {
  testing::TempDir temp;
  std::string spec = fmt::format("host={} dbname=line user=line password=s3cret", temp.path().string());
  EXPECT_THAT(OpenLedger(spec), ResultIs(ErrorDomain::kDatabase, SqlStateCode("08001"),
                                         AllOf(HasSubstr("host=" + temp.path().string()),
                                               HasSubstr("dbname=line"), Not(HasSubstr("s3cret")))));
  EXPECT_THAT(OpenLedger(fmt::format("postgresql://line:s3cret@/line?host={}", temp.path().string())),
              ResultIs(ErrorDomain::kDatabase, SqlStateCode("08001"),
                       AllOf(HasSubstr("postgresql://line@/line"), Not(HasSubstr("s3cret")))));
}

TEST(LedgerSpecTest, AMalformedPostgresSpecIsAUsageErrorThatShowsNoPassword) {
  EXPECT_THAT(OpenLedger("host=/run/pg dbname=line password=s3 cret"),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                       AllOf(HasSubstr("keyword=value"), Not(HasSubstr("cret")))));
  EXPECT_THAT(OpenLedger("postgresql://line:s3cret@db/line?nosuch=1"),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, Not(HasSubstr("s3cret"))));
}

TEST(LedgerSpecTest, ABadSpecIsAUsageErrorThatShowsNoPassword) {
  EXPECT_THAT(OpenLedger("mysql://line:s3cret@db/ledger"),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                       AllOf(HasSubstr("\"mysql:\""), HasSubstr("sqlite:PATH"), Not(HasSubstr("s3cret")))));
  EXPECT_THAT(OpenLedger("ledger.sqlite"),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr("sqlite:PATH")));
  EXPECT_THAT(OpenLedger("sqlite:"),
              ResultIs(ErrorDomain::kUsage, UsageCode::kMissingArgument, HasSubstr("no file")));
}

TEST(LedgerSpecTest, ASqliteFileThatCannotBeOpenedIsADatabaseError) {
  testing::TempDir temp;
  std::string spec = "sqlite:" + (temp.path() / "missing" / "ledger.sqlite").string();
  auto opened = OpenLedger(spec);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().domain(), ErrorDomain::kDatabase);
  EXPECT_EQ(opened.error().code(), 14u);  // SQLITE_CANTOPEN
  EXPECT_THAT(opened.error().message(), AllOf(HasSubstr(spec), HasSubstr("directory exists")));
}

TEST(LedgerSpecTest, AFileThatIsNotSqliteIsADatabaseError) {
  testing::TempDir temp;
  auto path = temp.path() / "ledger.sqlite";
  FILE* file = std::fopen(path.c_str(), "w");
  std::fputs("this is not a database, not even close to one, but long enough to be read as a header\n", file);
  std::fclose(file);
  auto opened = OpenLedger("sqlite:" + path.string());
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().domain(), ErrorDomain::kDatabase);
  EXPECT_EQ(opened.error().code(), 26u);  // SQLITE_NOTADB
  EXPECT_THAT(opened.error().message(), HasSubstr("backup"));
}

INSTANTIATE_TEST_SUITE_P(Backends, LedgerTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, PostgresLedgerTest, ::testing::Values(Backend::kPostgres), BackendName);

}  // namespace
}  // namespace idevid
