// The line check names what is wrong with a unit: each case tampers with a provisioned TPM (or
// checks against the wrong expectations) and expects exactly the measurements it breaks to fail.
#include <cstring>
#include <functional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/tpm_keys.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"
#include "provisioning/line_check.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

using ::testing::IsSupersetOf;
using ::testing::UnorderedElementsAreArray;

constexpr TPM2_HANDLE kNv = kDefaultIdevidNvIndex;
constexpr TPM2_HANDLE kKey = kDefaultIdevidKeyHandle;

struct Tamper {
  const char* name;
  std::function<void(const TpmContext&)> change;  // applied after provisioning
  bool other_ca;                                  // check against another factory
  std::string expect_serial;
  std::vector<std::string> failures;  // exactly these measurements fail
  std::string expect_model = "SRX4300";
};

void ReplaceNv(const TpmContext& tpm, const Bytes& content, std::uint16_t size) {
  ASSERT_TRUE(NvUndefine(tpm, kNv));
  ASSERT_TRUE(NvDefine(tpm, {.index = kNv, .size = size}));
  if (!content.empty()) {
    ASSERT_TRUE(NvWrite(tpm, kNv, content));
  }
}

void TruncateCertificate(const TpmContext& tpm) {
  auto der = NvRead(tpm, kNv);
  ASSERT_TRUE(der);
  der->resize(der->size() / 2);
  ReplaceNv(tpm, *der, static_cast<std::uint16_t>(der->size()));
}

void ReplaceKey(const TpmContext& tpm) {
  ASSERT_TRUE(UnpersistKey(tpm, kKey));
  TPM2B_PUBLIC other = IdevidKeyTemplate(KeyAlgorithm::kEccP256);
  std::memcpy(other.publicArea.unique.ecc.x.buffer, "OTHER!", 6);
  auto key = CreatePrimary(tpm, ESYS_TR_RH_ENDORSEMENT, other);
  ASSERT_TRUE(key);
  ASSERT_TRUE(PersistKey(tpm, key->object, kKey));
}

const std::vector<std::string> kNeedCertificate = {
    "certificate_parses", "chain_to_factory_ca",  "subject_serial_number",
    "subject_model",      "subject_organization", "basic_constraints",
    "key_usage",          "key_identifiers",      "certificate_policies",
    "not_after",          "hardware_module_name", "key_matches_certificate",
    "proof_of_possession"};

std::vector<std::string> Plus(std::vector<std::string> a, std::vector<std::string> b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class LineCheckTest : public testing::TpmTestBase, public ::testing::TestWithParam<Tamper> {
 protected:
  void SetUp() override { StartTpm(testing::TpmAccess::kDirect, /*manufacture=*/true); }
  void TearDown() override { StopTpm(); }
};

TEST_P(LineCheckTest, FailsNamingTheBrokenMeasurements) {
  const Tamper& t = GetParam();
  auto factory = InitFactory({.dir = dir() / "factory"});
  ASSERT_TRUE(factory) << factory.error().ToString();
  ASSERT_TRUE(ProvisionUnit(tpm(), *factory, {.serial = "CW1", .model = "SRX4300"}));
  if (t.change) t.change(tpm());
  auto ca_dir = dir() / "factory";
  if (t.other_ca) {
    ca_dir = dir() / "other-factory";
    ASSERT_TRUE(InitFactory({.dir = ca_dir}));
  }
  auto bundle = LoadTrustBundle(FactoryFiles::Chain(ca_dir));
  ASSERT_TRUE(bundle);
  auto report = CheckUnit(tpm(), *bundle, {.expect_serial = t.expect_serial, .expect_model = t.expect_model});
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_FALSE(report->passed());
  EXPECT_THAT(report->failures(), UnorderedElementsAreArray(t.failures))
      << ::testing::PrintToString(report->failures());
}

INSTANTIATE_TEST_SUITE_P(
    Tampering, LineCheckTest,
    ::testing::Values(
        Tamper{"CertificateFromAnotherCa", nullptr, true, "CW1", {"chain_to_factory_ca"}},
        Tamper{"SerialMismatch", nullptr, false, "CW2", {"expected_serial"}},
        Tamper{"ModelMismatch", nullptr, false, "CW1", {"expected_model"}, "SRX1500"},
        Tamper{"KeyDoesNotMatchCertificate",
               ReplaceKey,
               false,
               "CW1",
               {"key_matches_certificate", "proof_of_possession"}},
        Tamper{"EmptyNvIndex", [](const TpmContext& tpm) { ReplaceNv(tpm, {}, 512); }, false, "CW1",
               Plus(kNeedCertificate,
                    {"nv_certificate_present", "nv_write_locked", "expected_serial", "expected_model"})},
        Tamper{"GarbageDer", [](const TpmContext& tpm) { ReplaceNv(tpm, Bytes(64, 0xA5), 64); }, false, "CW1",
               Plus(kNeedCertificate, {"nv_write_locked", "expected_serial", "expected_model"})},
        Tamper{"TruncatedDer", TruncateCertificate, false, "CW1",
               Plus(kNeedCertificate, {"nv_write_locked", "expected_serial", "expected_model"})}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace idevid
