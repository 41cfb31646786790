#include "provisioning/factory.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/display_text.h"
#include "core/file_io.h"
#include "core/ledger.h"
#include "core/openssl_error.h"
#include "core/pkcs11_key_signer.h"
#include "core/signer_provider.h"
#include "core/x509.h"
#include "core/x509_build.h"

namespace idevid {
namespace {

constexpr int kFactoryRecordVersion = 1;
constexpr const char* kCaNotAfter = "20991231235959Z";

std::vector<ConfExtension> CaExtensions(int pathlen, bool has_issuer) {
  std::vector<ConfExtension> ext = {
      {"basicConstraints", fmt::format("critical,CA:TRUE,pathlen:{}", pathlen)},  // RFC 5280 4.2.1.9
      {"keyUsage", "critical,keyCertSign,cRLSign"},                               // RFC 5280 4.2.1.3
      {"subjectKeyIdentifier", "hash"},                                           // RFC 5280 4.2.1.2
  };
  if (has_issuer) ext.push_back({"authorityKeyIdentifier", "keyid:always"});  // RFC 5280 4.2.1.1
  return ext;
}

Result<ossl::Cert> MakeCa(const std::string& manufacturer, const std::string& cn, int pathlen, EVP_PKEY& key,
                          const X509* issuer, EVP_PKEY& issuer_key) {
  return IssueCertificate({.subject = {{"O", manufacturer}, {"CN", cn}},
                           .not_after = kCaNotAfter,
                           .extensions = CaExtensions(pathlen, issuer != nullptr)},
                          key, issuer, issuer_key);
}

// The CA keys of a factory, and what keeps token-held ones usable (null for key files).
struct CaKeys {
  std::shared_ptr<void> owner;
  ossl::PKey root;
  ossl::PKey issuing;
};

// Keeps a token-held key usable: the library context of the signer provider it lives in (the
// key holds its signer, the signer its token session).
struct TokenKeyOwner {
  explicit TokenKeyOwner(SignerProviderLibrary l) : library(std::move(l)) {}
  SignerProviderLibrary library;
};

// The issuing CA key's name in the token: the URI's object= and id=.
Result<Pkcs11KeyName> IssuingKeyName(const Pkcs11Uri& uri) {
  if (!uri.object()) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("--pkcs11 {} names no object=: the factory names its keys OBJECT (issuing "
                                  "CA) and OBJECT-root (root CA)",
                                  QuotedDisplayText(uri.text())));
  }
  return Pkcs11KeyName{*uri.object(), uri.id()};
}

// The root CA key's: OBJECT-root, and the URI's id followed by 0x01 when it has one.
Pkcs11KeyName RootKeyName(const Pkcs11KeyName& issuing) {
  Pkcs11KeyName root{issuing.label + "-root", issuing.id};
  if (root.id) root.id->push_back(0x01);
  return root;
}

std::string ModuleOrDefault(const std::string& module) {
  return module.empty() ? DefaultPkcs11Module() : module;
}

// The user PIN's token session: opened, logged in, the PIN zeroed before it returns.
Result<std::shared_ptr<Pkcs11Token>> OpenToken(const Pkcs11Uri& uri, const std::string& module,
                                               const std::filesystem::path& pin_file) {
  IDEVID_ASSIGN_OR_RETURN(Pkcs11Pin pin, ReadPkcs11Pin(pin_file));
  return Pkcs11Token::Open(module, uri, pin);
}

Result<CaKeys> FileCaKeys(KeyAlgorithm algorithm) {
  CaKeys keys;
  IDEVID_ASSIGN_OR_RETURN(keys.root, GenerateKey(algorithm), "root CA key");
  IDEVID_ASSIGN_OR_RETURN(keys.issuing, GenerateKey(algorithm), "issuing CA key");
  return keys;
}

