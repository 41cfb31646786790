#include "provisioning/file_identity.h"

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/file_io.h"
#include "core/x509.h"
#include "core/x509_build.h"

namespace idevid {
namespace {

Result<void> RefuseExisting(const FileIdentityFiles& files) {
  for (const auto* path : {&files.certificate, &files.chain, &files.key}) {
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::symlink_status(*path, ec))) {
      return UsageError(fmt::format("{} already exists; pass --force to replace it",
                                    QuotedDisplayText(path->string())));
    }
  }
  return {};
}

}  // namespace

Result<FileIdentity> IssueFileIdentity(const Factory& factory, const FileIdentityRequest& request) {
  Result<void> valid = ValidateIdentityField("serial number", request.serial);
  if (valid) valid = ValidateIdentityField("model", request.model);
  if (!valid) return Fail(valid.error());
  if (request.hw_serial && request.hw_serial->empty()) {
    return UsageError("the hardware serial number (hwSerialNum) must not be empty");
  }
  auto key = GenerateKey(request.algorithm);
  if (!key) return Fail(key.error());
  // Without a TPM there is no EK to derive hwSerialNum from; the key's own public key stands in,
  // digested as HardwareSerialFromEk digests the EK's.
  auto hw_serial = request.hw_serial ? Result<Bytes>(*request.hw_serial) : HardwareSerialFromPublicKey(**key);
  if (!hw_serial) return Fail(hw_serial.error());
  auto spec = IdevidCertificateSpec(
      {request.serial, request.model, factory.manufacturer, *hw_serial});
  if (!spec) return Fail(spec.error());
  // The TCG certificate policies (2.23.133.11.1.x) say that the key lives in a TPM; a key in a
  // file does not, so its certificate makes no such claim.
  std::erase_if(spec->extensions, [](const ConfExtension& e) { return e.name == "certificatePolicies"; });
  auto cert = IssueCertificate(*spec, **key, factory.issuing.get(), *factory.issuing_key);
  if (!cert) return Fail(cert.error());
  auto fingerprint = Sha256Fingerprint(**cert);
  if (!fingerprint) return Fail(fingerprint.error());
  return FileIdentity{std::move(*cert), std::move(*key), std::move(*hw_serial), *fingerprint};
}

FileIdentityFiles FileIdentityFiles::ForPrefix(const std::string& prefix) {
  return {prefix + ".pem", prefix + "-chain.pem", prefix + ".key"};
}

Result<void> WriteFileIdentity(const FileIdentity& identity, const Factory& factory,
                               const FileIdentityFiles& files, bool force) {
  if (!force) {
    if (auto refused = RefuseExisting(files); !refused) return refused;
  }
  auto leaf = CertificatePem(*identity.certificate);
  if (!leaf) return Fail(leaf.error());
  auto issuing = CertificatePem(*factory.issuing);
  if (!issuing) return Fail(issuing.error());
  // The key first: a certificate file never names a key that is not there.
  Result<void> step = WritePrivateKeyPem(files.key, *identity.key);
  if (step) step = WriteFileAtomic(files.certificate, *leaf, 0644);
  // RFC 8446 4.4.2: the sender's certificate first, then the one that certifies it.
  if (step) step = WriteFileAtomic(files.chain, *leaf + *issuing, 0644);
  return step;
}

}  // namespace idevid
