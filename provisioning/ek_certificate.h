// The TPM vendor's endorsement key certificate, read from its standard NV index.
#pragma once

#include <optional>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/tpm_context.h"
#include "core/tpm_types.h"

namespace idevid {

// TCG EK Credential Profile 2.3: EK certificate NV indices.
inline constexpr TpmHandle kEkCertRsa2048Index = 0x01C00002;
inline constexpr TpmHandle kEkCertEccP256Index = 0x01C0000A;

struct EkCertificate {
  TpmHandle index = 0;
  ossl::Cert cert;
};

// The first EK certificate found (ECC P-256, then RSA-2048); nullopt when the TPM has none.
// Fails with the TPM's error when it cannot be read, kOpenSsl when it does not parse.
Result<std::optional<EkCertificate>> ReadEkCertificate(const TpmContext& tpm);

}  // namespace idevid
