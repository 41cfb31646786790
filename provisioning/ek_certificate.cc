#include "provisioning/ek_certificate.h"

#include <fmt/format.h>

#include "core/openssl_error.h"
#include "core/tpm_nv.h"
#include "core/tss_error.h"
#include "core/x509.h"

namespace idevid {

Result<std::optional<EkCertificate>> ReadEkCertificate(const TpmContext& tpm) {
  for (TpmHandle index : {kEkCertEccP256Index, kEkCertRsa2048Index}) {
    IDEVID_ASSIGN_OR_RETURN(auto der, OrAbsent(NvRead(tpm, index)), "cannot read the EK certificate");
    if (!der) continue;
    // Some vendors pad the index: parse the first DER object only.
    const unsigned char* p = der->data();
    ossl::Cert cert(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
    if (!cert) {
      return FailOpenSsl(fmt::format("the EK certificate in NV {:#010x} does not parse", index));
    }
    return std::optional<EkCertificate>(EkCertificate{index, std::move(cert)});
  }
  return std::optional<EkCertificate>();
}

}  // namespace idevid
