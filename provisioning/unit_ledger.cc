#include "provisioning/unit_ledger.h"

#include <openssl/bn.h>

#include <cctype>

#include "core/openssl_error.h"

namespace idevid {

Result<std::string> EkSha256(const X509& ek_certificate) {
  EVP_PKEY* key = X509_get0_pubkey(&ek_certificate);
  if (key == nullptr) return FailOpenSsl("the EK certificate's public key does not load");
  return PublicKeySha256(*key);
}

Result<IssuedRequest> IssuedRequestFor(const ReserveRequest& reservation, const X509& certificate) {
  IssuedRequest issued{
      .serial = reservation.serial, .ek_sha256 = reservation.ek_sha256, .station = reservation.station};
  EVP_PKEY* key = X509_get0_pubkey(&certificate);
  if (key == nullptr) return FailOpenSsl("the IDevID certificate's public key does not load");
  IDEVID_ASSIGN_OR_RETURN(issued.idevid_key_sha256, PublicKeySha256(*key));
  issued.certificate_serial = CertificateSerialHex(certificate);
  IDEVID_ASSIGN_OR_RETURN(issued.certificate, CertificateDer(certificate));
  return issued;
}

std::string RefusalLine(const LedgerRefusal& refusal) { return refusal.reason + ": " + refusal.detail; }

}  // namespace idevid