// Generates both CA keys inside the token options.pkcs11_uri names.
Result<CaKeys> TokenCaKeys(const FactoryOptions& options) {
  IDEVID_ASSIGN_OR_RETURN(Pkcs11Uri uri, Pkcs11Uri::Parse(options.pkcs11_uri));
  IDEVID_ASSIGN_OR_RETURN(Pkcs11KeyName issuing_name, IssuingKeyName(uri));
  IDEVID_ASSIGN_OR_RETURN(auto token,
                          OpenToken(uri, ModuleOrDefault(options.pkcs11_module), options.pkcs11_pin_file));
  IDEVID_ASSIGN_OR_RETURN(auto issuing,
                          Pkcs11KeySigner::Generate(token, options.algorithm, issuing_name, options.force),
                          "issuing CA key");
  IDEVID_ASSIGN_OR_RETURN(
      auto root,
      Pkcs11KeySigner::Generate(token, options.algorithm, RootKeyName(issuing_name), options.force),
      "root CA key");
  IDEVID_ASSIGN_OR_RETURN(SignerProviderLibrary library, SignerProviderLibrary::Create());
  CaKeys keys;
  IDEVID_ASSIGN_OR_RETURN(keys.root, MakeSignerPrivateKey(library.get(), root));
  IDEVID_ASSIGN_OR_RETURN(keys.issuing, MakeSignerPrivateKey(library.get(), issuing));
  keys.owner = std::make_shared<TokenKeyOwner>(std::move(library));
  return keys;
}

// The issuing CA's key in the token factory.json names, checked against its certificate.
Result<void> LoadTokenKey(Factory& factory, const FactoryAccess& access) {
  IDEVID_ASSIGN_OR_RETURN(Pkcs11Uri uri, Pkcs11Uri::Parse(factory.pkcs11_uri));
  IDEVID_ASSIGN_OR_RETURN(Pkcs11KeyName name, IssuingKeyName(uri));
  IDEVID_ASSIGN_OR_RETURN(auto token, OpenToken(uri, factory.pkcs11_module, access.pkcs11_pin_file));
  IDEVID_ASSIGN_OR_RETURN(auto signer, Pkcs11KeySigner::Find(token, name));
  if (EVP_PKEY_eq(&signer->public_key(), X509_get0_pubkey(factory.issuing.get())) != 1) {
    ClearOpenSslErrors();
    return Fail(ErrorDomain::kVerify, X509_V_ERR_APPLICATION_VERIFICATION,
                fmt::format("the key {} in the token is not the issuing CA's (its certificate has another "
                            "public key): the token is not this factory's, or its key was replaced",
                            QuotedDisplayText(name.label)));
  }
  IDEVID_ASSIGN_OR_RETURN(SignerProviderLibrary library, SignerProviderLibrary::Create());
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey key, MakeSignerPrivateKey(library.get(), signer));
  factory.issuing_key_owner = std::make_shared<TokenKeyOwner>(std::move(library));
  factory.issuing_key = std::move(key);
  return {};
}

Result<void> WriteCert(const std::filesystem::path& path, const X509& cert) {
  IDEVID_ASSIGN_OR_RETURN(std::string pem, CertificatePem(cert));
  return WriteFileAtomic(path, pem, 0644);
}

// Key files, or none for token-held keys (and no stale ones of a factory this one replaces).
Result<void> WriteKeys(const FactoryOptions& options, const CaKeys& keys) {
  const auto& dir = options.dir;
  if (options.pkcs11_uri.empty()) {
    IDEVID_TRY(WritePrivateKeyPem(FactoryFiles::RootKey(dir), *keys.root), "root CA key");
    return WritePrivateKeyPem(FactoryFiles::IssuingKey(dir), *keys.issuing);
  }
  for (const auto& path : {FactoryFiles::RootKey(dir), FactoryFiles::IssuingKey(dir)}) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (ec) return ErrnoError(ec.value(), "cannot remove the replaced factory's " + path.string());
  }
  return {};
}

