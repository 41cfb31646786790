// File-mode device identities: an idev-id profile certificate and a software private key, issued
// by the factory without a TPM, for SSL-I profiles that present a file-system certificate.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core/idevid_profile.h"
#include "core/ledger.h"
#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/tpm_keys.h"
#include "provisioning/factory.h"

namespace idevid {

struct FileIdentityRequest {
  std::string serial;  // subject serialNumber
  std::string model;   // subject CN
  KeyAlgorithm algorithm = KeyAlgorithm::kEccP256;
  // hwSerialNum; nullopt: SHA-256 over the new key's SubjectPublicKeyInfo (there is no EK).
  std::optional<Bytes> hw_serial;
};

// The issued identity; the caller owns the key and writes it where it wants.
struct FileIdentity {
  ossl::Cert certificate;
  ossl::PKey key;
  Bytes hw_serial;          // the hwSerialNum the certificate carries
  std::string fingerprint;  // SHA-256 of the certificate's DER, hex
};

// Validates serial and model (kUsage, as ProvisionUnit does), generates a fresh key pair and
// issues the 802.1AR certificate (IdevidCertificateSpec) for it from the factory's issuing CA.
// Fails with kUsage for bad input, kOpenSsl when a key or certificate cannot be made.
Result<FileIdentity> IssueFileIdentity(const Factory& factory, const FileIdentityRequest& request);
// The same for a key pair the caller made (`key` is moved into the identity).
Result<FileIdentity> IssueFileIdentity(const Factory& factory, const FileIdentityRequest& request,
                                       ossl::PKey key);

// Where an identity issued to PREFIX goes.
struct FileIdentityFiles {
  std::filesystem::path certificate;  // PREFIX.pem: the certificate alone
  std::filesystem::path chain;        // PREFIX-chain.pem: the certificate, then the issuing CA
  std::filesystem::path key;          // PREFIX.key: PKCS#8 PEM, mode 0600
  static FileIdentityFiles ForPrefix(const std::string& prefix);
};

// Writes the three files. Refuses with kUsage, naming the file, when one of them exists unless
// `force`; kIo when a file cannot be written.
Result<void> WriteFileIdentity(const FileIdentity& identity, const Factory& factory,
                               const FileIdentityFiles& files, bool force);

// A file identity recorded in `ledger` as a unit, by `station`: without a TPM there is no EK, so
// the new key's hash (PublicKeySha256) stands in for it. Reserved before the certificate is
// issued, recorded as issued before the files are written, committed once they are (line check
// PASS: the written key is the certificate's), with `record`. A refusal (a serial recorded for
// another unit is a clone) is the answer, and nothing is written; a failure before the record
// releases the reservation. Errors as IssueFileIdentity and WriteFileIdentity, kDatabase.
Result<LedgerAnswer<FileIdentity>> IssueRecordedFileIdentity(const Factory& factory,
                                                             const FileIdentityRequest& request,
                                                             const FileIdentityFiles& files, bool force,
                                                             Ledger& ledger, const std::string& station,
                                                             const nlohmann::json& record);

}  // namespace idevid
