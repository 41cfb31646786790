#include "core/x509.h"

#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>

#include "core/file_io.h"
#include "core/openssl_error.h"

namespace idevid {
namespace {

bool LooksLikePem(std::span<const std::uint8_t> bytes) {
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return text.find("-----BEGIN") != std::string_view::npos;
}

Result<ossl::Asn1Object> ParseOid(std::string_view oid) {
  ossl::Asn1Object obj(OBJ_txt2obj(std::string(oid).c_str(), 0));
  if (!obj) {
    ClearOpenSslErrors();
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("'{}' is not an OID or a known attribute name", oid));
  }
  return obj;
}

Result<std::vector<std::string>> NameAttribute(const X509_NAME* name, std::string_view oid) {
  IDEVID_ASSIGN_OR_RETURN(ossl::Asn1Object obj, ParseOid(oid));
  std::vector<std::string> values;
  for (int i = X509_NAME_get_index_by_OBJ(name, obj.get(), -1); i >= 0;
       i = X509_NAME_get_index_by_OBJ(name, obj.get(), i)) {
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char* utf8 = nullptr;
    int length = ASN1_STRING_to_UTF8(&utf8, data);
    if (length < 0) return FailOpenSsl(fmt::format("attribute {} is not a valid string", oid));
    values.emplace_back(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length));
    OPENSSL_free(utf8);
  }
  return values;
}

std::string NameLine(const X509_NAME* name) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(length));
}

}  // namespace

Result<ossl::Cert> ParseCertificate(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return ConfigError(ConfigCode::kMissing, "no certificate: the input is empty");
  if (LooksLikePem(bytes)) {
    ossl::Bio bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
    ossl::Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) return FailOpenSsl("cannot parse the PEM certificate");
    return cert;
  }
  const unsigned char* p = bytes.data();
  ossl::Cert cert(d2i_X509(nullptr, &p, static_cast<long>(bytes.size())));
  if (!cert) return FailOpenSsl("cannot parse the DER certificate");
  if (p != bytes.data() + bytes.size()) {
    return ConfigError(ConfigCode::kSyntax,
                       fmt::format("{} bytes follow the DER certificate", bytes.data() + bytes.size() - p));
  }
  return cert;
}

Result<ossl::Cert> LoadCertificateFile(const std::filesystem::path& path) {
  IDEVID_ASSIGN_OR_RETURN(auto bytes, ReadFileBytes(path));
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert cert, ParseCertificate(bytes), "{}", path.string());
  return cert;
}

Result<std::vector<ossl::Cert>> LoadCertificateBundle(const std::filesystem::path& path) {
  IDEVID_ASSIGN_OR_RETURN(auto bytes, ReadFileBytes(path));
  ossl::Bio bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  std::vector<ossl::Cert> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  ClearOpenSslErrors();  // the end of the bundle leaves a "no start line" error
  if (certs.empty()) {
    return ConfigError(ConfigCode::kFile, fmt::format("{}: no PEM certificate found", path.string()));
  }
  return certs;
}

Result<Bytes> CertificateDer(const X509& cert) {
  unsigned char* der = nullptr;
  int length = i2d_X509(&cert, &der);
  return AdoptDer(der, length, "the certificate");
}

Result<std::string> CertificatePem(const X509& cert) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), &cert) != 1) {
    return FailOpenSsl("cannot PEM-encode the certificate");
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(length));
}

std::string Hex(std::span<const std::uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

Result<std::string> Sha256Fingerprint(const X509& cert) {
  IDEVID_ASSIGN_OR_RETURN(Bytes der, CertificateDer(cert), "cannot take the fingerprint");
  std::uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(der.data(), der.size(), digest);
  return Hex(digest);
}

Result<std::vector<std::string>> SubjectAttribute(const X509& cert, std::string_view oid) {
  return NameAttribute(X509_get_subject_name(&cert), oid);
}

Result<std::vector<std::string>> IssuerAttribute(const X509& cert, std::string_view oid) {
  return NameAttribute(X509_get_issuer_name(&cert), oid);
}

std::string SubjectLine(const X509& cert) { return NameLine(X509_get_subject_name(&cert)); }
std::string IssuerLine(const X509& cert) { return NameLine(X509_get_issuer_name(&cert)); }

std::vector<std::string> CertificatePolicyOids(const X509& cert) {
  ossl::UniquePtr<CERTIFICATEPOLICIES> policies(
      static_cast<CERTIFICATEPOLICIES*>(X509_get_ext_d2i(&cert, NID_certificate_policies, nullptr, nullptr)));
  std::vector<std::string> oids;
  for (int i = 0; policies && i < sk_POLICYINFO_num(policies.get()); ++i) {
    char oid[128];
    OBJ_obj2txt(oid, sizeof oid, sk_POLICYINFO_value(policies.get(), i)->policyid, 1);
    oids.emplace_back(oid);
  }
  return oids;
}

Result<std::optional<Extension>> FindExtension(const X509& cert, std::string_view oid) {
  IDEVID_ASSIGN_OR_RETURN(ossl::Asn1Object obj, ParseOid(oid));
  int index = X509_get_ext_by_OBJ(&cert, obj.get(), -1);
  if (index < 0) return std::optional<Extension>();
  if (X509_get_ext_by_OBJ(&cert, obj.get(), index) >= 0) {
    // RFC 5280 4.2: a certificate must not include more than one instance of an extension.
    return ConfigError(ConfigCode::kBadValue,
                       fmt::format("the certificate carries extension {} more than once", oid));
  }
  X509_EXTENSION* ext = X509_get_ext(&cert, index);
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
  const unsigned char* bytes = ASN1_STRING_get0_data(data);
  return std::optional<Extension>(
      Extension{X509_EXTENSION_get_critical(ext) == 1, Bytes(bytes, bytes + ASN1_STRING_length(data))});
}

Result<Bytes> AdoptDer(unsigned char* der, int length, std::string_view what) {
  if (length <= 0 || der == nullptr) return FailOpenSsl(fmt::format("cannot encode {}", what));
  Bytes out(der, der + length);
  OPENSSL_free(der);
  return out;
}

Result<Bytes> PublicKeyDer(const EVP_PKEY& key) {
  unsigned char* der = nullptr;
  int length = i2d_PUBKEY(&key, &der);
  return AdoptDer(der, length, "the public key");
}

Result<ossl::PKey> PublicKeyFromParams(const char* type, OSSL_PARAM_BLD* bld, std::string_view source) {
  ossl::Params params(OSSL_PARAM_BLD_to_param(bld));
  ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return FailOpenSsl(fmt::format("cannot build an OpenSSL {} public key from {}", type, source));
  }
  return ossl::PKey(raw);
}

Result<ossl::PKey> ParsePublicKeyPem(std::string_view pem) {
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::PKey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return FailOpenSsl("cannot parse the PEM public key");
  return key;
}

}  // namespace idevid
