// libFuzzer target: a device certificate as bytes from NV or from a TLS client: parsed, its
// hardwareModuleName decoded and judged by the cloud, without crashing or reading out of bounds.
#include <cstddef>
#include <cstdint>
#include <span>

#include "cloud/identity_verdict.h"
#include "core/idevid_profile.h"
#include "core/x509.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto cert = idevid::ParseCertificate(std::span<const std::uint8_t>(data, size));
  if (!cert) return 0;
  (void)idevid::FindHardwareModuleName(**cert);
  (void)idevid::Sha256Fingerprint(**cert);
  (void)idevid::SubjectLine(**cert);
  (void)idevid::JudgeDeviceCertificate(**cert, std::nullopt);
  return 0;
}
