#include "device/pkid/node_local_store.h"

#include <openssl/err.h>
#include <openssl/x509err.h>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "core/openssl_error.h"
#include "core/tpm_context.h"
#include "core/tpm_keys.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "device/pkid/tpm_reachability.h"

namespace idevid {
namespace {

std::shared_ptr<X509> Share(ossl::Cert cert) { return {cert.release(), X509_free}; }

LoadStatus Loaded(const std::string& source, const WallClock& now) {
  return {true, now(), source, "", false};
}
LoadStatus NotLoaded(const std::string& source, const Error& error, const WallClock& now) {
  return {false, now(), source, error.message(), false};
}

Result<ossl::Cert> ReadIdevid(const IdevidLocation& location, const std::string& tcti) {
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm,
                          TpmContext::Open(tcti, {.command_timeout = std::chrono::seconds(10)}));
  IDEVID_ASSIGN_OR_RETURN(auto der, NvRead(tpm, location.nv_index));
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert cert, ParseCertificate(der), "NV {:#010x} does not hold a certificate",
                          location.nv_index);
  IDEVID_ASSIGN_OR_RETURN(auto pub, ReadPersistentPublic(tpm, location.key_handle));
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey key, PublicKeyFromTpm(pub.publicArea));
  const EVP_PKEY* cert_key = X509_get0_pubkey(cert.get());
  if (cert_key == nullptr) {
    ClearOpenSslErrors();
    return Fail(ErrorDomain::kOpenSsl, ERR_PACK(ERR_LIB_X509, 0, X509_R_UNABLE_TO_GET_CERTS_PUBLIC_KEY),
                fmt::format("the certificate in NV {:#010x} has a public key OpenSSL cannot decode",
                            location.nv_index));
  }
  auto tpm_der = PublicKeyDer(*key);
  auto cert_der = PublicKeyDer(*cert_key);
  if (!tpm_der || !cert_der || *tpm_der != *cert_der) {
    return Fail(ErrorDomain::kOpenSsl, ERR_PACK(ERR_LIB_X509, 0, X509_R_KEY_VALUES_MISMATCH),
                fmt::format("the key at {:#010x} does not match the certificate in NV {:#010x}",
                            location.key_handle, location.nv_index));
  }
  return cert;
}

Result<ossl::Cert> ReadFileCertificate(const LocalCertificate& local) {
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert cert, LoadCertificateFile(local.certificate));
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey key, LoadPrivateKeyPem(local.private_key));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ClearOpenSslErrors();
    return Fail(ErrorDomain::kOpenSsl, ERR_PACK(ERR_LIB_X509, 0, X509_R_KEY_VALUES_MISMATCH),
                fmt::format("the private key {} does not belong to the certificate {}", local.private_key,
                            local.certificate));
  }
  return cert;  // the key stays in its file; only its location is kept
}

StoreEntry LoadFileEntry(const LocalCertificate& local, const WallClock& now) {
  StoreEntry entry{local.id, nullptr, {false, 0, local.private_key}, local.ca_profile, {}};
  auto cert = ReadFileCertificate(local);
  entry.status = cert ? Loaded(local.certificate, now) : NotLoaded(local.certificate, cert.error(), now);
  if (cert) entry.certificate = Share(std::move(*cert));
  return entry;
}

CaProfileEntry LoadCaProfile(const CaProfile& profile, const WallClock& now) {
  CaProfileEntry entry{profile.name, {}, {}};
  auto bundle = LoadCertificateBundle(profile.certificate);
  if (!bundle) {
    entry.status = NotLoaded(profile.certificate, bundle.error(), now);
    return entry;
  }
  for (auto& cert : *bundle) entry.certificates.push_back(Share(std::move(cert)));
  entry.status = Loaded(profile.certificate, now);
  return entry;
}

}  // namespace

std::string KeyLocation::ToString() const {
  return in_tpm ? fmt::format("tpm {:#010x}", tpm_handle) : "file " + file;
}

std::string LoadStatus::ToString() const {
  std::string when =
      fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", fmt::gmtime(std::chrono::system_clock::to_time_t(at)));
  if (loaded) return fmt::format("loaded at {} from {}", when, source);
  return fmt::format("not loaded (at {} from {}): {}", when, source, error);
}

StoreEntry LoadIdevidEntry(const IdevidLocation& location, const std::string& tcti, const WallClock& now) {
  StoreEntry entry{kIdevidCertificateId, nullptr, {true, location.key_handle, ""}, "", {}};
  std::string source = fmt::format("NV 0x{:08X}", location.nv_index);
  auto cert = ReadIdevid(location, tcti);
  entry.status = cert ? Loaded(source, now) : NotLoaded(source, cert.error(), now);
  if (!cert && IsTpmUnreachable(cert.error())) {
    entry.status.error = TpmUnreachableReason(tcti, cert.error());
    entry.status.tpm_unreachable = true;
  }
  if (cert) entry.certificate = Share(std::move(*cert));
  return entry;
}

NodeLocalStore LoadNodeLocalStore(const DeviceConfig& config, const std::string& tcti, const WallClock& now) {
  NodeLocalStore store;
  store.entries[kIdevidCertificateId] = LoadIdevidEntry(config.idevid, tcti, now);
  for (const auto& [id, local] : config.local_certificates) {
    store.entries[id] = LoadFileEntry(local, now);
  }
  for (const auto& [name, profile] : config.ca_profiles) {
    store.ca_profiles[name] = LoadCaProfile(profile, now);
  }
  return store;
}

}  // namespace idevid
