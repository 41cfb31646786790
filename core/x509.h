// X.509 helpers on OpenSSL: load certificates, fingerprints, subject fields, extensions by OID,
// public keys as DER.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/openssl_ptr.h"
#include "core/result.h"

namespace idevid {

using Bytes = std::vector<std::uint8_t>;

// Parses one certificate from PEM or DER bytes (detected from the content). Fails with
// kOpenSsl naming what could not be parsed; trailing bytes after a DER certificate are an error.
Result<ossl::Cert> ParseCertificate(std::span<const std::uint8_t> bytes);
// Reads and parses a certificate file (PEM or DER).
Result<ossl::Cert> LoadCertificateFile(const std::filesystem::path& path);
// Reads every certificate of a PEM file (a bundle or chain), in file order; fails if none.
Result<std::vector<ossl::Cert>> LoadCertificateBundle(const std::filesystem::path& path);

// Copies and frees a buffer that an i2d_* call allocated (i2d_X(obj, &der) with der = nullptr);
// fails with kOpenSsl naming `what` when the call returned length <= 0.
Result<Bytes> AdoptDer(unsigned char* der, int length, std::string_view what);

// The DER encoding of a certificate.
Result<Bytes> CertificateDer(const X509& cert);
// PEM text of a certificate.
Result<std::string> CertificatePem(const X509& cert);

// SHA-256 over the DER certificate, lower-case hex without separators.
Result<std::string> Sha256Fingerprint(const X509& cert);
// Lower-case hex of arbitrary bytes.
std::string Hex(std::span<const std::uint8_t> bytes);

// The values of attribute `oid` ("2.5.4.5", or a short name like "CN") in the subject, in
// order, as UTF-8. An empty list when absent; kUsage for an unknown attribute name.
Result<std::vector<std::string>> SubjectAttribute(const X509& cert, std::string_view oid);
Result<std::vector<std::string>> IssuerAttribute(const X509& cert, std::string_view oid);
// One-line RFC 2253 form of the subject / issuer.
std::string SubjectLine(const X509& cert);
// The policy OIDs of the certificatePolicies extension, in order (dotted); empty when it has none.
std::vector<std::string> CertificatePolicyOids(const X509& cert);
std::string IssuerLine(const X509& cert);

// An extension as it appears in the certificate.
struct Extension {
  bool critical = false;
  Bytes value;  // the DER inside the extnValue OCTET STRING
};
// Looks up the extension with dotted OID `oid`; nullopt when absent, kUsage for a malformed OID,
// kConfig when the certificate carries it more than once (RFC 5280 4.2).
Result<std::optional<Extension>> FindExtension(const X509& cert, std::string_view oid);

// The SubjectPublicKeyInfo DER of a key, for comparing keys.
Result<Bytes> PublicKeyDer(const EVP_PKEY& key);
// Parses a PEM public key (SubjectPublicKeyInfo).
Result<ossl::PKey> ParsePublicKeyPem(std::string_view pem);
// A public key of OpenSSL key type `type` ("EC", "RSA") from the parameters in `bld` (which the
// caller keeps owning); `source` names where they came from in the error ("the TPM's"). kOpenSsl
// when OpenSSL refuses them.
Result<ossl::PKey> PublicKeyFromParams(const char* type, OSSL_PARAM_BLD* bld, std::string_view source);

}  // namespace idevid
