#include "provisioning/line_check.h"

#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <chrono>

#include <fmt/format.h>

#include "core/idevid_profile.h"
#include "core/openssl_error.h"
#include "core/tpm_keys.h"
#include "core/tpm_nv.h"
#include "core/tpm_sign.h"
#include "core/tss_error.h"
#include "core/x509.h"
#include "core/x509_verify.h"
#include "provisioning/ek_certificate.h"
#include "provisioning/line_check_iak.h"

namespace idevid {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kNoCertificate = "no readable certificate";

// RFC 5280 4.2.1.3 bit names of a KeyUsage value.
std::string KeyUsageNames(std::uint32_t usage) {
  static constexpr std::pair<std::uint32_t, const char*> kBits[] = {
      {KU_DIGITAL_SIGNATURE, "digitalSignature"},
      {KU_NON_REPUDIATION, "nonRepudiation"},
      {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
      {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
      {KU_KEY_AGREEMENT, "keyAgreement"},
      {KU_KEY_CERT_SIGN, "keyCertSign"},
      {KU_CRL_SIGN, "cRLSign"},
      {KU_ENCIPHER_ONLY, "encipherOnly"},
      {KU_DECIPHER_ONLY, "decipherOnly"}};
  std::vector<std::string> names;
  for (const auto& [bit, name] : kBits) {
    if (usage & bit) names.emplace_back(name);
  }
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ","));
}

std::string First(const Result<std::vector<std::string>>& values) {
  return values && !values->empty() ? values->front() : "";
}

class Checker {
 public:
  Checker(const TpmContext& tpm, const TrustBundle& ca, const CheckRequest& request)
      : tpm_(tpm), ca_(ca), request_(request) {}

  Result<CheckReport> Run() {
    IDEVID_ASSIGN_OR_RETURN(report_.tpm, ReadTpmInfo(tpm_));
    Timed("read_certificate", [&] { ReadCertificate(); });
    Timed("check_profile", [&] { CheckCertificate(); });
    Timed("check_key", [&] { CheckKey(); });
    if (request_.check_iak) {
      Timed("check_iak", [&] {
        CheckIak(tpm_, ca_, request_, report_.identity.serial, report_.measurements, infrastructure_);
      });
    }
    if (infrastructure_) return Fail(*infrastructure_);
    return std::move(report_);
  }

 private:
  void Add(std::string name, bool passed, std::string value, std::string expected) {
    report_.measurements.push_back({std::move(name), passed, std::move(value), std::move(expected)});
  }
  // A TPM answer becomes a failed measurement; anything else stops the check as infrastructure.
  void AddTpmFailure(std::string name, const Error& e, std::string expected) {
    if (!IsTpmAnswer(e)) infrastructure_ = e;
    Add(std::move(name), false, e.message(), std::move(expected));
  }
  template <typename F>
  void Timed(const std::string& step, F&& f) {
    auto start = Clock::now();
    f();
    report_.timings_ms[step] = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  }

  void ReadCertificate() {
    auto pub = NvReadPublic(tpm_, request_.nv_index);
    std::string where = fmt::format("NV {:#010x}", request_.nv_index);
    if (!pub) return AddTpmFailure("nv_certificate_present", pub.error(), "defined and written");
    Add("nv_certificate_present", pub->written(),
        pub->written() ? fmt::format("{} bytes", pub->size) : "defined but never written",
        "defined and written");
    Add("nv_write_locked", pub->write_locked(), pub->write_locked() ? "locked" : "writable", "locked");
    if (!pub->written()) return Add("certificate_parses", false, "empty " + where, "X.509 DER");
    auto der = NvRead(tpm_, request_.nv_index);
    if (!der) return AddTpmFailure("certificate_parses", der.error(), "X.509 DER");
    auto cert = ParseCertificate(*der);
    Add("certificate_parses", cert.has_value(), cert ? "X.509 DER" : cert.error().message(), "X.509 DER");
    if (cert) cert_ = std::move(*cert);
  }

  void CheckCertificate() {
    if (!cert_) {
      for (const char* name : {"chain_to_factory_ca", "subject_serial_number", "subject_model",
                               "subject_organization", "basic_constraints", "key_usage", "key_identifiers",
                               "certificate_policies", "not_after", "hardware_module_name"}) {
        Add(name, false, kNoCertificate, "");
      }
      if (request_.expect_serial) Add("expected_serial", false, kNoCertificate, *request_.expect_serial);
      if (request_.expect_model) Add("expected_model", false, kNoCertificate, *request_.expect_model);
      return;
    }
    RecordIdentity();
    CheckChain();
    CheckSubject();
    CheckExtensions();
    CheckHardwareModuleName();
  }