Result<void> WriteFactory(const FactoryOptions& options, const CaKeys& keys, const ossl::Cert& root,
                          const ossl::Cert& issuing) {
  const auto& dir = options.dir;
  IDEVID_TRY(WriteKeys(options, keys), "CA keys");
  IDEVID_TRY(WriteCert(FactoryFiles::RootCert(dir), *root), "root CA certificate");
  IDEVID_TRY(WriteCert(FactoryFiles::IssuingCert(dir), *issuing), "issuing CA certificate");
  IDEVID_ASSIGN_OR_RETURN(std::string issuing_pem, CertificatePem(*issuing), "issuing CA certificate");
  IDEVID_ASSIGN_OR_RETURN(std::string root_pem, CertificatePem(*root), "root CA certificate");
  IDEVID_TRY(WriteFileAtomic(FactoryFiles::Chain(dir), issuing_pem + root_pem, 0644), "CA chain");
  IDEVID_ASSIGN_OR_RETURN(std::string root_fingerprint, Sha256Fingerprint(*root), "root CA certificate");
  IDEVID_ASSIGN_OR_RETURN(std::string issuing_fingerprint, Sha256Fingerprint(*issuing),
                          "issuing CA certificate");
  nlohmann::json record = {{"version", kFactoryRecordVersion},
                           {"manufacturer", options.manufacturer},
                           {"key_algorithm", KeyAlgorithmName(options.algorithm)},
                           {"root_fingerprint_sha256", root_fingerprint},
                           {"issuing_fingerprint_sha256", issuing_fingerprint},
                           {"ledger", options.ledger.empty() ? DefaultLedgerSpec(dir) : options.ledger}};
  if (!options.pkcs11_uri.empty()) {
    // The token and module, never the PIN.
    record["pkcs11"] = {{"uri", options.pkcs11_uri}, {"module", ModuleOrDefault(options.pkcs11_module)}};
  }
  // Written last: its presence means the factory is complete.
  return WriteFileAtomic(FactoryFiles::Record(dir), record.dump(2) + "\n", 0644);
}

}  // namespace

std::filesystem::path FactoryFiles::Record(const std::filesystem::path& d) { return d / "factory.json"; }
std::filesystem::path FactoryFiles::RootCert(const std::filesystem::path& d) { return d / "root-ca.pem"; }
std::filesystem::path FactoryFiles::RootKey(const std::filesystem::path& d) { return d / "root-ca.key"; }
std::filesystem::path FactoryFiles::IssuingCert(const std::filesystem::path& d) {
  return d / "issuing-ca.pem";
}
std::filesystem::path FactoryFiles::IssuingKey(const std::filesystem::path& d) {
  return d / "issuing-ca.key";
}
std::filesystem::path FactoryFiles::Chain(const std::filesystem::path& d) { return d / "factory-ca.pem"; }

Result<Factory> InitFactory(const FactoryOptions& options) {
  if (std::filesystem::exists(FactoryFiles::Record(options.dir)) && !options.force) {
    return UsageError(UsageCode::kWrongState,
                      fmt::format("{} already holds a factory CA; pass --force to replace it "
                                  "(units it provisioned will no longer verify)",
                                  options.dir.string()));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return ErrnoError(ec.value(), "cannot create " + options.dir.string());
  IDEVID_ASSIGN_OR_RETURN(CaKeys keys,
                          options.pkcs11_uri.empty() ? FileCaKeys(options.algorithm) : TokenCaKeys(options),
                          "cannot create the factory CA keys");
  IDEVID_ASSIGN_OR_RETURN(
      ossl::Cert root,
      MakeCa(options.manufacturer, options.manufacturer + " Root CA", 1, *keys.root, nullptr, *keys.root),
      "cannot issue the root CA certificate");
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert issuing,
                          MakeCa(options.manufacturer, options.manufacturer + " IDevID Issuing CA", 0,
                                 *keys.issuing, root.get(), *keys.root),
                          "cannot issue the issuing CA certificate");
  IDEVID_TRY(WriteFactory(options, keys, root, issuing), "cannot write the factory CA into {}",
             options.dir.string());
  return LoadFactory(options.dir, {.pkcs11_pin_file = options.pkcs11_pin_file});
}

