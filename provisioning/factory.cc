#include "provisioning/factory.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "core/ledger.h"

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

Result<void> WriteCert(const std::filesystem::path& path, const X509& cert) {
  IDEVID_ASSIGN_OR_RETURN(std::string pem, CertificatePem(cert));
  return WriteFileAtomic(path, pem, 0644);
}

Result<void> WriteFactory(const FactoryOptions& options, const ossl::PKey& root_key, const ossl::Cert& root,
                          const ossl::PKey& issuing_key, const ossl::Cert& issuing) {
  const auto& dir = options.dir;
  IDEVID_TRY(WritePrivateKeyPem(FactoryFiles::RootKey(dir), *root_key), "root CA key");
  IDEVID_TRY(WritePrivateKeyPem(FactoryFiles::IssuingKey(dir), *issuing_key), "issuing CA key");
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
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey root_key, GenerateKey(options.algorithm), "root CA key");
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey issuing_key, GenerateKey(options.algorithm), "issuing CA key");
  IDEVID_ASSIGN_OR_RETURN(
      ossl::Cert root,
      MakeCa(options.manufacturer, options.manufacturer + " Root CA", 1, *root_key, nullptr, *root_key),
      "cannot issue the root CA certificate");
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert issuing,
                          MakeCa(options.manufacturer, options.manufacturer + " IDevID Issuing CA", 0,
                                 *issuing_key, root.get(), *root_key),
                          "cannot issue the issuing CA certificate");
  IDEVID_TRY(WriteFactory(options, root_key, root, issuing_key, issuing),
             "cannot write the factory CA into {}", options.dir.string());
  return LoadFactory(options.dir);
}

Result<Factory> LoadFactory(const std::filesystem::path& dir) {
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
  } catch (const nlohmann::json::exception& e) {
    return ConfigError(ConfigCode::kSyntax, fmt::format("{} is not a factory record: {}",
                                                        FactoryFiles::Record(dir).string(), e.what()));
  }
  IDEVID_ASSIGN_OR_RETURN(factory.root, LoadCertificateFile(FactoryFiles::RootCert(dir)),
                          "cannot load the factory's root CA");
  IDEVID_ASSIGN_OR_RETURN(factory.issuing, LoadCertificateFile(FactoryFiles::IssuingCert(dir)),
                          "cannot load the factory's issuing CA");
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
