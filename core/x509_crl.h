// Certificate revocation lists (RFC 5280 5) on OpenSSL: the factory's CRL built and signed by the
// issuing CA's key (a software key or one an HSM holds behind an OpenSSL provider), a CRL file
// checked against the factory CA, and a certificate looked up in it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/x509.h"

namespace idevid {

using CrlClock = std::chrono::system_clock;

// One revoked certificate (RFC 5280 5.1.2.6).
struct CrlEntry {
  std::string certificate_serial;  // hex, as the ledger records it (case and leading zeros do not matter)
  RevocationReason reason = RevocationReason::kUnspecified;
  CrlClock::time_point revoked_at;
};

// What a CRL says; the issuer is the issuing CA's subject.
struct CrlContent {
  std::uint64_t number = 0;  // cRLNumber (RFC 5280 5.2.3)
  CrlClock::time_point this_update;
  CrlClock::time_point next_update;  // RFC 5280 5.1.2.5: always present in ours
  std::vector<CrlEntry> entries;
};

// Builds a v2 CRL with `content`, issuer = `issuer`'s subject, the Authority Key Identifier of
// `issuer` (RFC 5280 5.2.1) and the CRL number, signed with SHA-256 by `issuer_key` (any key
// OpenSSL can sign with; it never leaves its provider). kUsage for an entry that is not hex or
// names removeFromCRL (delta CRLs only), or next_update not after this_update; kOpenSsl when
// OpenSSL cannot build or sign it.
Result<ossl::Crl> BuildCrl(const CrlContent& content, const X509& issuer, EVP_PKEY& issuer_key);

// PEM text and DER bytes of a CRL.
Result<std::string> CrlPem(const X509_CRL& crl);
Result<Bytes> CrlDer(const X509_CRL& crl);

// Parses one CRL from PEM or DER bytes (detected from the content). kConfig/kFile when it is not
// a CRL (trailing bytes after DER included).
Result<ossl::Crl> ParseCrl(std::span<const std::uint8_t> bytes);
// Reads and parses a CRL file; kIo or kConfig naming the path.
Result<ossl::Crl> LoadCrlFile(const std::filesystem::path& path);

// Reads what a CRL states: number (0 when it has none), thisUpdate, nextUpdate (thisUpdate when
// it has none), entries with reason and date. kConfig when an entry's reason cannot be decoded.
Result<CrlContent> ReadCrl(const X509_CRL& crl);

// Checks that `crl` was issued and signed by one of `cas` (the factory CA: its issuing CA, RFC
// 5280 6.3.3 (f)) and that it is not stale at `now` (nextUpdate is not past, 6.3.3 (a)(2)); a
// v2 CRL with a nextUpdate. kVerify with the X509_V_ERR_* code otherwise: "the CRL is stale:
// its nextUpdate ... has passed", "the CRL's signature does not verify with ...", "no CA of the
// factory issued the CRL ...". Returns the CA that signed it (one of `cas`).
Result<const X509*> CheckCrl(const X509_CRL& crl, const std::vector<const X509*>& cas,
                             CrlClock::time_point now);

// A certificate's entry in a CRL.
struct CrlRevocation {
  RevocationReason reason = RevocationReason::kUnspecified;
  CrlClock::time_point revoked_at;
};
// The entry of `cert` (its issuer is the CRL's, and its serial is listed), nullopt when it has
// none. Thread-safe for a CRL no one changes.
std::optional<CrlRevocation> FindRevocation(const X509_CRL& crl, const X509& cert);

// A certificate's serial as lower-case hex without leading zeros ("0" for zero; "-..." for a
// negative serial), the form the ledger records.
std::string CertificateSerialHex(const X509& cert);
// Whether two hex serials name the same number (case and leading zeros aside); false when either
// is not hex.
bool SameCertificateSerial(std::string_view a, std::string_view b);

}  // namespace idevid
