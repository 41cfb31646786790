// What provisioning and enrolment both do to a unit's TPM: find the identity it holds already,
// remove it, require its EK certificate, and burn a certificate into NV once.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/tpm_context.h"
#include "core/tpm_types.h"
#include "core/x509.h"
#include "provisioning/ek_certificate.h"

namespace idevid {

// Records how long each step takes into `timings` (milliseconds since the previous step).
class StepTimer {
 public:
  explicit StepTimer(std::map<std::string, double>& timings) : timings_(timings) {}
  void Done(const std::string& step);

 private:
  std::map<std::string, double>& timings_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// The persistent keys and NV indices of one identity.
struct IdentitySlots {
  std::vector<TpmHandle> keys;
  std::vector<TpmHandle> nv_indices;
};

// What the TPM holds in `slots`, one line each ("key at 0x81020000", "NV index 0x01c90000 (597
// bytes): certificate <subject>"). Fails with the TPM's error other than "nothing there".
Result<std::vector<std::string>> ExistingIdentity(const TpmContext& tpm, const IdentitySlots& slots);

// Removes whatever is in `slots`; what is absent already is fine.
Result<void> RemoveIdentity(const TpmContext& tpm, const IdentitySlots& slots);

// The TPM's EK certificate. Fails with kConfig saying how a TPM gets one when it has none.
Result<EkCertificate> RequireEkCertificate(const TpmContext& tpm);

// Defines `index` for `der`, writes it, write-locks it and reads it back. Fails with kUsage when
// the certificate is larger than the TPM's NV indices hold (`nv_index_max`, 0 = unknown), kVerify
// when it does not read back, the TPM's error otherwise.
Result<void> BurnCertificate(const TpmContext& tpm, TpmHandle index, const Bytes& der,
                             std::uint32_t nv_index_max);

}  // namespace idevid