namespace {

// What factory.json records (manufacturer, algorithm, ledger, token): no certificate, no key.
Result<Factory> ReadFactoryRecord(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(FactoryFiles::Record(dir))) {
    return UsageError(UsageCode::kWrongState, fmt::format("{} holds no factory CA; create one with "
                                                          "'idevid factory init --dir {}'",
                                                          dir.string(), dir.string()));
  }
  IDEVID_ASSIGN_OR_RETURN(std::string text, ReadFileText(FactoryFiles::Record(dir)),
                          "cannot load the factory CA");
  Factory factory;
  factory.dir = dir;
  try {
    auto record = nlohmann::json::parse(text);
    factory.manufacturer = record.at("manufacturer").get<std::string>();
    IDEVID_ASSIGN_OR_RETURN(factory.algorithm,
                            ParseKeyAlgorithm(record.at("key_algorithm").get<std::string>()), "{}",
                            FactoryFiles::Record(dir).string());
    factory.ledger = record.value("ledger", DefaultLedgerSpec(dir));
    if (record.contains("pkcs11")) {
      factory.pkcs11_uri = record.at("pkcs11").at("uri").get<std::string>();
      factory.pkcs11_module = record.at("pkcs11").at("module").get<std::string>();
    }
  } catch (const nlohmann::json::exception& e) {
    return ConfigError(ConfigCode::kSyntax, fmt::format("{} is not a factory record: {}",
                                                        FactoryFiles::Record(dir).string(), e.what()));
  }
  return factory;
}

}  // namespace

Result<std::string> FactoryLedgerSpec(const std::filesystem::path& dir) {
  IDEVID_ASSIGN_OR_RETURN(Factory record, ReadFactoryRecord(dir));
  return std::move(record.ledger);
}

Result<Factory> LoadFactory(const std::filesystem::path& dir, const FactoryAccess& access) {
  IDEVID_ASSIGN_OR_RETURN(Factory factory, ReadFactoryRecord(dir));
  IDEVID_ASSIGN_OR_RETURN(factory.root, LoadCertificateFile(FactoryFiles::RootCert(dir)),
                          "cannot load the factory's root CA");
  IDEVID_ASSIGN_OR_RETURN(factory.issuing, LoadCertificateFile(FactoryFiles::IssuingCert(dir)),
                          "cannot load the factory's issuing CA");
  if (!factory.pkcs11_uri.empty()) {
    IDEVID_TRY(LoadTokenKey(factory, access), "cannot load the factory's issuing CA key from {}",
               QuotedDisplayText(factory.pkcs11_uri));
    return factory;
  }
  IDEVID_ASSIGN_OR_RETURN(factory.issuing_key, LoadPrivateKeyPem(FactoryFiles::IssuingKey(dir)),
                          "cannot load the factory's issuing CA");
  return factory;
}

Result<TrustBundle> LoadTrustBundle(const std::filesystem::path& path) {
  IDEVID_ASSIGN_OR_RETURN(std::vector<ossl::Cert> certs, LoadCertificateBundle(path),
                          "cannot load the trust bundle");
  TrustBundle bundle;
  for (auto& cert : certs) {
    bool self_signed = X509_check_issued(cert.get(), cert.get()) == X509_V_OK;
    (self_signed ? bundle.anchors : bundle.intermediates).push_back(std::move(cert));
  }
  if (bundle.anchors.empty()) {
    return ConfigError(ConfigCode::kMissing,
                       fmt::format("{} holds no self-signed (root) certificate to trust; give the "
                                   "factory's factory-ca.pem",
                                   path.string()));
  }
  return bundle;
}

}  // namespace idevid
