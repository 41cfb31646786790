#include "core/x509_build.h"

#include <openssl/bn.h>
#include <openssl/conf.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>

#include <fmt/format.h>

#include "core/file_io.h"
#include "core/openssl_error.h"
#include "core/signer_provider.h"

namespace idevid {
namespace {

Result<void> SetRandomSerial(X509& cert) {
  ossl::Bignum serial(BN_new());
  // 127 random bits with the top bit clear: positive, at most 16 octets (RFC 5280 4.1.2.2).
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(&cert)) == nullptr) {
    return FailOpenSsl("cannot make a certificate serial number");
  }
  return {};
}

Result<void> AddNameEntries(X509_NAME& name, const std::vector<NameEntry>& entries) {
  for (const auto& [field, value] : entries) {
    if (X509_NAME_add_entry_by_txt(&name, field.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      return FailOpenSsl(fmt::format("cannot set name attribute {}='{}'", field, value));
    }
  }
  return {};
}

Result<void> SetTime(ASN1_TIME* time, const std::string& text) {
  if (text.empty()) {
    if (X509_gmtime_adj(time, 0) == nullptr) return FailOpenSsl("cannot set the current time");
    return {};
  }
  // ASN1_TIME_set_string_X509 picks UTCTime before 2050 and GeneralizedTime after, as RFC 5280
  // 4.1.2.5 requires (99991231235959Z stays a GeneralizedTime).
  if (ASN1_TIME_set_string_X509(time, text.c_str()) != 1) {
    return FailOpenSsl(fmt::format("'{}' is not a valid certificate time (YYYYMMDDHHMMSSZ)", text));
  }
  return {};
}

Result<void> AddConfExtensions(X509& cert, const X509* issuer, const std::vector<ConfExtension>& extensions) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, const_cast<X509*>(issuer ? issuer : &cert), &cert, nullptr, nullptr, 0);
  // Some extensions (certificatePolicies) insist on a configuration database, even an empty one.
  ossl::UniquePtr<CONF> db(NCONF_new(nullptr));
  X509V3_set_nconf(&ctx, db.get());
  for (const auto& ext : extensions) {
    ossl::UniquePtr<X509_EXTENSION> made(
        X509V3_EXT_nconf(db.get(), &ctx, ext.name.c_str(), ext.value.c_str()));
    if (!made || X509_add_ext(&cert, made.get(), -1) != 1) {
      return FailOpenSsl(fmt::format("cannot add extension {} = {}", ext.name, ext.value));
    }
  }
  return {};
}

Result<void> AddDerExtensions(X509& cert, const std::vector<DerExtension>& extensions) {
  for (const auto& ext : extensions) {
    ossl::Asn1Object oid(OBJ_txt2obj(ext.oid.c_str(), 1));
    ossl::UniquePtr<ASN1_OCTET_STRING> value(ASN1_OCTET_STRING_new());
    if (!oid || !value ||
        ASN1_OCTET_STRING_set(value.get(), ext.value.data(), static_cast<int>(ext.value.size())) != 1) {
      return FailOpenSsl(fmt::format("cannot encode extension {}", ext.oid));
    }
    ossl::UniquePtr<X509_EXTENSION> made(
        X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), ext.critical ? 1 : 0, value.get()));
    if (!made || X509_add_ext(&cert, made.get(), -1) != 1) {
      return FailOpenSsl(fmt::format("cannot add extension {}", ext.oid));
    }
  }
  return {};
}

// The signature algorithm identifier for SHA-256 with the key's type (RFC 5758 3.2, RFC 4055 5).
Result<void> SetSha256Algorithm(X509_ALGOR& algorithm, const EVP_PKEY& key) {
  if (EVP_PKEY_is_a(&key, "EC")) {
    X509_ALGOR_set0(&algorithm, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, nullptr);
  } else if (EVP_PKEY_is_a(&key, "RSA")) {
    X509_ALGOR_set0(&algorithm, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL, nullptr);
  } else {
    return UsageError(UsageCode::kUnsupported, "only EC and RSA keys can sign a request");
  }
  return {};
}

}  // namespace

Result<ossl::PKey> GenerateKey(KeyAlgorithm alg) {
  ossl::PKey key(alg == KeyAlgorithm::kEccP256 ? EVP_EC_gen(SN_X9_62_prime256v1) : EVP_RSA_gen(2048));
  if (!key) return FailOpenSsl(fmt::format("cannot generate a {} key", KeyAlgorithmName(alg)));
  return key;
}

