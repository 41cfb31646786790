// TCG enrolment on manufactured swtpm instances: the good path for both key types, and every
// forgery the authority must refuse, each with its reason and with nothing issued.
#include <algorithm>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include "core/testing/result_matchers.h"
#include "core/tpm_attest.h"
#include "core/tpm_keys.h"
#include "core/tpm_nv.h"
#include "core/tss_error.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "engine/enrolment_forgeries.h"
#include "engine/swtpm_instance.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/enrolment_authority.h"
#include "provisioning/enrolment_forgery.h"
#include "provisioning/enrolment_station.h"
#include "provisioning/factory.h"
#include "provisioning/line_check.h"
#include "provisioning/provisioner.h"
#include "provisioning/tcg_csr.h"
#include "provisioning/unit_tpm.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::testing::HasSubstr;

constexpr char kSerial[] = "CW0000000001";

constexpr char kModel[] = "SRX4300";

class EnrolmentTest : public testing::TpmTestBase, public ::testing::TestWithParam<KeyAlgorithm> {
 protected:
  void SetUp() override {
    StartTpm(testing::TpmAccess::kDirect, /*manufacture=*/true);
    auto factory = InitFactory({.dir = dir() / "factory", .algorithm = GetParam()});
    ASSERT_TRUE(factory) << factory.error().ToString();
    authority_ = MakeAuthority({swtpm().vendor_ca()});
  }
  void TearDown() override { StopTpm(); }

  std::unique_ptr<EnrolmentAuthority> MakeAuthority(
      std::vector<std::filesystem::path> vendor_cas,
      std::chrono::milliseconds lifetime = std::chrono::seconds(60)) {
    auto factory = LoadFactory(dir() / "factory");
    EXPECT_TRUE(factory) << factory.error().ToString();
    AuthorityOptions options{.tpm_vendor_cas = std::move(vendor_cas), .session_lifetime = lifetime};
    options.log = [this](const std::string& line) { log_.push_back(line); };
    auto authority = EnrolmentAuthority::Create(std::move(*factory), std::move(options));
    EXPECT_TRUE(authority) << authority.error().ToString();
    return std::move(*authority);
  }

  EnrolRequest Request(std::string serial = kSerial) const {
    return {.serial = std::move(serial), .model = kModel, .algorithm = GetParam()};
  }

  // Enrols through `channel` and expects the authority's refusal with `reason`.
  EnrolmentRefusal ExpectRefused(EnrolmentChannel& channel, std::string_view reason,
                                 EnrolRequest request = {}) {
    if (request.serial.empty()) request = Request();
    auto result = EnrolUnit(tpm(), channel, request);
    EXPECT_TRUE(result) << result.error().ToString();
    if (!result || !result->refusal) {
      ADD_FAILURE() << "the unit was enrolled; expected a refusal for " << reason;
      return {};
    }
    EXPECT_EQ(result->refusal->reason, reason) << result->refusal->detail;
    EXPECT_THAT(log_, ::testing::Contains(HasSubstr(std::string(reason)))) << "the authority's log names it";
    ExpectNothingIssued(request.serial);
    return *result->refusal;
  }

  // No certificate in NV, no key left behind, no serial recorded as issued.
  void ExpectNothingIssued(const std::string& serial) {
    for (TpmHandle index : {0x01C90000u, 0x01C90100u}) {
      auto pub = NvReadPublic(tpm(), index);
      EXPECT_FALSE(pub) << fmt::format("NV {:#010x} was written", index);
    }
    for (TpmHandle handle : {0x81020000u, 0x81020001u}) {
      EXPECT_FALSE(ReadPersistentPublic(tpm(), handle)) << fmt::format("a key stayed at {:#010x}", handle);
    }
    auto row = authority_->ledger().FindBySerial(serial);
    ASSERT_THAT(row, IsOk());
    EXPECT_FALSE(row->has_value()) << "serial " << serial << " is in the ledger";
  }

  std::unique_ptr<EnrolmentAuthority> authority_;
  std::vector<std::string> log_;
};

