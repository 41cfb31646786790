#include "provisioning/unit_ledger.h"

#include <gtest/gtest.h>

#include "core/testing/test_certs.h"

namespace idevid {
namespace {

using testing::GenerateEcKey;
using testing::MakeSelfSigned;

// An issued row whose certificate names `model` and is for `key`.
UnitRow IssuedRow(EVP_PKEY& key, const std::string& model) {
  ossl::Cert cert = MakeSelfSigned({.subject = {{"serialNumber", "CW1"}, {"CN", model}}}, key);
  UnitRow row{.serial = "CW1", .model = model, .state = UnitState::kIssued};
  row.idevid_key_sha256 = *PublicKeySha256(key);
  row.certificate = *CertificateDer(*cert);
  return row;
}

TEST(ReusableCertificate, AnIssuedRowForThisKeyAndModelIsHandedBack) {
  ossl::PKey key = GenerateEcKey();
  UnitRow row = IssuedRow(*key, "SRX4300");
  auto reused = ReusableCertificate(row, *key, "SRX4300");
  ASSERT_TRUE(reused.has_value()) << reused.error().message();
  ASSERT_TRUE(reused->has_value());
  EXPECT_EQ(**reused, row.certificate);
}

TEST(ReusableCertificate, AnotherModelGetsANewCertificate) {
  ossl::PKey key = GenerateEcKey();
  auto reused = ReusableCertificate(IssuedRow(*key, "SRX4300"), *key, "SRX1500");
  ASSERT_TRUE(reused.has_value()) << reused.error().message();
  EXPECT_FALSE(reused->has_value());
}

TEST(ReusableCertificate, AnotherKeyOrAReservedRowGetsNone) {
  ossl::PKey key = GenerateEcKey();
  ossl::PKey other = GenerateEcKey();
  UnitRow row = IssuedRow(*key, "SRX4300");
  auto for_other = ReusableCertificate(row, *other, "SRX4300");
  ASSERT_TRUE(for_other.has_value());
  EXPECT_FALSE(for_other->has_value());
  row.state = UnitState::kReserved;
  auto reserved = ReusableCertificate(row, *key, "SRX4300");
  ASSERT_TRUE(reserved.has_value());
  EXPECT_FALSE(reserved->has_value());
}

}  // namespace
}  // namespace idevid
