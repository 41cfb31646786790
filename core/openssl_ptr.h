// Owners for OpenSSL objects, declared once here for every OpenSSL type the project holds (as
// BoringSSL's UniquePtr): ossl::UniquePtr<X509> frees with X509_free, whatever the free
// function's signature. Nothing above core/ declares its own deleter or alias.
#pragma once

#include <memory>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/conf.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace idevid::ossl {

// FreeFunction<T>::Free(T*) releases a T; one specialization per type, below.
template <typename T>
struct FreeFunction;

// IDEVID_OSSL_FREE(type, statement freeing p): the specialization for `type`.
#define IDEVID_OSSL_FREE(type, free_call)    \
  template <>                                \
  struct FreeFunction<type> {                \
    static void Free(type* p) { free_call; } \
  }

IDEVID_OSSL_FREE(BIO, BIO_free_all(p));
IDEVID_OSSL_FREE(BIGNUM, BN_free(p));
IDEVID_OSSL_FREE(ECDSA_SIG, ECDSA_SIG_free(p));
IDEVID_OSSL_FREE(EVP_PKEY, EVP_PKEY_free(p));
IDEVID_OSSL_FREE(EVP_PKEY_CTX, EVP_PKEY_CTX_free(p));
IDEVID_OSSL_FREE(EVP_MD, EVP_MD_free(p));
IDEVID_OSSL_FREE(EVP_MD_CTX, EVP_MD_CTX_free(p));
IDEVID_OSSL_FREE(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free(p));
IDEVID_OSSL_FREE(EVP_KDF, EVP_KDF_free(p));
IDEVID_OSSL_FREE(EVP_KDF_CTX, EVP_KDF_CTX_free(p));
IDEVID_OSSL_FREE(OSSL_PARAM_BLD, OSSL_PARAM_BLD_free(p));
IDEVID_OSSL_FREE(OSSL_PARAM, OSSL_PARAM_free(p));
IDEVID_OSSL_FREE(OSSL_LIB_CTX, OSSL_LIB_CTX_free(p));
IDEVID_OSSL_FREE(OSSL_PROVIDER, (void)OSSL_PROVIDER_unload(p));
IDEVID_OSSL_FREE(OSSL_STORE_CTX, (void)OSSL_STORE_close(p));
IDEVID_OSSL_FREE(OSSL_STORE_INFO, OSSL_STORE_INFO_free(p));
IDEVID_OSSL_FREE(CONF, NCONF_free(p));
IDEVID_OSSL_FREE(X509, X509_free(p));
IDEVID_OSSL_FREE(X509_REQ, X509_REQ_free(p));
IDEVID_OSSL_FREE(X509_CRL, X509_CRL_free(p));
IDEVID_OSSL_FREE(X509_REVOKED, X509_REVOKED_free(p));
IDEVID_OSSL_FREE(X509_SIG, X509_SIG_free(p));
IDEVID_OSSL_FREE(X509_ALGOR, X509_ALGOR_free(p));
IDEVID_OSSL_FREE(X509_EXTENSION, X509_EXTENSION_free(p));
IDEVID_OSSL_FREE(X509_STORE, X509_STORE_free(p));
IDEVID_OSSL_FREE(X509_STORE_CTX, X509_STORE_CTX_free(p));
IDEVID_OSSL_FREE(X509_NAME, X509_NAME_free(p));
IDEVID_OSSL_FREE(STACK_OF(X509), sk_X509_pop_free(p, X509_free));
IDEVID_OSSL_FREE(ASN1_OBJECT, ASN1_OBJECT_free(p));
IDEVID_OSSL_FREE(ASN1_STRING, ASN1_STRING_free(p));  // also ASN1_OCTET/BIT/UTF8_STRING and ASN1_TIME
IDEVID_OSSL_FREE(ASN1_TYPE, ASN1_TYPE_free(p));
IDEVID_OSSL_FREE(GENERAL_NAME, GENERAL_NAME_free(p));
IDEVID_OSSL_FREE(GENERAL_NAMES, GENERAL_NAMES_free(p));
IDEVID_OSSL_FREE(EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free(p));
IDEVID_OSSL_FREE(AUTHORITY_KEYID, AUTHORITY_KEYID_free(p));
IDEVID_OSSL_FREE(CERTIFICATEPOLICIES, CERTIFICATEPOLICIES_free(p));
IDEVID_OSSL_FREE(SSL_CTX, SSL_CTX_free(p));
IDEVID_OSSL_FREE(SSL, SSL_free(p));
IDEVID_OSSL_FREE(SSL_SESSION, SSL_SESSION_free(p));

// The deleter of every UniquePtr: dispatches on the pointee's type.
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    if (p != nullptr) FreeFunction<T>::Free(p);
  }
};

template <typename T>
using UniquePtr = std::unique_ptr<T, Deleter>;

using Bio = UniquePtr<BIO>;
using Bignum = UniquePtr<BIGNUM>;
using EcdsaSig = UniquePtr<ECDSA_SIG>;
using PKey = UniquePtr<EVP_PKEY>;
using PKeyCtx = UniquePtr<EVP_PKEY_CTX>;
using MdCtx = UniquePtr<EVP_MD_CTX>;
using ParamBld = UniquePtr<OSSL_PARAM_BLD>;
using Params = UniquePtr<OSSL_PARAM>;
using Cert = UniquePtr<X509>;
using Crl = UniquePtr<X509_CRL>;
using CertStack = UniquePtr<STACK_OF(X509)>;
using Asn1Object = UniquePtr<ASN1_OBJECT>;
using GeneralNames = UniquePtr<GENERAL_NAMES>;
using SslCtx = UniquePtr<SSL_CTX>;
using Ssl = UniquePtr<SSL>;
using SslSession = UniquePtr<SSL_SESSION>;

}  // namespace idevid::ossl
