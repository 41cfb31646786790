#include "provisioning/line_check_iak.h"

#include <openssl/rand.h>

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/display_text.h"
#include "core/idevid_profile.h"
#include "core/openssl_error.h"
#include "core/tpm_attest.h"
#include "core/tpm_keys.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "provisioning/enrolment_authority.h"
#include "provisioning/enrolment_checks.h"
#include "provisioning/unit_tpm.h"

namespace idevid {
namespace {

class IakChecker {
 public:
  IakChecker(const TpmContext& tpm, const TrustBundle& ca, const CheckRequest& request,
             std::vector<Measurement>& out, std::optional<Error>& infrastructure)
      : tpm_(tpm), ca_(ca), request_(request), out_(out), infrastructure_(infrastructure) {}

  void Run(const std::string& serial) {
    CheckKey();
    CheckCertificate(serial);
    CheckCertify();
    if (!request_.vendor_cas.empty()) CheckEk();
  }

 private:
  void Add(std::string name, bool passed, std::string value, std::string expected) {
    out_.push_back({std::move(name), passed, std::move(value), std::move(expected)});
  }
  void AddTpmFailure(std::string name, const Error& e, std::string expected) {
    if (!IsTpmAnswer(e)) infrastructure_ = e;
    Add(std::move(name), false, e.message(), std::move(expected));
  }

  void CheckKey() {
    std::string where = fmt::format("an IAK at {:#010x}", request_.iak_handle);
    auto pub = ReadPersistentPublic(tpm_, request_.iak_handle);
    if (!pub) {
      AddTpmFailure("iak_present", pub.error(), where);
      return Add("iak_attributes", false, "no IAK", "restricted signing key (§7.3.4)");
    }
    iak_ = pub->publicArea;
    Add("iak_present", true, where, where);
    auto problem = KeyAttributeProblem(*iak_, true);
    Add("iak_attributes", !problem, problem ? "the IAK " + *problem : "restricted signing key",
        "restricted signing key (§7.3.4)");
  }

  void CheckCertificate(const std::string& serial) {
    std::string where = fmt::format("NV {:#010x}", request_.iak_nv_index);
    auto der = NvRead(tpm_, request_.iak_nv_index);
    if (!der) {
      AddTpmFailure("iak_certificate_chain", der.error(), "verified");
      Add("iak_certificate_serial", false, "no IAK certificate in " + where, serial);
      return Add("iak_certificate_key", false, "no IAK certificate in " + where, "the IAK's public key");
    }
    auto cert = ParseCertificate(*der);
    if (!cert) {
      Add("iak_certificate_chain", false, cert.error().message(), "verified");
      Add("iak_certificate_serial", false, "no IAK certificate in " + where, serial);
      return Add("iak_certificate_key", false, cert.error().message(), "the IAK's public key");
    }
    auto problem = ChainProblem(**cert, std::span(&ca_, 1));
    Add("iak_certificate_chain", !problem, problem ? *problem : "verified", "verified");
    auto names = SubjectAttribute(**cert, kOidSubjectSerialNumber);
    std::string named = names && !names->empty() ? names->front() : "";
    Add("iak_certificate_serial", !serial.empty() && named == serial, DisplayText(named), serial);
    CheckCertificateKey(**cert);
  }

  // The IAK certificate is for the IAK (not a copy of the IDevID's) and says it is restricted.
  void CheckCertificateKey(const X509& cert) {
    std::string expected = fmt::format("the IAK's public key, policy {}", kOidPolicyIakRestricted);
    auto iak_der =
        iak_ ? PublicKeyFromTpm(*iak_).and_then([](const ossl::PKey& k) { return PublicKeyDer(*k); })
             : Result<Bytes>(Bytes{});
    const EVP_PKEY* cert_key = X509_get0_pubkey(&cert);
    auto cert_der = cert_key ? PublicKeyDer(*cert_key) : Result<Bytes>(Bytes{});
    bool same_key = iak_ && iak_der && cert_der && *iak_der == *cert_der;
    auto policies = CertificatePolicyOids(cert);
    bool restricted = std::find(policies.begin(), policies.end(), kOidPolicyIakRestricted) != policies.end();
    Add("iak_certificate_key", same_key && restricted,
        fmt::format("{}, policies {}", same_key ? "the IAK's key" : "another key", fmt::join(policies, ",")),
        expected);
  }

  // A fresh TPM2_Certify of the IDevID by the IAK, with a nonce of the check's own.
  void CheckCertify() {
    const char* expected = "a fresh certify of the IDevID by the IAK verifies";
    if (!iak_) return Add("iak_certifies_idevid", false, "no IAK", expected);
    Bytes nonce(32);
    if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
      infrastructure_ = OpenSslError("cannot make a nonce");
      return;
    }
    auto idevid_pub = ReadPersistentPublic(tpm_, request_.key_handle);
    if (!idevid_pub) return AddTpmFailure("iak_certifies_idevid", idevid_pub.error(), expected);
    auto iak = ReferencePersistentKey(tpm_, request_.iak_handle);
    auto idevid = ReferencePersistentKey(tpm_, request_.key_handle);
    if (!iak || !idevid)
      return AddTpmFailure("iak_certifies_idevid", (!iak ? iak : idevid).error(), expected);
    auto certify = Certify(tpm_, idevid->handle(), iak->handle(), nonce);
    if (!certify) return AddTpmFailure("iak_certifies_idevid", certify.error(), expected);
    auto problem = CertifyProblem(certify->attest, certify->signature, *iak_, idevid_pub->publicArea, nonce);
    Add("iak_certifies_idevid", !problem, problem ? *problem : "verified", expected);
  }

  void CheckEk() {
    auto ek = RequireEkCertificate(tpm_);
    if (!ek && ek.error().domain() == ErrorDomain::kConfig) {
      return Add("ek_chain_to_vendor_ca", false, ek.error().root_message(), "verified");
    }
    if (!ek) return AddTpmFailure("ek_chain_to_vendor_ca", ek.error(), "verified");
    auto problem = ChainProblem(*ek->cert, request_.vendor_cas);
    Add("ek_chain_to_vendor_ca", !problem, problem ? *problem : "verified", "verified");
  }

  const TpmContext& tpm_;
  const TrustBundle& ca_;
  const CheckRequest& request_;
  std::vector<Measurement>& out_;
  std::optional<Error>& infrastructure_;
  std::optional<TPMT_PUBLIC> iak_;
};

}  // namespace

void CheckIak(const TpmContext& tpm, const TrustBundle& factory_ca, const CheckRequest& request,
              const std::string& serial, std::vector<Measurement>& out,
              std::optional<Error>& infrastructure) {
  IakChecker(tpm, factory_ca, request, out, infrastructure).Run(serial);
}

}  // namespace idevid
