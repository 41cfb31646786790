#include "core/idevid_profile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "core/testing/test_certs.h"
#include "core/x509_build.h"

namespace idevid {
namespace {

using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;

struct FieldCase {
  const char* name;
  std::string value;
  bool valid;
  const char* message;  // part of the error when invalid
};

class IdentityFieldTest : public ::testing::TestWithParam<FieldCase> {};

TEST_P(IdentityFieldTest, AcceptsPrintableStringsOfBoundedLength) {
  auto r = ValidateIdentityField("serial number", GetParam().value);
  EXPECT_EQ(r.has_value(), GetParam().valid);
  if (!GetParam().valid) {
    EXPECT_THAT(r, ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument, HasSubstr(GetParam().message)));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Values, IdentityFieldTest,
    ::testing::Values(FieldCase{"Typical", "CW9876543210", true, ""},
                      FieldCase{"PunctuationOfPrintableString", "SRX-4300 (rev.2)/A:B=C?", true, ""},
                      FieldCase{"Longest", std::string(64, 'A'), true, ""},
                      FieldCase{"Empty", "", false, "must be 1 to 64 characters, got 0"},
                      FieldCase{"TooLong", std::string(65, 'A'), false, "must be 1 to 64 characters, got 65"},
                      FieldCase{"ControlCharacter",
                                "CW\x01"
                                "1",
                                false, "position 3 (byte 0x01)"},
                      FieldCase{"Underscore", "CW_1", false, "position 3 (byte 0x5f)"},
                      FieldCase{"NonAscii", "CW\xc3\xa9", false, "position 3 (byte 0xc3)"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

ossl::Cert CertWithSan(const Bytes& san) {
  auto key = testing::GenerateEcKey();
  auto cert = IssueCertificate({.subject = {{"CN", "unit"}},
                                .not_after = "20991231235959Z",
                                .der_extensions = {{"2.5.29.17", false, san}}},
                               *key, nullptr, *key);
  EXPECT_TRUE(cert) << cert.error().ToString();
  return std::move(*cert);
}

TEST(HardwareModuleNameTest, RoundTripsThroughTheSubjectAltName) {
  Bytes serial = {0xde, 0xad, 0xbe, 0xef};
  auto san = EncodeHardwareModuleNameSan(kOidTpm2HwType, serial);
  ASSERT_TRUE(san) << san.error().ToString();
  auto found = FindHardwareModuleName(*CertWithSan(*san));
  ASSERT_TRUE(found && found->has_value());
  EXPECT_EQ((*found)->hw_type, kOidTpm2HwType);
  EXPECT_EQ((*found)->hw_serial, serial);
}

TEST(HardwareModuleNameTest, AbsentWithoutSubjectAltName) {
  auto key = testing::GenerateEcKey();
  auto found = FindHardwareModuleName(*testing::MakeSelfSigned({.subject = {{"CN", "x"}}}, *key));
  ASSERT_TRUE(found);
  EXPECT_FALSE(found->has_value());
}

TEST(HardwareModuleNameTest, WrongInnerTypeIsAConfigError) {
  // GeneralNames { otherName { 1.3.6.1.5.5.7.8.4, [0] SEQUENCE { INTEGER 1, INTEGER 2 } } }:
  // hwType must be an OBJECT IDENTIFIER (RFC 4108 5).
  Bytes san = {0x30, 0x16, 0xa0, 0x14, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07,
               0x08, 0x04, 0xa0, 0x08, 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02};
  auto found = FindHardwareModuleName(*CertWithSan(san));
  EXPECT_THAT(found, ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("hwType OID")));
}

TEST(HardwareSerialTest, IsTheSha256OfTheEkPublicKey) {
  auto key = testing::GenerateEcKey();
  auto ek = testing::MakeSelfSigned({.subject = {{"CN", "EK"}}}, *key);
  auto a = HardwareSerialFromEk(*ek);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size(), 32u);
  auto other = testing::GenerateEcKey();
  EXPECT_NE(*a, *HardwareSerialFromEk(*testing::MakeSelfSigned({.subject = {{"CN", "EK"}}}, *other)));
  EXPECT_EQ(*a, *HardwareSerialFromEk(*testing::MakeSelfSigned({.subject = {{"CN", "EK2"}}}, *key)));
}

}  // namespace
}  // namespace idevid
