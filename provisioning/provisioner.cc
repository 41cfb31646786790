#include "provisioning/provisioner.h"

#include <chrono>

#include <fmt/format.h>

#include "core/tpm_nv.h"
#include "core/tpm_sign.h"
#include "core/tss_error.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "provisioning/ek_certificate.h"
#include "core/idevid_profile.h"

namespace idevid {
namespace {

using Clock = std::chrono::steady_clock;

// Records how long each step takes into `timings`.
class StepTimer {
 public:
  explicit StepTimer(std::map<std::string, double>& timings) : timings_(timings) {}
  void Done(const std::string& step) {
    auto now = Clock::now();
    timings_[step] = std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
  }

 private:
  std::map<std::string, double>& timings_;
  Clock::time_point last_ = Clock::now();
};

bool IsAbsent(const Error& e) {
  return e.domain() == ErrorDomain::kTss &&
         BaseTpmRc(static_cast<TSS2_RC>(e.code())) == TPM2_RC_HANDLE;
}

// "NV index 0x01c90000 (597 bytes): certificate <subject>", for messages about what is there.
std::string DescribeNvIndex(const TpmContext& tpm, const NvPublic& pub) {
  std::string what = fmt::format("NV index {:#010x} ({} bytes)", pub.index, pub.size);
  if (!pub.written()) return what + ", never written";
  auto der = NvRead(tpm, pub.index);
  if (!der) return what;
  auto cert = ParseCertificate(*der);
  return what + (cert ? ": certificate " + SubjectLine(**cert) : ": not a certificate");
}

// What identity the TPM holds at the request's handle and index, one line each.
Result<std::vector<std::string>> ExistingIdentity(const TpmContext& tpm, const ProvisionRequest& r) {
  std::vector<std::string> found;
  auto key = ReadPersistentPublic(tpm, r.key_handle);
  if (!key && !IsAbsent(key.error())) return Fail(key.error());
  if (key) found.push_back(fmt::format("key at {:#010x}", r.key_handle));
  auto pub = NvReadPublic(tpm, r.nv_index);
  if (!pub && !IsAbsent(pub.error())) return Fail(pub.error());
  if (pub) found.push_back(DescribeNvIndex(tpm, *pub));
  return found;
}

Result<void> RemoveIdentity(const TpmContext& tpm, const ProvisionRequest& r) {
  if (auto key = UnpersistKey(tpm, r.key_handle); !key && !IsAbsent(key.error())) return key;
  if (auto nv = NvUndefine(tpm, r.nv_index); !nv && !IsAbsent(nv.error())) return nv;
  return {};
}

SignatureAlgorithm RequestSignature(KeyAlgorithm alg) {
  return {alg == KeyAlgorithm::kEccP256 ? SignatureScheme::kEcdsa : SignatureScheme::kRsaPkcs1,
          TPM2_ALG_SHA256};
}

// The key pair in the TPM: created, persisted, and its public key as OpenSSL sees it.
Result<ossl::PKey> CreateIdevidKey(const TpmContext& tpm, const ProvisionRequest& r) {
  auto key = CreatePrimary(tpm, ESYS_TR_RH_ENDORSEMENT, IdevidKeyTemplate(r.algorithm));
  if (!key) return Fail(key.error().WithContext("creating the IDevID key"));
  if (auto persisted = PersistKey(tpm, key->object, r.key_handle); !persisted) {
    return Fail(persisted.error());
  }
  return PublicKeyFromTpm(key->public_area.publicArea);
}

// Proof of possession: the TPM signs a request for its own public key.
Result<ossl::UniquePtr<X509_REQ>> RequestFromTpm(const TpmContext& tpm,
                                                            const ProvisionRequest& r,
                                                            const UnitIdentity& unit,
                                                            EVP_PKEY& public_key) {
  auto key = ReferenceTpmHandle(tpm, r.key_handle);
  if (!key) return Fail(key.error());
  auto sign = [&](std::span<const std::uint8_t> tbs) {
    return SignMessage(tpm, key->handle(), RequestSignature(r.algorithm), tbs);
  };
  return MakeSignedRequest({{"O", unit.manufacturer}, {"CN", unit.model},
                            {std::string(kOidSubjectSerialNumber), unit.serial}},
                           public_key, sign);
}

Result<void> BurnCertificate(const TpmContext& tpm, TPM2_HANDLE index, const Bytes& der) {
  Result<void> step = NvDefine(tpm, {.index = index, .size = static_cast<std::uint16_t>(der.size())});
  if (step) step = NvWrite(tpm, index, der);
  if (step) step = NvWriteLock(tpm, index);
  if (!step) return step;
  auto back = NvRead(tpm, index);
  if (!back) return Fail(back.error());
  if (*back != der) {
    return Fail(ErrorDomain::kVerify, 0,
                fmt::format("NV index {:#010x} does not read back what was written", index));
  }
  return {};
}

Result<UnitIdentity> IdentityFor(const ProvisionRequest& r, const Factory& factory,
                                 const X509& ek_cert) {
  auto hw_serial = HardwareSerialFromEk(ek_cert);
  if (!hw_serial) return Fail(hw_serial.error());
  return UnitIdentity{r.serial, r.model, factory.manufacturer, std::move(*hw_serial)};
}

Result<EkCertificate> RequireEkCertificate(const TpmContext& tpm) {
  auto ek = ReadEkCertificate(tpm);
  if (!ek) return Fail(ek.error());
  if (!ek->has_value()) {
    return ConfigError(fmt::format(
        "the TPM has no EK certificate in NV {:#010x} or {:#010x}: hardwareModuleName is derived "
        "from it; a TPM vendor installs one (for swtpm: idevid tpm start --manufacture, or "
        "swtpm_setup --create-ek-cert)",
        kEkCertEccP256Index, kEkCertRsa2048Index));
  }
  return std::move(**ek);
}

// After the key is persisted: proof of possession, the certificate, NV. The caller removes
// the key again when this fails, so that no half-provisioned identity stays behind.
Result<void> IssueAndBurn(const TpmContext& tpm, const Factory& factory, const ProvisionRequest& request,
                          const UnitIdentity& unit, EVP_PKEY& public_key, std::uint32_t nv_index_max,
                          StepTimer& timer, ProvisionResult& result) {
  auto csr = RequestFromTpm(tpm, request, unit, public_key);
  if (!csr) return Fail(csr.error());
  timer.Done("proof_of_possession");
  auto spec = IdevidCertificateSpec(unit);
  if (!spec) return Fail(spec.error());
  auto cert = IssueCertificate(*spec, *X509_REQ_get0_pubkey(csr->get()), factory.issuing.get(),
                               *factory.issuing_key);
  if (!cert) return Fail(cert.error());
  timer.Done("issue_certificate");
  auto der = CertificateDer(**cert);
  if (!der) return Fail(der.error());
  std::uint32_t limit = nv_index_max == 0 ? 0xFFFF : std::min<std::uint32_t>(nv_index_max, 0xFFFF);
  if (der->size() > limit) {
    return UsageError(fmt::format("the certificate is {} bytes; this TPM's NV indices hold at most {}",
                                  der->size(), limit));
  }
  if (auto burnt = BurnCertificate(tpm, request.nv_index, *der); !burnt) return Fail(burnt.error());
  timer.Done("write_nv");
  auto fingerprint = Sha256Fingerprint(**cert);
  if (!fingerprint) return Fail(fingerprint.error());
  result.certificate_fingerprint = *fingerprint;
  result.certificate = std::move(*cert);
  return {};
}

}  // namespace

Result<ProvisionResult> ProvisionUnit(const TpmContext& tpm, const Factory& factory,
                                      const ProvisionRequest& request) {
  Result<void> valid = ValidateIdentityField("serial number", request.serial);
  if (valid) valid = ValidateIdentityField("model", request.model);
  if (!valid) return Fail(valid.error());
  ProvisionResult result;
  StepTimer timer(result.timings_ms);
  auto info = ReadTpmInfo(tpm);
  if (!info) return Fail(info.error());
  result.tpm = std::move(*info);
  auto existing = ExistingIdentity(tpm, request);
  if (!existing) return Fail(existing.error());
  if (!existing->empty() && !request.force) {
    return UsageError(fmt::format("the TPM already holds an identity ({}); {}", fmt::join(*existing, "; "),
                                  request.when_held));
  }
  // Everything that can be checked is checked before the old identity is removed.
  auto ek = RequireEkCertificate(tpm);
  if (!ek) return Fail(ek.error());
  result.ek_certificate_index = ek->index;
  auto ek_fingerprint = Sha256Fingerprint(*ek->cert);
  if (!ek_fingerprint) return Fail(ek_fingerprint.error());
  result.ek_certificate_fingerprint = *ek_fingerprint;
  auto unit = IdentityFor(request, factory, *ek->cert);
  if (!unit) return Fail(unit.error());
  if (auto removed = RemoveIdentity(tpm, request); !removed) return Fail(removed.error());
  result.replaced = std::move(*existing);
  timer.Done("prepare");
  auto public_key = CreateIdevidKey(tpm, request);
  if (!public_key) return Fail(public_key.error());
  timer.Done("create_key");
  if (auto done = IssueAndBurn(tpm, factory, request, *unit, **public_key, result.tpm.nv_index_max,
                               timer, result);
      !done) {
    (void)UnpersistKey(tpm, request.key_handle);
    return Fail(done.error());
  }
  return result;
}

}  // namespace idevid
