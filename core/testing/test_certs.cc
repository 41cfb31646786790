#include "core/testing/test_certs.h"

#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include <stdexcept>

namespace idevid::testing {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what);
}

}  // namespace

ossl::PKey GenerateEcKey() {
  ossl::PKey key(EVP_EC_gen(SN_X9_62_prime256v1));
  Check(key != nullptr, "EC key generation failed");
  return key;
}

ossl::Cert MakeSelfSigned(const TestCertSpec& spec, EVP_PKEY& key) {
  ossl::Cert cert(X509_new());
  Check(cert && X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_new");
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 0x5e21);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& [field, value] : spec.subject) {
    Check(X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) == 1,
          "subject attribute");
  }
  Check(X509_set_issuer_name(cert.get(), name) == 1, "issuer");
  Check(X509_set_pubkey(cert.get(), &key) == 1, "public key");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [ext_name, value] : spec.extensions) {
    X509_EXTENSION* ext = X509V3_EXT_conf(nullptr, &ctx, ext_name.c_str(), value.c_str());
    Check(ext != nullptr, "extension");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  Check(X509_sign(cert.get(), &key, EVP_sha256()) > 0, "signing");
  return cert;
}

}  // namespace idevid::testing
