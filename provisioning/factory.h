// The factory CA: a root CA and an issuing CA that signs the idev-id certificates.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/tpm_keys.h"

namespace idevid {

struct FactoryOptions {
  std::filesystem::path dir;
  KeyAlgorithm algorithm = KeyAlgorithm::kEccP256;
  std::string manufacturer = "Example Networks";  // O of every certificate it issues
  bool force = false;                             // replace an existing factory in `dir`
  // The ledger its stations record units in (see core/ledger.h); empty = DefaultLedgerSpec.
  // Recorded in factory.json: name PostgreSQL's password in ~/.pgpass or PGPASSFILE, not here.
  std::string ledger;
};

// A loaded factory: both CA certificates and the issuing CA's private key.
struct Factory {
  std::filesystem::path dir;
  std::string manufacturer;
  KeyAlgorithm algorithm = KeyAlgorithm::kEccP256;
  std::string ledger;  // the ledger's spec, never empty (factory.json's, or the default)
  ossl::Cert root;
  ossl::Cert issuing;
  ossl::PKey issuing_key;
};

// Files of a factory directory.
struct FactoryFiles {
  static std::filesystem::path Record(const std::filesystem::path& dir);       // factory.json
  static std::filesystem::path RootCert(const std::filesystem::path& dir);     // root-ca.pem
  static std::filesystem::path RootKey(const std::filesystem::path& dir);      // root-ca.key
  static std::filesystem::path IssuingCert(const std::filesystem::path& dir);  // issuing-ca.pem
  static std::filesystem::path IssuingKey(const std::filesystem::path& dir);   // issuing-ca.key
  // issuing-ca.pem + root-ca.pem: what a line station or a cloud is given as --factory-ca.
  static std::filesystem::path Chain(const std::filesystem::path& dir);  // factory-ca.pem
};

// Creates the root CA (BasicConstraints CA pathlen:1) and the issuing CA (pathlen:0), both with
// KeyUsage keyCertSign+cRLSign and SKI/AKI; private keys are written 0600. Refuses (kUsage) when
// `dir` already holds a factory unless options.force.
Result<Factory> InitFactory(const FactoryOptions& options);

// Loads a factory made by InitFactory. Fails with kUsage when `dir` holds none.
Result<Factory> LoadFactory(const std::filesystem::path& dir);

// The certificates of a --factory-ca bundle split into trust anchors (self-signed) and
// intermediates. Fails with kConfig when the bundle holds no self-signed certificate.
struct TrustBundle {
  std::vector<ossl::Cert> anchors;
  std::vector<ossl::Cert> intermediates;
};
Result<TrustBundle> LoadTrustBundle(const std::filesystem::path& path);

}  // namespace idevid
