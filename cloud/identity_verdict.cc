#include "cloud/identity_verdict.h"

#include <openssl/x509v3.h>

#include <fmt/format.h>

#include "core/idevid_profile.h"
#include "core/openssl_error.h"
#include "core/x509.h"

namespace idevid {
namespace {

std::string First(const X509& cert, std::string_view oid) {
  auto values = SubjectAttribute(cert, oid);
  return values && values->size() == 1 ? values->front() : "";
}

// A reason to refuse when subjectAltName names more than one hardware module (RFC 4108 5
// otherName entries that differ): which one the unit is would be the reader's guess. Empty
// otherwise (an undecodable subjectAltName is FindHardwareModuleName's to report).
std::string AmbiguousHardwareModuleNames(const X509& cert) {
  ossl::GeneralNames names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(&cert, NID_subject_alt_name, nullptr, nullptr)));
  ClearOpenSslErrors();
  if (!names) return "";
  ossl::Asn1Object wanted(OBJ_txt2obj(std::string(kOidHardwareModuleName).c_str(), 1));
  const ASN1_TYPE* first = nullptr;
  int count = 0;
  bool differ = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_OTHERNAME || OBJ_cmp(name->d.otherName->type_id, wanted.get()) != 0) {
      continue;
    }
    ++count;
    if (first == nullptr) first = name->d.otherName->value;
    differ = differ || ASN1_TYPE_cmp(first, name->d.otherName->value) != 0;
  }
  if (!differ) return "";
  return fmt::format("subjectAltName holds {} hardwareModuleName entries that differ", count);
}

// The first profile rule `cert` breaks; empty when it keeps them all.
std::string ProfileViolation(const X509& cert) {
  X509* c = const_cast<X509*>(&cert);  // the getters cache decoded extensions
  if (X509_get0_serialNumber(c)->type == V_ASN1_NEG_INTEGER) {
    return "the certificate's serial number is negative";  // RFC 5280 4.1.2.2
  }
  std::uint32_t flags = X509_get_extension_flags(c);
  if (flags & EXFLAG_CA) return "a CA certificate cannot be a device identity";  // RFC 5280 4.2.1.9
  if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(c) & KU_DIGITAL_SIGNATURE)) {
    return "the certificate's KeyUsage lacks digitalSignature";  // 802.1AR 8.10.2
  }
  if (std::string ambiguous = AmbiguousHardwareModuleNames(cert); !ambiguous.empty()) return ambiguous;
  auto hwmn = FindHardwareModuleName(cert);
  if (!hwmn) return "hardwareModuleName cannot be decoded: " + hwmn.error().message();
  if (!hwmn->has_value()) return "no hardwareModuleName in subjectAltName";
  if ((*hwmn)->hw_type != kOidTpm2HwType) {
    return fmt::format("hardwareModuleName hwType {} is not a TPM 2.0", (*hwmn)->hw_type);
  }
  // RFC 4108 5 / TCG TPM 2.0 Keys for Device Identity 8.4: hwSerialNum names the unit's TPM.
  std::size_t hw_serial = (*hwmn)->hw_serial.size();
  if (hw_serial == 0) return "hardwareModuleName hwSerialNum is empty";
  if (hw_serial > kMaxHwSerialBytes) {
    return fmt::format("hardwareModuleName hwSerialNum is {} bytes, more than {}", hw_serial,
                       kMaxHwSerialBytes);
  }
  return "";
}

}  // namespace

nlohmann::json IdentityVerdict::ToJson() const {
  return {{"verdict", accepted ? "accepted" : "rejected"},
          {"serial", serial},
          {"model", model},
          {"reason", reason}};
}

IdentityVerdict JudgeDeviceCertificate(const X509& cert, const std::optional<Inventory>& inventory) {
  IdentityVerdict v{false, First(cert, kOidSubjectSerialNumber), First(cert, "CN"), ""};
  if (v.serial.empty() || v.model.empty()) {
    v.reason = "the subject must carry exactly one serialNumber and one CN (802.1AR 8.8)";
    return v;
  }
  for (const auto& [what, value] : {std::pair{"serial", v.serial}, std::pair{"model", v.model}}) {
    if (auto printable = ValidateIdentityField(what, value); !printable) {
      v.reason = printable.error().message();
      return v;
    }
  }
  if (std::string broken = ProfileViolation(cert); !broken.empty()) {
    v.reason = broken;
    return v;
  }
  if (inventory) {
    auto it = inventory->find(v.serial);
    if (it == inventory->end()) {
      v.reason = fmt::format("serial {} is not in the inventory", v.serial);
      return v;
    }
    if (it->second != v.model) {
      v.reason = fmt::format("serial {} is a {} in the inventory, not a {}", v.serial, it->second,
                             v.model);
      return v;
    }
  }
  v.accepted = true;
  v.reason = "ok";
  return v;
}

}  // namespace idevid