TEST_P(EnrolmentTest, EnrolsAUnitWhoseKeysLiveInItsTpm) {
  auto result = EnrolUnit(tpm(), *authority_, Request());
  ASSERT_TRUE(result) << result.error().ToString();
  ASSERT_FALSE(result->refusal) << result->refusal->reason << ": " << result->refusal->detail;
  // Both certificates are in NV, write-locked, and name the serial; the IAK's carries
  // verifiedTPMRestricted besides the IDevID's policies.
  for (auto [index, cert] : {std::pair{0x01C90000u, &result->idevid_certificate},
                             std::pair{0x01C90100u, &result->iak_certificate}}) {
    auto der = NvRead(tpm(), index);
    ASSERT_TRUE(der) << der.error().ToString();
    EXPECT_EQ(*der, *CertificateDer(**cert));
    auto pub = NvReadPublic(tpm(), index);
    ASSERT_TRUE(pub);
    EXPECT_TRUE(pub->write_locked());
    EXPECT_THAT(SubjectAttribute(**cert, "2.5.4.5"), ::testing::Optional(::testing::ElementsAre(kSerial)));
  }
  EXPECT_THAT(CertificatePolicyOids(*result->iak_certificate),
              ::testing::ElementsAre("2.23.133.11.1.1", "2.23.133.11.1.2", "2.23.133.11.1.3"));
  EXPECT_THAT(CertificatePolicyOids(*result->idevid_certificate),
              ::testing::ElementsAre("2.23.133.11.1.1", "2.23.133.11.1.2"));
  // The certificates' keys are the TPM's keys at their handles.
  for (auto [handle, cert] : {std::pair{0x81020000u, &result->idevid_certificate},
                              std::pair{0x81020001u, &result->iak_certificate}}) {
    auto pub = ReadPersistentPublic(tpm(), handle);
    ASSERT_TRUE(pub) << pub.error().ToString();
    auto key = PublicKeyFromTpm(pub->publicArea);
    ASSERT_TRUE(key);
    EXPECT_EQ(*PublicKeyDer(**key), *PublicKeyDer(*X509_get0_pubkey(cert->get())));
  }
  // The ledger holds the unit as issued (for this EK, this key, this certificate) until the
  // station commits it.
  auto row = authority_->ledger().FindBySerial(kSerial);
  ASSERT_THAT(row, IsOk());
  ASSERT_TRUE(row->has_value());
  EXPECT_EQ((*row)->state, UnitState::kIssued);
  EXPECT_EQ((*row)->certificate, *CertificateDer(*result->idevid_certificate));
  EXPECT_EQ((*row)->idevid_key_sha256, *PublicKeySha256(*X509_get0_pubkey(result->idevid_certificate.get())));
  auto committed = CommitEnrolment(*authority_, Request(), *result, "PASS", {{"outcome", "PASS"}});
  ASSERT_THAT(committed, IsOk());
  ASSERT_TRUE(std::holds_alternative<EnrolmentCommitted>(*committed));
  row = authority_->ledger().FindBySerial(kSerial);
  ASSERT_TRUE(row && row->has_value());
  EXPECT_EQ((*row)->state, UnitState::kCommitted);
  EXPECT_EQ((*row)->line_check, "PASS");
  EXPECT_EQ((*row)->record["outcome"], "PASS");
}

TEST_P(EnrolmentTest, AStationThatDiedBeforeCommitGetsItsCertificateAgain) {
  auto first = EnrolUnit(tpm(), *authority_, Request());
  ASSERT_TRUE(first && !first->refusal);
  EnrolRequest again = Request();
  again.force = true;
  auto second = EnrolUnit(tpm(), *authority_, again);
  ASSERT_TRUE(second) << second.error().ToString();
  ASSERT_FALSE(second->refusal) << second->refusal->reason << ": " << second->refusal->detail;
  EXPECT_EQ(*CertificateDer(*second->idevid_certificate), *CertificateDer(*first->idevid_certificate));
  // Only the newer session commits: the first one is still open but the station of record is the same.
  auto committed = CommitEnrolment(*authority_, again, *second, "PASS", nlohmann::json::object());
  ASSERT_THAT(committed, IsOk());
  EXPECT_TRUE(std::holds_alternative<EnrolmentCommitted>(*committed));
}

