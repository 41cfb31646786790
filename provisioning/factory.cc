#include "provisioning/factory.h"

#include <nlohmann/json.hpp>
#include <fmt/format.h>

#include "core/file_io.h"
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
  if (has_issuer) ext.push_back({"authorityKeyIdentifier", "keyid:always"});     // RFC 5280 4.2.1.1
  return ext;
}

Result<ossl::Cert> MakeCa(const std::string& manufacturer, const std::string& cn, int pathlen,
                          EVP_PKEY& key, const X509* issuer, EVP_PKEY& issuer_key) {
  return IssueCertificate({.subject = {{"O", manufacturer}, {"CN", cn}},
                           .not_after = kCaNotAfter,
                           .extensions = CaExtensions(pathlen, issuer != nullptr)},
                          key, issuer, issuer_key);
}

Result<void> WriteCert(const std::filesystem::path& path, const X509& cert) {
  auto pem = CertificatePem(cert);
  if (!pem) return Fail(pem.error());
  return WriteFileAtomic(path, *pem, 0644);
}

Result<void> WriteFactory(const FactoryOptions& options, const ossl::PKey& root_key,
                          const ossl::Cert& root, const ossl::PKey& issuing_key,
                          const ossl::Cert& issuing) {
  const auto& dir = options.dir;
  Result<void> step = WritePrivateKeyPem(FactoryFiles::RootKey(dir), *root_key);
  if (step) step = WritePrivateKeyPem(FactoryFiles::IssuingKey(dir), *issuing_key);
  if (step) step = WriteCert(FactoryFiles::RootCert(dir), *root);
  if (step) step = WriteCert(FactoryFiles::IssuingCert(dir), *issuing);
  if (!step) return step;
  std::string chain = *CertificatePem(*issuing) + *CertificatePem(*root);
  step = WriteFileAtomic(FactoryFiles::Chain(dir), chain, 0644);
  if (!step) return step;
  nlohmann::json record = {{"version", kFactoryRecordVersion},
                           {"manufacturer", options.manufacturer},
                           {"key_algorithm", KeyAlgorithmName(options.algorithm)},
                           {"root_fingerprint_sha256", *Sha256Fingerprint(*root)},
                           {"issuing_fingerprint_sha256", *Sha256Fingerprint(*issuing)}};
  // Written last: its presence means the factory is complete.
  return WriteFileAtomic(FactoryFiles::Record(dir), record.dump(2) + "\n", 0644);
}

}  // namespace

std::filesystem::path FactoryFiles::Record(const std::filesystem::path& d) { return d / "factory.json"; }
std::filesystem::path FactoryFiles::RootCert(const std::filesystem::path& d) { return d / "root-ca.pem"; }
std::filesystem::path FactoryFiles::RootKey(const std::filesystem::path& d) { return d / "root-ca.key"; }
std::filesystem::path FactoryFiles::IssuingCert(const std::filesystem::path& d) { return d / "issuing-ca.pem"; }
std::filesystem::path FactoryFiles::IssuingKey(const std::filesystem::path& d) { return d / "issuing-ca.key"; }
std::filesystem::path FactoryFiles::Chain(const std::filesystem::path& d) { return d / "factory-ca.pem"; }

Result<Factory> InitFactory(const FactoryOptions& options) {
  if (std::filesystem::exists(FactoryFiles::Record(options.dir)) && !options.force) {
    return UsageError(fmt::format("{} already holds a factory CA; pass --force to replace it "
                                  "(units it provisioned will no longer verify)",
                                  options.dir.string()));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return ErrnoError(ec.value(), "cannot create " + options.dir.string());
  auto root_key = GenerateKey(options.algorithm);
  auto issuing_key = GenerateKey(options.algorithm);
  if (!root_key) return Fail(root_key.error());
  if (!issuing_key) return Fail(issuing_key.error());
  auto root = MakeCa(options.manufacturer, options.manufacturer + " Root CA", 1, **root_key,
                     nullptr, **root_key);
  if (!root) return Fail(root.error());
  auto issuing = MakeCa(options.manufacturer, options.manufacturer + " IDevID Issuing CA", 0,
                        **issuing_key, root->get(), **root_key);
  if (!issuing) return Fail(issuing.error());
  if (auto written = WriteFactory(options, *root_key, *root, *issuing_key, *issuing); !written) {
    return Fail(written.error());
  }
  return LoadFactory(options.dir);
}

Result<Factory> LoadFactory(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(FactoryFiles::Record(dir))) {
    return UsageError(fmt::format("{} holds no factory CA; create one with "
                                  "'idevid factory init --dir {}'",
                                  dir.string(), dir.string()));
  }
  auto text = ReadFileText(FactoryFiles::Record(dir));
  if (!text) return Fail(text.error());
  Factory factory;
  factory.dir = dir;
  try {
    auto record = nlohmann::json::parse(*text);
    factory.manufacturer = record.at("manufacturer").get<std::string>();
    auto alg = ParseKeyAlgorithm(record.at("key_algorithm").get<std::string>());
    if (!alg) return Fail(alg.error());
    factory.algorithm = *alg;
  } catch (const nlohmann::json::exception& e) {
    return ConfigError(fmt::format("{} is not a factory record: {}",
                                   FactoryFiles::Record(dir).string(), e.what()));
  }
  auto root = LoadCertificateFile(FactoryFiles::RootCert(dir));
  if (!root) return Fail(root.error());
  auto issuing = LoadCertificateFile(FactoryFiles::IssuingCert(dir));
  if (!issuing) return Fail(issuing.error());
  auto key = LoadPrivateKeyPem(FactoryFiles::IssuingKey(dir));
  if (!key) return Fail(key.error());
  factory.root = std::move(*root);
  factory.issuing = std::move(*issuing);
  factory.issuing_key = std::move(*key);
  return factory;
}

Result<TrustBundle> LoadTrustBundle(const std::filesystem::path& path) {
  auto certs = LoadCertificateBundle(path);
  if (!certs) return Fail(certs.error());
  TrustBundle bundle;
  for (auto& cert : *certs) {
    bool self_signed = X509_check_issued(cert.get(), cert.get()) == X509_V_OK;
    (self_signed ? bundle.anchors : bundle.intermediates).push_back(std::move(cert));
  }
  if (bundle.anchors.empty()) {
    return ConfigError(fmt::format("{} holds no self-signed (root) certificate to trust; give the "
                                   "factory's factory-ca.pem",
                                   path.string()));
  }
  return bundle;
}

}  // namespace idevid
