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

Result<std::optional<Bytes>> ReusableCertificate(const UnitRow& row, const EVP_PKEY& idevid_key,
                                                 std::string_view model) {
  if (row.state != UnitState::kIssued || row.certificate.empty()) return std::nullopt;
  IDEVID_ASSIGN_OR_RETURN(std::string key_sha256, PublicKeySha256(idevid_key), "the IDevID key");
  if (key_sha256 != row.idevid_key_sha256) return std::nullopt;
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert recorded, ParseCertificate(row.certificate), "the recorded certificate");
  IDEVID_ASSIGN_OR_RETURN(std::vector<std::string> names, SubjectAttribute(*recorded, "2.5.4.3"),
                          "the recorded certificate");
  if (names.size() != 1 || names.front() != model) return std::nullopt;
  return row.certificate;
}

std::string RefusalLine(const LedgerRefusal& refusal) { return refusal.reason + ": " + refusal.detail; }

}  // namespace idevid
