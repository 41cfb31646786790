// Owners for OpenSSL objects: std::unique_ptr with the matching free function.
#pragma once

#include <memory>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace idevid::ossl {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};

template <typename T, void (*Free)(T*)>
using Owner = std::unique_ptr<T, Deleter<T, Free>>;

inline void FreeBio(BIO* b) { BIO_free_all(b); }
inline void FreeAsn1Object(ASN1_OBJECT* o) { ASN1_OBJECT_free(o); }
inline void FreeStackOfX509(STACK_OF(X509)* s) { sk_X509_pop_free(s, X509_free); }
inline void FreeGeneralNames(GENERAL_NAMES* n) { GENERAL_NAMES_free(n); }

using Bio = Owner<BIO, FreeBio>;
using Bignum = Owner<BIGNUM, BN_free>;
using EcdsaSig = Owner<ECDSA_SIG, ECDSA_SIG_free>;
using PKey = Owner<EVP_PKEY, EVP_PKEY_free>;
using PKeyCtx = Owner<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using MdCtx = Owner<EVP_MD_CTX, EVP_MD_CTX_free>;
using ParamBld = Owner<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using Params = Owner<OSSL_PARAM, OSSL_PARAM_free>;
using Cert = Owner<X509, X509_free>;
using CertStack = Owner<STACK_OF(X509), FreeStackOfX509>;
using Asn1Object = Owner<ASN1_OBJECT, FreeAsn1Object>;
using GeneralNames = Owner<GENERAL_NAMES, FreeGeneralNames>;

}  // namespace idevid::ossl