Result<void> WritePrivateKeyPem(const std::filesystem::path& path, const EVP_PKEY& key) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return FailOpenSsl("cannot PEM-encode the private key");
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return WriteFileAtomic(path, std::string_view(data, static_cast<std::size_t>(length)), 0600);
}

Result<ossl::PKey> LoadPrivateKeyPem(const std::filesystem::path& path) {
  IDEVID_ASSIGN_OR_RETURN(std::string text, ReadFileText(path), "cannot load the private key");
  ossl::Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  ossl::PKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return FailOpenSsl(fmt::format("{} holds no readable PEM private key", path.string()));
  return key;
}

Result<ossl::Cert> IssueCertificate(const CertificateSpec& spec, EVP_PKEY& subject_key, const X509* issuer,
                                    EVP_PKEY& issuer_key) {
  ossl::Cert cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return FailOpenSsl("cannot create a certificate");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  IDEVID_TRY(SetRandomSerial(*cert));
  IDEVID_TRY(AddNameEntries(*subject, spec.subject), "subject");
  IDEVID_TRY(SetTime(X509_getm_notBefore(cert.get()), spec.not_before), "notBefore");
  IDEVID_TRY(SetTime(X509_getm_notAfter(cert.get()), spec.not_after), "notAfter");
  const X509_NAME* issuer_name = issuer ? X509_get_subject_name(issuer) : subject;
  if (X509_set_issuer_name(cert.get(), issuer_name) != 1 || X509_set_pubkey(cert.get(), &subject_key) != 1) {
    return FailOpenSsl("cannot set issuer or public key");
  }
  IDEVID_TRY(AddConfExtensions(*cert, issuer, spec.extensions));
  IDEVID_TRY(AddDerExtensions(*cert, spec.der_extensions));
  (void)TakeSignerFailure();  // a stale one is not this signature's
  if (X509_sign(cert.get(), &issuer_key, EVP_sha256()) <= 0) {
    // A key of our signer provider (a TPM, a token): the device's answer, not OpenSSL's summary.
    if (auto failure = TakeSignerFailure()) {
      ClearOpenSslErrors();
      return Fail(std::move(failure)->WithContext("cannot sign the certificate"));
    }
    return FailOpenSsl("cannot sign the certificate");
  }
  return cert;
}

Result<ossl::UniquePtr<X509_REQ>> MakeSignedRequest(const std::vector<NameEntry>& subject,
                                                    EVP_PKEY& public_key, const TbsSigner& sign) {
  ossl::UniquePtr<X509_REQ> req(X509_REQ_new());
  if (!req || X509_REQ_set_pubkey(req.get(), &public_key) != 1) {
    return FailOpenSsl("cannot create a certification request");
  }
  IDEVID_TRY(AddNameEntries(*X509_REQ_get_subject_name(req.get()), subject), "request subject");
  ossl::UniquePtr<X509_ALGOR> algorithm(X509_ALGOR_new());
  if (!algorithm) return FailOpenSsl("cannot allocate an algorithm identifier");
  IDEVID_TRY(SetSha256Algorithm(*algorithm, public_key));
  if (X509_REQ_set1_signature_algo(req.get(), algorithm.get()) != 1) {
    return FailOpenSsl("cannot set the request's signature algorithm");
  }
  unsigned char* tbs = nullptr;
  int length = i2d_re_X509_REQ_tbs(req.get(), &tbs);
  IDEVID_ASSIGN_OR_RETURN(Bytes to_sign, AdoptDer(tbs, length, "the request for signing"));
  IDEVID_ASSIGN_OR_RETURN(Bytes signature, sign(to_sign), "signing the certification request");
  ASN1_BIT_STRING* bits = ASN1_BIT_STRING_new();
  if (bits == nullptr ||
      ASN1_BIT_STRING_set(bits, signature.data(), static_cast<int>(signature.size())) != 1) {
    ASN1_BIT_STRING_free(bits);
    return FailOpenSsl("cannot store the request signature");
  }
  // All bits used: no trailing-zero trimming of the signature (X.690 8.6.2).
  bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
  bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
  X509_REQ_set0_signature(req.get(), bits);
  if (X509_REQ_verify(req.get(), &public_key) != 1) {
    ClearOpenSslErrors();
    return Fail(ErrorDomain::kVerify, X509_V_ERR_CERT_SIGNATURE_FAILURE,
                "the certification request's signature does not verify with its public key: the "
                "signer does not hold the private key");
  }
  return req;
}

}  // namespace idevid
