#include "core/idevid_profile.h"

#include <openssl/asn1t.h>
#include <openssl/sha.h>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/openssl_error.h"

// RFC 4108 5: HardwareModuleName ::= SEQUENCE { hwType OBJECT IDENTIFIER,
//                                               hwSerialNum OCTET STRING }
typedef struct HardwareModuleNameAsn1_st {
  ASN1_OBJECT* hw_type;
  ASN1_OCTET_STRING* hw_serial;
} HARDWARE_MODULE_NAME;

DECLARE_ASN1_FUNCTIONS(HARDWARE_MODULE_NAME)

ASN1_SEQUENCE(HARDWARE_MODULE_NAME) =
    {
        ASN1_SIMPLE(HARDWARE_MODULE_NAME, hw_type, ASN1_OBJECT),
        ASN1_SIMPLE(HARDWARE_MODULE_NAME, hw_serial, ASN1_OCTET_STRING),
} ASN1_SEQUENCE_END(HARDWARE_MODULE_NAME)

        IMPLEMENT_ASN1_FUNCTIONS(HARDWARE_MODULE_NAME)

            namespace idevid::ossl {
  IDEVID_OSSL_FREE(HARDWARE_MODULE_NAME, HARDWARE_MODULE_NAME_free(p));  // OpenSSL has no such type
}  // namespace idevid::ossl

namespace idevid {
namespace {

bool IsPrintableStringChar(char c) {
  // X.680 41.4 Table 10: A-Z a-z 0-9 space ' ( ) + , - . / : = ?
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view(" '()+,-./:=?").find(c) != std::string_view::npos;
}

Result<Bytes> EncodeHwmn(std::string_view hw_type, const Bytes& hw_serial) {
  ossl::UniquePtr<HARDWARE_MODULE_NAME> hwmn(HARDWARE_MODULE_NAME_new());
  ossl::Asn1Object type(OBJ_txt2obj(std::string(hw_type).c_str(), 1));
  if (!hwmn || !type ||
      ASN1_OCTET_STRING_set(hwmn->hw_serial, hw_serial.data(), static_cast<int>(hw_serial.size())) != 1) {
    return FailOpenSsl("cannot build hardwareModuleName");
  }
  ASN1_OBJECT_free(hwmn->hw_type);
  hwmn->hw_type = type.release();
  unsigned char* der = nullptr;
  int length = i2d_HARDWARE_MODULE_NAME(hwmn.get(), &der);
  return AdoptDer(der, length, "hardwareModuleName");
}

Result<HardwareModuleName> DecodeHwmn(const ASN1_TYPE& value) {
  if (value.type != V_ASN1_SEQUENCE) {
    return ConfigError(ConfigCode::kSyntax, "hardwareModuleName is not a SEQUENCE (RFC 4108 5)");
  }
  const unsigned char* p = ASN1_STRING_get0_data(value.value.sequence);
  long length = ASN1_STRING_length(value.value.sequence);
  ossl::UniquePtr<HARDWARE_MODULE_NAME> hwmn(d2i_HARDWARE_MODULE_NAME(nullptr, &p, length));
  if (!hwmn) {
    ClearOpenSslErrors();
    return ConfigError(ConfigCode::kSyntax,
                       "hardwareModuleName is not { hwType OID, hwSerialNum OCTET STRING }");
  }
  char oid[128];
  OBJ_obj2txt(oid, sizeof oid, hwmn->hw_type, 1);
  const unsigned char* serial = ASN1_STRING_get0_data(hwmn->hw_serial);
  return HardwareModuleName{oid, Bytes(serial, serial + ASN1_STRING_length(hwmn->hw_serial))};
}

}  // namespace

Result<void> ValidateIdentityField(std::string_view what, std::string_view value) {
  if (value.empty() || value.size() > kMaxIdentityLength) {
    return UsageError(UsageCode::kInvalidArgument, fmt::format("the {} must be 1 to {} characters, got {}",
                                                               what, kMaxIdentityLength, value.size()));
  }
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!IsPrintableStringChar(value[i])) {
      return UsageError(
          UsageCode::kInvalidArgument,
          fmt::format("the {} '{}' has a character that a certificate's PrintableString cannot hold at "
                      "position {} (byte {:#04x}); use letters, digits, space and ' ( ) + , - . / : = ?",
                      what, DisplayText(value), i + 1, static_cast<unsigned char>(value[i])));
    }
  }
  return {};
}

