// The factory CA: a root CA and an issuing CA that signs the idev-id certificates. Their keys are
// files in the factory directory (the default) or keys inside a PKCS#11 token (an HSM), which
// then makes every signature of the issuing CA.
#pragma once

#include <filesystem>
#include <memory>
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
  // The CA keys inside a PKCS#11 token instead of files: an RFC 7512 URI naming the token and the
  // issuing CA's key ("pkcs11:token=Factory;object=issuing-ca"); the root CA's key is OBJECT-root
  // (and, when the URI has id=, its id is that id followed by 0x01). Empty = key files.
  std::string pkcs11_uri;
  std::string pkcs11_module;              // the PKCS#11 module; empty = p11-kit's proxy module
  std::filesystem::path pkcs11_pin_file;  // the user PIN's file; empty = IDEVID_PKCS11_PIN
};

// How LoadFactory reaches what the factory directory does not hold.
struct FactoryAccess {
  // The token's user PIN, for a factory whose keys are in a PKCS#11 token: the first line of this
  // file, or IDEVID_PKCS11_PIN when empty. Never recorded anywhere.
  std::filesystem::path pkcs11_pin_file;
};

// A loaded factory: both CA certificates and the issuing CA's private key.
struct Factory {
  std::filesystem::path dir;
  std::string manufacturer;
  KeyAlgorithm algorithm = KeyAlgorithm::kEccP256;
  std::string ledger;         // the ledger's spec, never empty (factory.json's, or the default)
  std::string pkcs11_uri;     // the token and issuing CA key (factory.json's); empty for key files
  std::string pkcs11_module;  // the PKCS#11 module (factory.json's); empty for key files
  ossl::Cert root;
  ossl::Cert issuing;
  // What a token-held issuing_key signs through (the token's session, our signer provider's
  // library context); declared before issuing_key so that it is destroyed after it. Null for
  // key files.
  std::shared_ptr<void> issuing_key_owner;
  // The issuing CA's private key: read from its file, or an EVP_PKEY of the signer provider whose
  // signatures are C_Sign calls in the token (its private half never leaves the token).
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
// KeyUsage keyCertSign+cRLSign and SKI/AKI; private keys are written 0600, or generated inside
// the token options.pkcs11_uri names (then no key file exists, and factory.json records the URI
// and module, never the PIN). Refuses (kUsage) when `dir` already holds a factory, or the token a
// key of that name, unless options.force. kPkcs11 with the token's CK_RV.
Result<Factory> InitFactory(const FactoryOptions& options);

// Loads a factory made by InitFactory. Fails with kUsage when `dir` holds none. For a factory
// whose keys are in a token: opens it with the PIN `access` names, finds the issuing CA's key and
// checks it is the issuing certificate's (kVerify otherwise); kPkcs11 (CKR_PIN_INCORRECT,
// CKR_TOKEN_NOT_PRESENT) when the token refuses or is not there.
Result<Factory> LoadFactory(const std::filesystem::path& dir, const FactoryAccess& access = {});

// The ledger spec factory.json records for the factory in `dir` (or the default), read without
// loading any key: no token, no PIN. kUsage when `dir` holds no factory, kConfig for a bad record.
Result<std::string> FactoryLedgerSpec(const std::filesystem::path& dir);

// The certificates of a --factory-ca bundle split into trust anchors (self-signed) and
// intermediates. Fails with kConfig when the bundle holds no self-signed certificate.
struct TrustBundle {
  std::vector<ossl::Cert> anchors;
  std::vector<ossl::Cert> intermediates;
};
Result<TrustBundle> LoadTrustBundle(const std::filesystem::path& path);

}  // namespace idevid