  void RecordIdentity() {
    IdentityFacts& id = report_.identity;
    id.serial = First(SubjectAttribute(*cert_, kOidSubjectSerialNumber));
    id.model = First(SubjectAttribute(*cert_, "CN"));
    id.manufacturer = First(SubjectAttribute(*cert_, "O"));
    id.subject = SubjectLine(*cert_);
    id.issuer = IssuerLine(*cert_);
    id.fingerprint = Sha256Fingerprint(*cert_).value_or("");
    const EVP_PKEY* key = X509_get0_pubkey(cert_.get());
    id.key_algorithm =
        key == nullptr ? "" : fmt::format("{}-{}", EVP_PKEY_get0_type_name(key), EVP_PKEY_get_bits(key));
  }

  void CheckChain() {
    std::vector<const X509*> anchors, intermediates;
    for (const auto& c : ca_.anchors) anchors.push_back(c.get());
    for (const auto& c : ca_.intermediates) intermediates.push_back(c.get());
    auto verdict = VerifyChain(*cert_, intermediates, anchors);
    if (!verdict) {
      infrastructure_ = verdict.error();
      return;
    }
    Add("chain_to_factory_ca", verdict->valid,
        verdict->valid ? "verified" : fmt::format("{} (depth {})", verdict->error, verdict->error_depth),
        "verified");
  }

  void CheckSubject() {
    const IdentityFacts& id = report_.identity;
    Add("subject_serial_number", !id.serial.empty(), id.serial, "present");
    Add("subject_model", !id.model.empty(), id.model, "present");
    Add("subject_organization", !id.manufacturer.empty(), id.manufacturer, "present");
    if (request_.expect_serial) {
      Add("expected_serial", id.serial == *request_.expect_serial, id.serial, *request_.expect_serial);
    }
    if (request_.expect_model) {
      Add("expected_model", id.model == *request_.expect_model, id.model, *request_.expect_model);
    }
  }