TEST_P(EnrolmentTest, OnlyTheStationThatBeganASessionCommitsIt) {
  EnrolRequest request = Request();
  request.station = "line-1";
  auto result = EnrolUnit(tpm(), *authority_, request);
  ASSERT_TRUE(result && !result->refusal);
  EnrolRequest other = request;
  other.station = "line-2";
  auto committed = CommitEnrolment(*authority_, other, *result, "PASS", nlohmann::json::object());
  ASSERT_THAT(committed, IsOk());
  ASSERT_TRUE(std::holds_alternative<EnrolmentRefusal>(*committed));
  EXPECT_THAT(std::get<EnrolmentRefusal>(*committed).detail, HasSubstr("line-2"));
  committed = CommitEnrolment(*authority_, request, *result, "PASS", nlohmann::json::object());
  ASSERT_THAT(committed, IsOk());
  EXPECT_TRUE(std::holds_alternative<EnrolmentCommitted>(*committed));
}

TEST_P(EnrolmentTest, TheLineCheckPassesAnEnrolledUnitWithItsIak) {
  auto result = EnrolUnit(tpm(), *authority_, Request());
  ASSERT_TRUE(result && !result->refusal);
  auto factory_ca = LoadTrustBundle(FactoryFiles::Chain(dir() / "factory"));
  auto vendor = LoadTrustBundle(swtpm().vendor_ca());
  ASSERT_TRUE(factory_ca && vendor);
  CheckRequest request{.expect_serial = kSerial, .expect_model = kModel, .check_iak = true};
  request.vendor_cas.push_back(std::move(*vendor));
  auto report = CheckUnit(tpm(), *factory_ca, request);
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_TRUE(report->passed()) << ::testing::PrintToString(report->failures());
  std::vector<std::string> names;
  for (const auto& m : report->measurements) names.push_back(m.name);
  EXPECT_THAT(names, ::testing::IsSupersetOf({"iak_present", "iak_attributes", "iak_certificate_chain",
                                              "iak_certificate_serial", "iak_certificate_key",
                                              "iak_certifies_idevid", "ek_chain_to_vendor_ca"}));
}

// A copy of the IDevID certificate where the IAK's belongs chains and names the serial, but is
// not the IAK's.
TEST_P(EnrolmentTest, TheLineCheckFailsACopyOfTheIdevidCertificateAsTheIaks) {
  auto result = EnrolUnit(tpm(), *authority_, Request());
  ASSERT_TRUE(result && !result->refusal);
  ASSERT_TRUE(NvUndefine(tpm(), 0x01C90100));
  ASSERT_TRUE(BurnCertificate(tpm(), 0x01C90100, *CertificateDer(*result->idevid_certificate), 0));
  auto factory_ca = LoadTrustBundle(FactoryFiles::Chain(dir() / "factory"));
  ASSERT_TRUE(factory_ca);
  auto report = CheckUnit(tpm(), *factory_ca, {.expect_serial = kSerial, .check_iak = true});
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_THAT(report->failures(), ::testing::ElementsAre("iak_certificate_key"));
}

TEST_P(EnrolmentTest, TheLineCheckFailsAUnitWithoutAnIak) {
  auto factory = LoadFactory(dir() / "factory");
  ASSERT_TRUE(factory);
  auto provisioned =
      ProvisionUnit(tpm(), *factory, {.serial = kSerial, .model = kModel, .algorithm = GetParam()});
  ASSERT_TRUE(provisioned) << provisioned.error().ToString();
  auto factory_ca = LoadTrustBundle(FactoryFiles::Chain(dir() / "factory"));
  ASSERT_TRUE(factory_ca);
  auto report = CheckUnit(tpm(), *factory_ca, {.expect_serial = kSerial, .check_iak = true});
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_THAT(report->failures(),
              ::testing::IsSupersetOf({"iak_present", "iak_certificate_chain", "iak_certifies_idevid"}));
}

TEST_P(EnrolmentTest, RefusesASerialIssuedAlreadyAndKeepsTheUnitsIdentity) {
  auto first = EnrolUnit(tpm(), *authority_, Request());
  ASSERT_TRUE(first && !first->refusal);
  ASSERT_THAT(CommitEnrolment(*authority_, Request(), *first, "PASS", nlohmann::json::object()), IsOk());
  EnrolRequest again = Request();
  again.force = true;
  auto second = EnrolUnit(tpm(), *authority_, again);
  ASSERT_TRUE(second) << second.error().ToString();
  ASSERT_TRUE(second->refusal);
  EXPECT_EQ(second->refusal->reason, refusal::kSerialIssued);
  auto der = NvRead(tpm(), 0x01C90000);
  ASSERT_TRUE(der) << "a refused re-enrolment removed the identity the unit had";
  EXPECT_EQ(*der, *CertificateDer(*first->idevid_certificate));
}

