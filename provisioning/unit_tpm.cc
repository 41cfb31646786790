#include "provisioning/unit_tpm.h"

#include <algorithm>

#include <openssl/x509_vfy.h>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/tpm_keys.h"
#include "core/tpm_nv.h"

namespace idevid {
namespace {

// "NV index 0x01c90000 (597 bytes): certificate <subject>", for messages about what is there.
std::string DescribeNvIndex(const TpmContext& tpm, const NvPublic& pub) {
  std::string what = fmt::format("NV index {:#010x} ({} bytes)", pub.index, pub.size);
  if (!pub.written()) return what + ", never written";
  auto der = NvRead(tpm, pub.index);
  if (!der) return what;
  auto cert = ParseCertificate(*der);
  return what + (cert ? ": certificate " + DisplayText(SubjectLine(**cert)) : ": not a certificate");
}

}  // namespace

void StepTimer::Done(const std::string& step) {
  auto now = std::chrono::steady_clock::now();
  timings_[step] = std::chrono::duration<double, std::milli>(now - last_).count();
  last_ = now;
}

Result<std::vector<std::string>> ExistingIdentity(const TpmContext& tpm, const IdentitySlots& slots) {
  std::vector<std::string> found;
  for (TpmHandle handle : slots.keys) {
    IDEVID_ASSIGN_OR_RETURN(auto key, OrAbsent(ReadPersistentPublic(tpm, handle)), "cannot look for a key");
    if (key) found.push_back(fmt::format("key at {:#010x}", handle));
  }
  for (TpmHandle index : slots.nv_indices) {
    IDEVID_ASSIGN_OR_RETURN(auto pub, OrAbsent(NvReadPublic(tpm, index)), "cannot look for a certificate");
    if (pub) found.push_back(DescribeNvIndex(tpm, *pub));
  }
  return found;
}

Result<void> RemoveIdentity(const TpmContext& tpm, const IdentitySlots& slots) {
  for (TpmHandle handle : slots.keys) {
    IDEVID_TRY(OrAbsent(UnpersistKey(tpm, handle)), "replacing the identity the TPM holds");
  }
  for (TpmHandle index : slots.nv_indices) {
    IDEVID_TRY(OrAbsent(NvUndefine(tpm, index)), "replacing the identity the TPM holds");
  }
  return {};
}

Result<EkCertificate> RequireEkCertificate(const TpmContext& tpm) {
  IDEVID_ASSIGN_OR_RETURN(std::optional<EkCertificate> ek, ReadEkCertificate(tpm));
  if (!ek) {
    return ConfigError(
        ConfigCode::kMissing,
        fmt::format("the TPM has no EK certificate in NV {:#010x} or {:#010x}: hardwareModuleName is derived "
                    "from it; a TPM vendor installs one (for swtpm: idevid tpm start --manufacture, or "
                    "swtpm_setup --create-ek-cert)",
                    kEkCertEccP256Index, kEkCertRsa2048Index));
  }
  return std::move(*ek);
}

Result<void> BurnCertificate(const TpmContext& tpm, TpmHandle index, const Bytes& der,
                             std::uint32_t nv_index_max) {
  std::uint32_t limit = nv_index_max == 0 ? 0xFFFF : std::min<std::uint32_t>(nv_index_max, 0xFFFF);
  if (der.size() > limit) {
    return UsageError(
        UsageCode::kUnsupported,
        fmt::format("the certificate is {} bytes; this TPM's NV indices hold at most {}", der.size(), limit));
  }
  IDEVID_TRY(NvDefine(tpm, {.index = index, .size = static_cast<std::uint16_t>(der.size())}));
  IDEVID_TRY(NvWrite(tpm, index, der));
  IDEVID_TRY(NvWriteLock(tpm, index));
  IDEVID_ASSIGN_OR_RETURN(auto back, NvRead(tpm, index), "reading the certificate back");
  if (back != der) {
    return Fail(ErrorDomain::kVerify, X509_V_ERR_APPLICATION_VERIFICATION,
                fmt::format("NV index {:#010x} does not read back what was written", index));
  }
  return {};
}

}  // namespace idevid