Result<Bytes> HardwareSerialFromPublicKey(const EVP_PKEY& key) {
  IDEVID_ASSIGN_OR_RETURN(Bytes spki, PublicKeyDer(key), "cannot derive the hardware serial");
  Bytes digest(SHA256_DIGEST_LENGTH);
  SHA256(spki.data(), spki.size(), digest.data());
  return digest;
}

Result<Bytes> HardwareSerialFromEk(const X509& ek_certificate) {
  const EVP_PKEY* key = X509_get0_pubkey(&ek_certificate);
  if (key == nullptr) return FailOpenSsl("the EK certificate has no readable public key");
  return HardwareSerialFromPublicKey(*key);
}

Result<Bytes> EncodeHardwareModuleNameSan(std::string_view hw_type, const Bytes& hw_serial) {
  IDEVID_ASSIGN_OR_RETURN(Bytes hwmn, EncodeHwmn(hw_type, hw_serial));
  ossl::GeneralNames names(GENERAL_NAMES_new());
  ossl::UniquePtr<GENERAL_NAME> name(GENERAL_NAME_new());
  ossl::UniquePtr<ASN1_TYPE> value(ASN1_TYPE_new());
  ossl::UniquePtr<ASN1_STRING> sequence(ASN1_STRING_type_new(V_ASN1_SEQUENCE));
  ossl::Asn1Object type_id(OBJ_txt2obj(std::string(kOidHardwareModuleName).c_str(), 1));
  bool ok = names && name && value && sequence && type_id &&
            ASN1_STRING_set(sequence.get(), hwmn.data(), static_cast<int>(hwmn.size())) == 1;
  if (ok) {
    ASN1_TYPE_set(value.get(), V_ASN1_SEQUENCE, sequence.release());  // value owns it now
    ok = GENERAL_NAME_set0_othername(name.get(), type_id.get(), value.get()) == 1;
    if (ok) {  // name owns both now
      type_id.release();
      value.release();
    }
    ok = ok && sk_GENERAL_NAME_push(names.get(), name.get()) > 0;
    if (ok) name.release();  // names owns it now
  }
  if (!ok) return FailOpenSsl("cannot build the subjectAltName");
  unsigned char* der = nullptr;
  int length = i2d_GENERAL_NAMES(names.get(), &der);
  return AdoptDer(der, length, "the subjectAltName");
}

Result<std::optional<HardwareModuleName>> FindHardwareModuleName(const X509& cert) {
  int critical = 0;
  ossl::GeneralNames names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(&cert, NID_subject_alt_name, &critical, nullptr)));
  if (!names) {
    bool malformed = critical != -1;  // -1: absent; -2: more than one; >= 0: undecodable
    ClearOpenSslErrors();
    if (malformed) return ConfigError(ConfigCode::kSyntax, "the subjectAltName extension cannot be decoded");
    return std::optional<HardwareModuleName>();
  }
  ossl::Asn1Object wanted(OBJ_txt2obj(std::string(kOidHardwareModuleName).c_str(), 1));
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_OTHERNAME || OBJ_cmp(name->d.otherName->type_id, wanted.get()) != 0) {
      continue;
    }
    IDEVID_ASSIGN_OR_RETURN(HardwareModuleName decoded, DecodeHwmn(*name->d.otherName->value),
                            "subjectAltName entry {}", i + 1);
    return std::optional<HardwareModuleName>(std::move(decoded));
  }
  return std::optional<HardwareModuleName>();
}

Result<CertificateSpec> IdevidCertificateSpec(const UnitIdentity& unit) {
  IDEVID_ASSIGN_OR_RETURN(Bytes san, EncodeHardwareModuleNameSan(kOidTpm2HwType, unit.hw_serial));
  CertificateSpec spec;
  spec.subject = {
      {"O", unit.manufacturer}, {"CN", unit.model}, {std::string(kOidSubjectSerialNumber), unit.serial}};
  spec.not_after = std::string(kIdevidNotAfter);
  spec.extensions = {
      {"basicConstraints", "critical,CA:FALSE"},  // RFC 5280 4.2.1.9
      {"keyUsage", "critical,digitalSignature"},  // RFC 5280 4.2.1.3, 802.1AR 8.10.2
      {"subjectKeyIdentifier", "hash"},           // RFC 5280 4.2.1.2
      {"authorityKeyIdentifier", "keyid"},        // RFC 5280 4.2.1.1
      {"certificatePolicies", fmt::format("{},{}", kOidPolicyIdevid, kOidPolicyIdevidTpm)},
  };
  spec.der_extensions = {{"2.5.29.17", false, std::move(san)}};  // 802.1AR 8.10.4
  return spec;
}

}  // namespace idevid
