// The TPM vendor's endorsement key certificate, read from its standard NV index.
#pragma once

#include <optional>

#include <tss2/tss2_tpm2_types.h>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/tpm_context.h"

namespace idevid {

// TCG EK Credential Profile 2.3: EK certificate NV indices.
inline constexpr TPM2_HANDLE kEkCertRsa2048Index = 0x01C00002;
inline constexpr TPM2_HANDLE kEkCertEccP256Index = 0x01C0000A;

struct EkCertificate {
  TPM2_HANDLE index = 0;
  ossl::Cert cert;
};

// The first EK certificate found (ECC P-256, then RSA-2048); nullopt when the TPM has none.
// Fails with the TPM's error when it cannot be read, kOpenSsl when it does not parse.
Result<std::optional<EkCertificate>> ReadEkCertificate(const TpmContext& tpm);

}  // namespace idevid
