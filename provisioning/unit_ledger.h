// What a station and the enrolment authority give the ledger (core/ledger.h) about one unit: the
// hashes it keys units by, the issued step's request, a refusal as one line.
#pragma once

#include <string>

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

// "reason: detail".
std::string RefusalLine(const LedgerRefusal& refusal);

}  // namespace idevid
