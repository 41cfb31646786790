#include "provisioning/file_identity.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/file_io.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "provisioning/unit_ledger.h"

namespace idevid {
namespace {

Result<void> RefuseExisting(const FileIdentityFiles& files) {
  for (const auto* path : {&files.certificate, &files.chain, &files.key}) {
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::symlink_status(*path, ec))) {
      return UsageError(UsageCode::kWrongState, fmt::format("{} already exists; pass --force to replace it",
                                                            QuotedDisplayText(path->string())));
    }
  }
  return {};
}

}  // namespace

Result<FileIdentity> IssueFileIdentity(const Factory& factory, const FileIdentityRequest& request) {
  IDEVID_TRY(ValidateIdentityField("serial number", request.serial));
  IDEVID_TRY(ValidateIdentityField("model", request.model));
  if (request.hw_serial && request.hw_serial->empty()) {
    return UsageError(UsageCode::kInvalidArgument,
                      "the hardware serial number (hwSerialNum) must not be empty");
  }
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey key, GenerateKey(request.algorithm), "unit {}",
                          QuotedDisplayText(request.serial));
  return IssueFileIdentity(factory, request, std::move(key));
}

Result<FileIdentity> IssueFileIdentity(const Factory& factory, const FileIdentityRequest& request,
                                       ossl::PKey key) {
  IDEVID_TRY(ValidateIdentityField("serial number", request.serial));
  IDEVID_TRY(ValidateIdentityField("model", request.model));
  const std::string unit = QuotedDisplayText(request.serial);
  // Without a TPM there is no EK to derive hwSerialNum from; the key's own public key stands in,
  // digested as HardwareSerialFromEk digests the EK's.
  IDEVID_ASSIGN_OR_RETURN(
      Bytes hw_serial,
      request.hw_serial ? Result<Bytes>(*request.hw_serial) : HardwareSerialFromPublicKey(*key), "unit {}",
      unit);
  IDEVID_ASSIGN_OR_RETURN(
      CertificateSpec spec,
      IdevidCertificateSpec({request.serial, request.model, factory.manufacturer, hw_serial}), "unit {}",
      unit);
  // The TCG certificate policies (2.23.133.11.1.x) say that the key lives in a TPM; a key in a
  // file does not, so its certificate makes no such claim.
  std::erase_if(spec.extensions, [](const ConfExtension& e) { return e.name == "certificatePolicies"; });
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert cert,
                          IssueCertificate(spec, *key, factory.issuing.get(), *factory.issuing_key),
                          "cannot issue the certificate of unit {}", unit);
  IDEVID_ASSIGN_OR_RETURN(std::string fingerprint, Sha256Fingerprint(*cert), "unit {}", unit);
  return FileIdentity{std::move(cert), std::move(key), std::move(hw_serial), std::move(fingerprint)};
}

FileIdentityFiles FileIdentityFiles::ForPrefix(const std::string& prefix) {
  return {prefix + ".pem", prefix + "-chain.pem", prefix + ".key"};
}

Result<void> WriteFileIdentity(const FileIdentity& identity, const Factory& factory,
                               const FileIdentityFiles& files, bool force) {
  if (!force) {
    IDEVID_TRY(RefuseExisting(files));
  }
  IDEVID_ASSIGN_OR_RETURN(std::string leaf, CertificatePem(*identity.certificate), "unit certificate");
  IDEVID_ASSIGN_OR_RETURN(std::string issuing, CertificatePem(*factory.issuing), "issuing CA certificate");
  // The key first: a certificate file never names a key that is not there.
  IDEVID_TRY(WritePrivateKeyPem(files.key, *identity.key), "unit key");
  IDEVID_TRY(WriteFileAtomic(files.certificate, leaf, 0644), "unit certificate");
  // RFC 8446 4.4.2: the sender's certificate first, then the one that certifies it.
  return WriteFileAtomic(files.chain, leaf + issuing, 0644);
}

namespace {

// Issues, records and writes the identity of a reservation; sets `recorded` once the ledger holds
// the certificate.
Result<LedgerAnswer<FileIdentity>> IssueRecordWrite(const Factory& factory,
                                                    const FileIdentityRequest& request,
                                                    const FileIdentityFiles& files, bool force,
                                                    Ledger& ledger, const ReserveRequest& reserve,
                                                    ossl::PKey key, bool& recorded) {
  IDEVID_ASSIGN_OR_RETURN(FileIdentity identity, IssueFileIdentity(factory, request, std::move(key)));
  IDEVID_ASSIGN_OR_RETURN(IssuedRequest issued, IssuedRequestFor(reserve, *identity.certificate));
  IDEVID_ASSIGN_OR_RETURN(auto row, ledger.RecordIssued(issued),
                          "recording the certificate of {} in the ledger {}",
                          QuotedDisplayText(request.serial), ledger.location());
  if (auto* refused = std::get_if<LedgerRefusal>(&row)) return *refused;
  recorded = true;
  IDEVID_TRY(WriteFileIdentity(identity, factory, files, force));
  return identity;
}

}  // namespace

Result<LedgerAnswer<FileIdentity>> IssueRecordedFileIdentity(const Factory& factory,
                                                             const FileIdentityRequest& request,
                                                             const FileIdentityFiles& files, bool force,
                                                             Ledger& ledger, const std::string& station,
                                                             const nlohmann::json& record) {
  IDEVID_TRY(ValidateIdentityField("serial number", request.serial));
  IDEVID_TRY(ValidateIdentityField("model", request.model));
  if (!force) IDEVID_TRY(RefuseExisting(files));
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey key, GenerateKey(request.algorithm), "unit {}",
                          QuotedDisplayText(request.serial));
  IDEVID_ASSIGN_OR_RETURN(std::string key_sha256, PublicKeySha256(*key), "unit {}",
                          QuotedDisplayText(request.serial));
  ReserveRequest reserve{request.serial, request.model, station, key_sha256};
  IDEVID_ASSIGN_OR_RETURN(auto reserved, ledger.Reserve(reserve), "reserving serial {} in the ledger {}",
                          QuotedDisplayText(request.serial), ledger.location());
  if (auto* refused = std::get_if<LedgerRefusal>(&reserved)) return *refused;
  bool recorded = false;
  auto issued = IssueRecordWrite(factory, request, files, force, ledger, reserve, std::move(key), recorded);
  if (!issued || std::holds_alternative<LedgerRefusal>(*issued)) {
    if (!recorded) (void)ledger.Release(request.serial, key_sha256);
    return issued;
  }
  auto& identity = std::get<FileIdentity>(*issued);
  // The line check of a file identity: the key written is the certificate's.
  bool matches = X509_check_private_key(identity.certificate.get(), identity.key.get()) == 1;
  ERR_clear_error();
  IDEVID_ASSIGN_OR_RETURN(auto committed,
                          ledger.Commit({.serial = request.serial,
                                         .ek_sha256 = key_sha256,
                                         .station = station,
                                         .line_check = matches ? "PASS" : "FAIL",
                                         .record = record}),
                          "committing {} in the ledger {}", QuotedDisplayText(request.serial),
                          ledger.location());
  if (auto* refused = std::get_if<LedgerRefusal>(&committed)) return *refused;
  return issued;
}

}  // namespace idevid