  void CheckExtensions() {
    // RFC 5280 4.2.1.9: a leaf has CA:FALSE; 802.1AR 8.10 marks it critical.
    auto bc = FindExtension(*cert_, "2.5.29.19");
    bool is_ca = (X509_get_extension_flags(cert_.get()) & EXFLAG_CA) != 0;
    bool bc_ok = bc && bc->has_value() && (*bc)->critical && !is_ca;
    Add("basic_constraints", bc_ok,
        bc && bc->has_value()
            ? fmt::format("{}CA:{}", (*bc)->critical ? "critical," : "", is_ca ? "TRUE" : "FALSE")
            : "absent",
        "critical,CA:FALSE");
    // RFC 5280 4.2.1.3, 802.1AR 8.10.2: digitalSignature.
    std::uint32_t usage = X509_get_key_usage(cert_.get());
    bool has_usage = (X509_get_extension_flags(cert_.get()) & EXFLAG_KUSAGE) != 0;
    Add("key_usage", has_usage && (usage & KU_DIGITAL_SIGNATURE) != 0,
        has_usage ? KeyUsageNames(usage) : "absent", "digitalSignature");
    // RFC 5280 4.2.1.1 and 4.2.1.2.
    bool ids = X509_get0_subject_key_id(cert_.get()) != nullptr &&
               X509_get0_authority_key_id(cert_.get()) != nullptr;
    Add("key_identifiers", ids, ids ? "SKI and AKI" : "missing", "SKI and AKI");
    CheckPolicies();
    // 802.1AR 8.5: no well-defined expiration, GeneralizedTime 99991231235959Z.
    const ASN1_TIME* not_after = X509_get0_notAfter(cert_.get());
    std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(not_after)),
                     static_cast<std::size_t>(ASN1_STRING_length(not_after)));
    Add("not_after", text == kIdevidNotAfter && ASN1_STRING_type(not_after) == V_ASN1_GENERALIZEDTIME, text,
        std::string(kIdevidNotAfter));
  }

  void CheckPolicies() {
    std::vector<std::string> found = CertificatePolicyOids(*cert_);
    auto has = [&](std::string_view oid) {
      return std::find(found.begin(), found.end(), oid) != found.end();
    };
    Add("certificate_policies", has(kOidPolicyIdevid) && has(kOidPolicyIdevidTpm),
        found.empty() ? "absent" : fmt::format("{}", fmt::join(found, ",")),
        fmt::format("{},{}", kOidPolicyIdevid, kOidPolicyIdevidTpm));
  }

  void CheckHardwareModuleName() {
    std::string expected = fmt::format("hwType {}, hwSerialNum = SHA-256(EK public key)", kOidTpm2HwType);
    auto hwmn = FindHardwareModuleName(*cert_);
    if (!hwmn || !hwmn->has_value()) {
      return Add("hardware_module_name", false, hwmn ? "absent" : hwmn.error().message(), expected);
    }
    auto ek = ReadEkCertificate(tpm_);
    if (!ek) return AddTpmFailure("hardware_module_name", ek.error(), expected);
    if (!ek->has_value()) return Add("hardware_module_name", false, "TPM has no EK certificate", expected);
    report_.identity.ek_certificate_fingerprint = Sha256Fingerprint(*(*ek)->cert).value_or("");
    auto from_ek = HardwareSerialFromEk(*(*ek)->cert);
    const HardwareModuleName& name = **hwmn;
    bool ok = name.hw_type == kOidTpm2HwType && from_ek && name.hw_serial == *from_ek;
    Add("hardware_module_name", ok,
        fmt::format("hwType {}, hwSerialNum {}", name.hw_type, Hex(name.hw_serial)), expected);
  }

  void CheckKey() {
    auto pub = ReadPersistentPublic(tpm_, request_.key_handle);
    std::string where = fmt::format("{:#010x}", request_.key_handle);
    if (!pub) {
      AddTpmFailure("key_present", pub.error(), "a key at " + where);
      for (const char* name : {"key_attributes", "key_matches_certificate", "proof_of_possession"}) {
        Add(name, false, "no key at " + where, "");
      }
      return;
    }
    Add("key_present", true, "key at " + where, "a key at " + where);
    CheckAttributes(pub->publicArea.objectAttributes);
    CheckKeyMatches(pub->publicArea);
    CheckPossession(pub->publicArea.type);
  }

  void CheckAttributes(TPMA_OBJECT attributes) {
    constexpr TPMA_OBJECT kRequired = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_SIGN_ENCRYPT;
    std::vector<std::string> names;
    if (attributes & TPMA_OBJECT_FIXEDTPM) names.push_back("fixedTPM");
    if (attributes & TPMA_OBJECT_FIXEDPARENT) names.push_back("fixedParent");
    if (attributes & TPMA_OBJECT_SENSITIVEDATAORIGIN) names.push_back("sensitiveDataOrigin");
    if (attributes & TPMA_OBJECT_SIGN_ENCRYPT) names.push_back("sign");
    Add("key_attributes", (attributes & kRequired) == kRequired, fmt::format("{}", fmt::join(names, "|")),
        "fixedTPM|fixedParent|sensitiveDataOrigin|sign");
  }

  void CheckKeyMatches(const TPMT_PUBLIC& area) {
    auto tpm_der = PublicKeyFromTpm(area).and_then([](const ossl::PKey& key) { return PublicKeyDer(*key); });
    const EVP_PKEY* cert_key = cert_ ? X509_get0_pubkey(cert_.get()) : nullptr;
    auto cert_der = cert_key ? PublicKeyDer(*cert_key) : Result<Bytes>(Bytes{});
    bool match = cert_key && tpm_der && cert_der && *tpm_der == *cert_der;
    Add("key_matches_certificate", match,
        !cert_  ? kNoCertificate
        : match ? "same public key"
                : "different public key",
        "the certificate's public key");
  }

  // A fresh challenge from the station, signed in the TPM, verified with the certificate's key.
  void CheckPossession(TPMI_ALG_PUBLIC type) {
    if (!cert_) return Add("proof_of_possession", false, kNoCertificate, "signature verifies");
    Bytes challenge(32);
    if (RAND_bytes(challenge.data(), static_cast<int>(challenge.size())) != 1) {
      infrastructure_ = OpenSslError("cannot make a challenge");
      return;
    }
    auto key = ReferenceTpmHandle(tpm_, request_.key_handle);
    if (!key) return AddTpmFailure("proof_of_possession", key.error(), "signature verifies");
    SignatureAlgorithm alg{type == TPM2_ALG_ECC ? SignatureScheme::kEcdsa : SignatureScheme::kRsaPkcs1,
                           TPM2_ALG_SHA256};
    auto signature = SignMessage(tpm_, key->handle(), alg, challenge);
    if (!signature) return AddTpmFailure("proof_of_possession", signature.error(), "signature verifies");
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    EVP_PKEY* cert_key = X509_get0_pubkey(cert_.get());
    bool ok = cert_key != nullptr &&
              EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, cert_key) == 1 &&
              EVP_DigestVerify(ctx.get(), signature->data(), signature->size(), challenge.data(),
                               challenge.size()) == 1;
    ClearOpenSslErrors();
    Add("proof_of_possession", ok,
        ok ? "challenge signed by the TPM verifies with the certificate's key"
           : "the TPM's signature does not verify with the certificate's key",
        "signature verifies");
  }

  const TpmContext& tpm_;
  const TrustBundle& ca_;
  const CheckRequest& request_;
  CheckReport report_;
  ossl::Cert cert_;
  std::optional<Error> infrastructure_;
};

}  // namespace

bool CheckReport::passed() const {
  return !measurements.empty() &&
         std::all_of(measurements.begin(), measurements.end(), [](const Measurement& m) { return m.passed; });
}

std::vector<std::string> CheckReport::failures() const {
  std::vector<std::string> names;
  for (const auto& m : measurements) {
    if (!m.passed) names.push_back(m.name);
  }
  return names;
}

Result<CheckReport> CheckUnit(const TpmContext& tpm, const TrustBundle& factory_ca,
                              const CheckRequest& request) {
  return Checker(tpm, factory_ca, request).Run();
}

}  // namespace idevid
