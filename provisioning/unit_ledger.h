// What a station and the enrolment authority give the ledger (core/ledger.h) about one unit: the
// hashes it keys units by, the issued step's request, a refusal as one line.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/ledger.h"
#include "core/result.h"
#include "core/x509.h"
#include "core/x509_crl.h"  // CertificateSerialHex, as the ledger and a CRL name it

namespace idevid {

// The ledger's ek_sha256 of the TPM whose EK certificate is `ek_certificate`: PublicKeySha256 of
// the EK public key it certifies. kOpenSsl when the key does not load.
Result<std::string> EkSha256(const X509& ek_certificate);

// The IssuedRequest recording `certificate` (DER parsed) for a reservation of (serial, EK).
// kOpenSsl when the certificate cannot be encoded or its key hashed.
Result<IssuedRequest> IssuedRequestFor(const ReserveRequest& reservation, const X509& certificate);

// The certificate an earlier attempt of a resumed unit recorded, when it may be handed back as it
// is: the row is issued, for this very IDevID key, and the certificate names `model` (802.1AR CN;
// a retry with another model gets a new certificate). nullopt otherwise; kOpenSsl when the key or
// the recorded certificate cannot be read.
Result<std::optional<Bytes>> ReusableCertificate(const UnitRow& row, const EVP_PKEY& idevid_key,
                                                 std::string_view model);

// "reason: detail".
std::string RefusalLine(const LedgerRefusal& refusal);

}  // namespace idevid