INSTANTIATE_TEST_SUITE_P(Keys, EnrolmentTest,
                         ::testing::Values(KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048),
                         [](const auto& param) {
                           return std::string(param.param == KeyAlgorithm::kEccP256 ? "Ecc" : "Rsa");
                         });

// Every forgery of the catalogue (engine/enrolment_forgeries.h) for both key types: refused for
// its reason, logged, nothing left in the TPM, the serial not recorded as issued.
class ForgeryTest : public testing::TpmTestBase,
                    public ::testing::TestWithParam<std::tuple<std::string, KeyAlgorithm>> {
 protected:
  void SetUp() override {
    StartTpm(testing::TpmAccess::kDirect, /*manufacture=*/true);
    Disconnect();  // the forgeries open their own connections
    ASSERT_TRUE(InitFactory({.dir = dir() / "factory", .algorithm = std::get<1>(GetParam())}));
  }
  void TearDown() override {
    other_.reset();
    StopTpm();
  }

  ForgeryBench Bench() {
    return {.unit_tcti = swtpm().tcti(),
            .other_tcti = [this]() -> Result<std::string> {
              if (!other_) {
                // Another TPM of the same vendor: its EK certificate chains to the same CA.
                IDEVID_ASSIGN_OR_RETURN(other_, SwtpmInstance::Start({.state_dir = dir() / "other",
                                                                      .manufacture = true,
                                                                      .vendor = swtpm().state_dir()}));
              }
              return other_->tcti();
            },
            .factory_dir = dir() / "factory",
            .vendor_ca = swtpm().vendor_ca(),
            .work_dir = dir(),
            .algorithm = std::get<1>(GetParam()),
            .serial = kSerial,
            .model = kModel};
  }

  std::optional<SwtpmInstance> other_;
};

TEST_P(ForgeryTest, IsRefusedForItsReasonWithNothingIssued) {
  const std::string& name = std::get<0>(GetParam());
  auto forgeries = EnrolmentForgeries();
  auto forgery =
      std::find_if(forgeries.begin(), forgeries.end(), [&](const Forgery& f) { return f.name == name; });
  ASSERT_NE(forgery, forgeries.end());
  auto verdict = JudgeForgery(*forgery, Bench());
  ASSERT_TRUE(verdict) << verdict.error().ToString();
  EXPECT_TRUE(verdict->passed()) << verdict->FailureText();
}

std::vector<std::string> ForgeryNames() {
  std::vector<std::string> names;
  for (const Forgery& forgery : EnrolmentForgeries()) names.push_back(forgery.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Catalogue, ForgeryTest,
                         ::testing::Combine(::testing::ValuesIn(ForgeryNames()),
                                            ::testing::Values(KeyAlgorithm::kEccP256,
                                                              KeyAlgorithm::kRsa2048)),
                         [](const auto& param) {
                           std::string name =
                               std::get<0>(param.param) +
                               (std::get<1>(param.param) == KeyAlgorithm::kEccP256 ? "_ecc" : "_rsa");
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// Every refusal reason of the authority has a forgery that earns it.
TEST(ForgeryCatalogue, CoversEveryRefusalReasonOfTheAuthority) {
  std::set<std::string> reasons;
  for (const Forgery& forgery : EnrolmentForgeries()) reasons.insert(forgery.reason);
  for (std::string_view reason :
       {refusal::kMalformedRequest, refusal::kRequestSignature, refusal::kEkCertificate, refusal::kEkChain,
        refusal::kIakAttributes, refusal::kIdevidAttributes, refusal::kCertify, refusal::kOrder,
        refusal::kSerialIssued, refusal::kSession, refusal::kActivation, ledger_refusal::kClone}) {
    EXPECT_TRUE(reasons.count(std::string(reason))) << reason;
  }
}

}  // namespace
}  // namespace idevid
