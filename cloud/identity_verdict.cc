#include "cloud/identity_verdict.h"

#include <openssl/x509v3.h>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/idevid_profile.h"
#include "core/openssl_error.h"
#include "core/x509.h"

namespace idevid {
namespace {

std::string First(const X509& cert, std::string_view oid) {
  auto values = SubjectAttribute(cert, oid);
  return values && values->size() == 1 ? values->front() : "";
}

// Whether subjectAltName names more than one hardware module (RFC 4108 5 otherName entries
// that differ): which one the unit is would be the reader's guess. Adds the finding and returns
// true when so (an undecodable subjectAltName is FindHardwareModuleName's to report).
bool AmbiguousHardwareModuleNames(const X509& cert, Verdict& verdict) {
  ossl::GeneralNames names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(&cert, NID_subject_alt_name, nullptr, nullptr)));
  ClearOpenSslErrors();
  if (!names) return false;
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
  if (!differ) return false;
  verdict.Add("hw-module-names-differ",
              fmt::format("subjectAltName holds {} hardwareModuleName entries that differ", count));
  return true;
}

// The hardwareModuleName rules: one module, a TPM 2.0, a hwSerialNum of sensible length.
void JudgeHardwareModuleName(const X509& cert, Verdict& verdict) {
  if (AmbiguousHardwareModuleNames(cert, verdict)) return;  // which one to judge would be a guess
  auto hwmn = FindHardwareModuleName(cert);
  if (!hwmn) {
    verdict.Add("hw-module-name-undecodable",
                "hardwareModuleName cannot be decoded: " + hwmn.error().message());
    return;
  }
  if (!hwmn->has_value()) {
    verdict.Add("hw-module-name-missing", "no hardwareModuleName in subjectAltName");
    return;
  }
  if ((*hwmn)->hw_type != kOidTpm2HwType) {
    verdict.Add("hw-type-not-tpm2",
                fmt::format("hardwareModuleName hwType {} is not a TPM 2.0", DisplayText((*hwmn)->hw_type)));
  }
  // RFC 4108 5 / TCG TPM 2.0 Keys for Device Identity 8.4: hwSerialNum names the unit's TPM.
  std::size_t hw_serial = (*hwmn)->hw_serial.size();
  if (hw_serial == 0) verdict.Add("hw-serial-empty", "hardwareModuleName hwSerialNum is empty");
  if (hw_serial > kMaxHwSerialBytes) {
    verdict.Add("hw-serial-too-long", fmt::format("hardwareModuleName hwSerialNum is {} bytes, more than {}",
                                                  hw_serial, kMaxHwSerialBytes));
  }
}

// The certificate rules of RFC 5280 and 802.1AR a device identity keeps.
void JudgeProfile(const X509& cert, Verdict& verdict) {
  X509* c = const_cast<X509*>(&cert);                           // the getters cache decoded extensions
  if (X509_get0_serialNumber(c)->type == V_ASN1_NEG_INTEGER) {  // RFC 5280 4.1.2.2
    verdict.Add("certificate-serial-negative", "the certificate's serial number is negative");
  }
  std::uint32_t flags = X509_get_extension_flags(c);
  if (flags & EXFLAG_CA) {  // RFC 5280 4.2.1.9
    verdict.Add("not-a-device-certificate", "a CA certificate cannot be a device identity");
  }
  if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(c) & KU_DIGITAL_SIGNATURE)) {  // 802.1AR 8.10.2
    verdict.Add("key-usage-lacks-digital-signature", "the certificate's KeyUsage lacks digitalSignature");
  }
  JudgeHardwareModuleName(cert, verdict);
}

// The subject names the unit: one serialNumber and one CN (802.1AR 8.8), printable.
void JudgeSubject(const IdentityVerdict& v, Verdict& verdict) {
  static constexpr const char* kRule =
      "the subject must carry exactly one serialNumber and one CN (802.1AR 8.8)";
  if (v.serial.empty()) verdict.Add("subject-serial-missing", kRule);
  if (v.model.empty()) verdict.Add("subject-model-missing", kRule);
  for (const auto& [what, value] : {std::pair{"serial", v.serial}, std::pair{"model", v.model}}) {
    if (value.empty()) continue;
    if (auto printable = ValidateIdentityField(what, value); !printable) {
      verdict.Add(fmt::format("subject-{}-not-printable", what), printable.error().message());
    }
  }
}

// With an inventory, the unit must be listed under its serial with its model.
void JudgeInventory(const IdentityVerdict& v, const Inventory& inventory, Verdict& verdict) {
  if (v.serial.empty()) return;  // nothing to look up; the subject's finding says so
  auto it = inventory.find(v.serial);
  if (it == inventory.end()) {
    verdict.Add("serial-not-in-inventory",
                fmt::format("serial {} is not in the inventory", DisplayText(v.serial)));
  } else if (!v.model.empty() && it->second != v.model) {
    verdict.Add("model-differs-from-inventory",
                fmt::format("serial {} is a {} in the inventory, not a {}", DisplayText(v.serial),
                            DisplayText(it->second), DisplayText(v.model)));
  }
}

std::string_view SeverityName(Severity severity) {
  return severity == Severity::kFailure ? "failure" : "warning";
}

}  // namespace

IdentityVerdict IdentityVerdict::Refused(std::string id, std::string evidence) {
  IdentityVerdict v;
  v.reason = evidence;
  v.findings.Add(std::move(id), std::move(evidence));
  return v;
}

void IdentityVerdict::Refuse(std::string id, std::string evidence) {
  findings.Add(std::move(id), std::move(evidence));
  accepted = false;
  reason = findings.first_failure()->evidence;
}

void IdentityVerdict::CannotDecide(std::string id, std::string evidence) {
  Refuse(std::move(id), std::move(evidence));
  unavailable = true;
}

std::string_view IdentityVerdict::Name() const {
  if (accepted) return "accepted";
  return unavailable ? "unavailable" : "rejected";
}

nlohmann::json FindingsJson(const Verdict& verdict) {
  nlohmann::json findings = nlohmann::json::array();
  for (const Finding& f : verdict.findings()) {
    findings.push_back({{"id", f.id}, {"severity", SeverityName(f.severity)}, {"evidence", f.evidence}});
  }
  return findings;
}

nlohmann::json IdentityVerdict::ToJson() const {
  return {{"verdict", Name()},
          {"serial", serial},
          {"model", model},
          {"reason", reason},
          {"findings", FindingsJson(findings)}};
}

IdentityVerdict JudgeDeviceCertificate(const X509& cert, const std::optional<Inventory>& inventory) {
  IdentityVerdict v;
  v.serial = First(cert, kOidSubjectSerialNumber);
  v.model = First(cert, "CN");
  JudgeSubject(v, v.findings);
  JudgeProfile(cert, v.findings);
  if (inventory) JudgeInventory(v, *inventory, v.findings);
  v.accepted = v.findings.passed();
  const Finding* first = v.findings.first_failure();
  v.reason = first != nullptr ? first->evidence : "ok";
  return v;
}

}  // namespace idevid
