// Building X.509 objects with OpenSSL: software keys, certificates signed by a software CA key,
// and certification requests whose signature is made elsewhere (e.g. by a TPM).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/tpm_keys.h"
#include "core/x509.h"

namespace idevid {

// A fresh software key pair (ECDSA P-256 or RSA-2048).
Result<ossl::PKey> GenerateKey(KeyAlgorithm alg);
// Writes the private key as PKCS#8 PEM with mode 0600, atomically.
Result<void> WritePrivateKeyPem(const std::filesystem::path& path, const EVP_PKEY& key);
// Reads a PEM private key. Fails with kOpenSsl / kIo naming the path.
Result<ossl::PKey> LoadPrivateKeyPem(const std::filesystem::path& path);

// One subject attribute: short name or dotted OID, and its UTF-8 value.
using NameEntry = std::pair<std::string, std::string>;

// An extension in openssl.cnf syntax, e.g. {"basicConstraints", "critical,CA:TRUE,pathlen:0"}.
struct ConfExtension {
  std::string name;
  std::string value;
};

// An extension given as DER, for what openssl.cnf syntax cannot say simply.
struct DerExtension {
  std::string oid;
  bool critical = false;
  Bytes value;
};

struct CertificateSpec {
  std::vector<NameEntry> subject;
  std::string not_before;  // "YYYYMMDDHHMMSSZ"; empty = now
  std::string not_after;   // "YYYYMMDDHHMMSSZ" (GeneralizedTime from 2050 on, RFC 5280 4.1.2.5)
  std::vector<ConfExtension> extensions;     // added first, in order
  std::vector<DerExtension> der_extensions;  // then these
};

// Issues a v3 certificate for `subject_key` with a random positive 127-bit serial (RFC 5280
// 4.1.2.2), signed with SHA-256 by `issuer_key`; `issuer` is the issuer's certificate, or null
// for a self-signed one. AKI/SKI values in `extensions` ("keyid", "hash") see both certificates.
Result<ossl::Cert> IssueCertificate(const CertificateSpec& spec, EVP_PKEY& subject_key, const X509* issuer,
                                    EVP_PKEY& issuer_key);

// Signs the DER "to be signed" bytes and returns the signature in X.509 encoding.
using TbsSigner = std::function<Result<Bytes>(std::span<const std::uint8_t> tbs)>;

// A PKCS#10 request for `public_key` and `subject`, signed (SHA-256, ECDSA or RSA PKCS#1 by key
// type) by `sign`. The result is verified against `public_key` before it is returned: a signer
// that does not hold the key gives kVerify.
Result<ossl::UniquePtr<X509_REQ>> MakeSignedRequest(const std::vector<NameEntry>& subject,
                                                    EVP_PKEY& public_key, const TbsSigner& sign);

}  // namespace idevid
