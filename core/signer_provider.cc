#include "core/signer_provider.h"

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstdarg>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "core/openssl_error.h"

namespace idevid {
namespace {

constexpr const char* kSignerParam = "idevid-signer";
constexpr const char* kProperties = "provider=idevid-signer";

// Our reasons, as OpenSSL names them in its error queue ("idevid-signer::TPM2_Sign failed").
enum Reason : int {
  kReasonTpmSignFailed = 1,    // the TPM (or the way to it) did not sign
  kReasonSchemeRefused = 2,    // a signature the signer cannot make as asked (PSS salt)
  kReasonBufferTooSmall = 3,   // the caller's buffer cannot take the signature
  kReasonNoSigner = 4,         // a key without its signer (not made by MakeSignerPrivateKey)
  kReasonTokenSignFailed = 5,  // the PKCS#11 token (or the way to it) did not sign
  kReasonSignFailed = 6,       // another signer did not sign
};

// void* because OSSL_ITEM's member is; OpenSSL only reads the strings.
const OSSL_ITEM kReasonStrings[] = {
    {kReasonTpmSignFailed, const_cast<char*>("TPM2_Sign failed")},
    {kReasonSchemeRefused, const_cast<char*>("the signer cannot make this signature as asked")},
    {kReasonBufferTooSmall, const_cast<char*>("signature buffer too small")},
    {kReasonNoSigner, const_cast<char*>("key has no signer")},
    {kReasonTokenSignFailed, const_cast<char*>("C_Sign failed")},
    {kReasonSignFailed, const_cast<char*>("signature failed")},
    {0, nullptr}};

// The last signature failure on this thread (see TakeSignerFailure).
std::optional<Error>& ThreadSignerFailure() {
  thread_local std::optional<Error> failure;
  return failure;
}

// The reason for a failed signature of `signer`: its operation's name, as OpenSSL prints it.
int SignFailedReason(const KeySigner& signer) {
  if (signer.operation() == "TPM2_Sign") return kReasonTpmSignFailed;
  if (signer.operation() == "C_Sign") return kReasonTokenSignFailed;
  return kReasonSignFailed;
}

const OSSL_ITEM* ReasonStrings(void* /*provctx*/) { return kReasonStrings; }

struct ProviderContext {
  OSSL_LIB_CTX* libctx = nullptr;  // the library context the provider lives in
  const OSSL_CORE_HANDLE* handle = nullptr;
  // The core's error upcalls: errors raised through them carry this provider's library number,
  // so that OpenSSL names our reasons.
  OSSL_FUNC_core_new_error_fn* new_error = nullptr;
  OSSL_FUNC_core_set_error_debug_fn* set_error_debug = nullptr;
  OSSL_FUNC_core_vset_error_fn* vset_error = nullptr;
};

// Puts an error with our `reason` and a printf-style detail on the thread's OpenSSL error queue,
// as raised at `file`:`line` in `func` (see IDEVID_PROVIDER_ERROR).
__attribute__((format(printf, 6, 7))) void RaiseError(const ProviderContext& provider, int reason,
                                                      const char* file, int line, const char* func,
                                                      const char* format, ...) {
  provider.new_error(provider.handle);
  provider.set_error_debug(provider.handle, file, line, func);
  va_list args;
  va_start(args, format);
  provider.vset_error(provider.handle, reason, format, args);
  va_end(args);
}

#define IDEVID_PROVIDER_ERROR(provider, reason, ...) \
  RaiseError(provider, reason, __FILE__, __LINE__, __func__, __VA_ARGS__)

// Key data: the signer and, for public operations, the key's public half.
struct SignerKey {
  ProviderContext* provider = nullptr;
  std::shared_ptr<KeySigner> signer;
};

// ---- keymgmt ------------------------------------------------------------------------------

void* KeyNew(void* provctx) { return new SignerKey{static_cast<ProviderContext*>(provctx), nullptr}; }
void KeyFree(void* keydata) { delete static_cast<SignerKey*>(keydata); }

int KeyHas(const void* keydata, int /*selection*/) {
  return keydata != nullptr && static_cast<const SignerKey*>(keydata)->signer != nullptr;
}

int KeyImport(void* keydata, int /*selection*/, const OSSL_PARAM params[]) {
  const OSSL_PARAM* p = OSSL_PARAM_locate_const(params, kSignerParam);
  const void* data = nullptr;
  std::size_t size = 0;
  if (p == nullptr || OSSL_PARAM_get_octet_string_ptr(p, &data, &size) != 1 ||
      size != sizeof(std::shared_ptr<KeySigner>*)) {
    return 0;
  }
  std::shared_ptr<KeySigner>* holder = nullptr;
  std::memcpy(&holder, data, sizeof holder);
  static_cast<SignerKey*>(keydata)->signer = *holder;
  return 1;
}

const OSSL_PARAM* KeyImportTypes(int /*selection*/) {
  static const OSSL_PARAM types[] = {OSSL_PARAM_octet_string(kSignerParam, nullptr, 0), OSSL_PARAM_END};
  return types;
}

// Only the public half leaves: a private-key export fails, so OpenSSL signs through this provider.
int KeyExport(void* keydata, int selection, OSSL_CALLBACK* callback, void* cbarg) {
  auto* key = static_cast<SignerKey*>(keydata);
  if (key->signer == nullptr || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) return 0;
  OSSL_PARAM* params = nullptr;
  if (EVP_PKEY_todata(&key->signer->public_key(), EVP_PKEY_PUBLIC_KEY, &params) != 1) return 0;
  int ok = callback(params, cbarg);
  OSSL_PARAM_free(params);
  return ok;
}

const OSSL_PARAM* KeyExportTypes(int /*selection*/) {
  static const OSSL_PARAM types[] = {OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, nullptr, 0),
                                     OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0),
                                     OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, nullptr, 0),
                                     OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, nullptr, 0), OSSL_PARAM_END};
  return types;
}

// Everything public (bits, security bits, signature size, group, encoded point) comes from the
// public half as the default provider describes it.
int KeyGetParams(void* keydata, OSSL_PARAM params[]) {
  auto* key = static_cast<SignerKey*>(keydata);
  if (key->signer == nullptr) return 0;
  if (OSSL_PARAM* p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST)) {
    if (OSSL_PARAM_set_utf8_string(p, "SHA256") != 1) return 0;
  }
  return EVP_PKEY_get_params(const_cast<EVP_PKEY*>(&key->signer->public_key()), params);
}

const OSSL_PARAM* KeyGettableParams(void* /*provctx*/) {
  static const OSSL_PARAM params[] = {OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, nullptr),
                                      OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, nullptr),
                                      OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, nullptr),
                                      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, nullptr, 0),
                                      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, nullptr, 0),
                                      OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0),
                                      OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0),
                                      OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, nullptr, 0),
                                      OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, nullptr, 0),
                                      OSSL_PARAM_END};
  return params;
}

int KeyMatch(const void* a, const void* b, int /*selection*/) {
  const auto* x = static_cast<const SignerKey*>(a);
  const auto* y = static_cast<const SignerKey*>(b);
  return x->signer && y->signer && EVP_PKEY_eq(&x->signer->public_key(), &y->signer->public_key()) == 1;
}

const char* EcOperationName(int operation_id) {
  return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : nullptr;
}
const char* RsaOperationName(int operation_id) { return operation_id == OSSL_OP_SIGNATURE ? "RSA" : nullptr; }

using Fn = void (*)();

#define IDEVID_KEYMGMT(name, operation_name)                                          \
  const OSSL_DISPATCH name[] = {                                                      \
      {OSSL_FUNC_KEYMGMT_NEW, reinterpret_cast<Fn>(KeyNew)},                          \
      {OSSL_FUNC_KEYMGMT_FREE, reinterpret_cast<Fn>(KeyFree)},                        \
      {OSSL_FUNC_KEYMGMT_HAS, reinterpret_cast<Fn>(KeyHas)},                          \
      {OSSL_FUNC_KEYMGMT_MATCH, reinterpret_cast<Fn>(KeyMatch)},                      \
      {OSSL_FUNC_KEYMGMT_IMPORT, reinterpret_cast<Fn>(KeyImport)},                    \
      {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, reinterpret_cast<Fn>(KeyImportTypes)},         \
      {OSSL_FUNC_KEYMGMT_EXPORT, reinterpret_cast<Fn>(KeyExport)},                    \
      {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, reinterpret_cast<Fn>(KeyExportTypes)},         \
      {OSSL_FUNC_KEYMGMT_GET_PARAMS, reinterpret_cast<Fn>(KeyGetParams)},             \
      {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, reinterpret_cast<Fn>(KeyGettableParams)},   \
      {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, reinterpret_cast<Fn>(operation_name)}, \
      {0, nullptr}};

IDEVID_KEYMGMT(kEcKeymgmt, EcOperationName)
IDEVID_KEYMGMT(kRsaKeymgmt, RsaOperationName)
#undef IDEVID_KEYMGMT

// ---- signature ----------------------------------------------------------------------------

struct SignContext {
  ProviderContext* provider = nullptr;
  SignerKey* key = nullptr;
  std::string digest = "SHA256";
  ossl::MdCtx md;
  int padding = RSA_PKCS1_PADDING;           // RSA only
  int salt_length = RSA_PSS_SALTLEN_DIGEST;  // RSA-PSS only
};

void* SigNew(void* provctx, const char* /*propq*/) {
  return new SignContext{static_cast<ProviderContext*>(provctx), nullptr, "SHA256", nullptr};
}
void SigFree(void* ctx) { delete static_cast<SignContext*>(ctx); }

void* SigDup(void* ctx) {
  auto* from = static_cast<SignContext*>(ctx);
  auto* to =
      new SignContext{from->provider, from->key, from->digest, nullptr, from->padding, from->salt_length};
  if (from->md) {
    to->md.reset(EVP_MD_CTX_new());
    if (!to->md || EVP_MD_CTX_copy_ex(to->md.get(), from->md.get()) != 1) {
      delete to;
      return nullptr;
    }
  }
  return to;
}

// A parameter given as an integer or as one of OpenSSL's names for it.
bool GetIntOrName(const OSSL_PARAM* p, std::initializer_list<std::pair<const char*, int>> names, int* out) {
  if (p->data_type != OSSL_PARAM_UTF8_STRING) return OSSL_PARAM_get_int(p, out) == 1;
  for (const auto& [name, value] : names) {
    if (std::strcmp(static_cast<const char*>(p->data), name) == 0) {
      *out = value;
      return true;
    }
  }
  return false;
}

int SetParams(SignContext* ctx, const OSSL_PARAM params[]) {
  if (params == nullptr) return 1;
  if (const OSSL_PARAM* p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST)) {
    char name[64] = "";
    char* out = name;
    if (OSSL_PARAM_get_utf8_string(p, &out, sizeof name) != 1) return 0;
    ctx->digest = name;
  }
  if (const OSSL_PARAM* p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) {
    if (!GetIntOrName(p, {{"pkcs1", RSA_PKCS1_PADDING}, {"pss", RSA_PKCS1_PSS_PADDING}}, &ctx->padding) ||
        (ctx->padding != RSA_PKCS1_PADDING && ctx->padding != RSA_PKCS1_PSS_PADDING)) {
      return 0;  // signers sign PKCS#1 v1.5 and PSS only
    }
  }
  if (const OSSL_PARAM* p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) {
    if (!GetIntOrName(p,
                      {{"digest", RSA_PSS_SALTLEN_DIGEST},
                       {"max", RSA_PSS_SALTLEN_MAX},
                       {"auto", RSA_PSS_SALTLEN_AUTO}},
                      &ctx->salt_length)) {
      return 0;
    }
  }
  return 1;
}

int SigSetParams(void* ctx, const OSSL_PARAM params[]) {
  return SetParams(static_cast<SignContext*>(ctx), params);
}

const OSSL_PARAM* SigSettableParams(void* /*ctx*/, void* /*provctx*/) {
  static const OSSL_PARAM params[] = {OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, nullptr, 0),
                                      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, nullptr, 0),
                                      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, nullptr, 0),
                                      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, nullptr, 0),
                                      OSSL_PARAM_END};
  return params;
}

// The DER AlgorithmIdentifier of this signature, which X.509 and CRL signing put in what they
// sign: ecdsa-with-SHAx without parameters (RFC 5758 3.2), shaxWithRSAEncryption with NULL
// (RFC 4055 5). Empty for PSS, whose parameters we do not encode: such a signature of an X.509
// object fails rather than carry a wrong identifier.
Bytes AlgorithmIdentifier(const SignContext& c) {
  if (c.key == nullptr || c.key->signer == nullptr) return {};
  bool rsa = c.key->signer->is_rsa();
  if (rsa && c.padding != RSA_PKCS1_PADDING) return {};
  ossl::UniquePtr<EVP_MD> md(EVP_MD_fetch(c.provider->libctx, c.digest.c_str(), "provider=default"));
  int signature_nid = NID_undef;
  if (!md || OBJ_find_sigid_by_algs(&signature_nid, EVP_MD_get_type(md.get()),
                                    rsa ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey) != 1) {
    return {};
  }
  ossl::UniquePtr<X509_ALGOR> algorithm(X509_ALGOR_new());
  if (!algorithm || X509_ALGOR_set0(algorithm.get(), OBJ_nid2obj(signature_nid),
                                    rsa ? V_ASN1_NULL : V_ASN1_UNDEF, nullptr) != 1) {
    return {};
  }
  unsigned char* der = nullptr;
  int length = i2d_X509_ALGOR(algorithm.get(), &der);
  if (length <= 0) return {};
  Bytes out(der, der + length);
  OPENSSL_free(der);
  return out;
}

int SigGetParams(void* ctx, OSSL_PARAM params[]) {
  auto* c = static_cast<SignContext*>(ctx);
  if (OSSL_PARAM* p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) {
    if (OSSL_PARAM_set_utf8_string(p, c->digest.c_str()) != 1) return 0;
  }
  if (OSSL_PARAM* p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID)) {
    Bytes der = AlgorithmIdentifier(*c);
    if (der.empty() || OSSL_PARAM_set_octet_string(p, der.data(), der.size()) != 1) return 0;
  }
  return 1;
}

const OSSL_PARAM* SigGettableParams(void* /*ctx*/, void* /*provctx*/) {
  static const OSSL_PARAM params[] = {OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, nullptr, 0),
                                      OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, nullptr, 0),
                                      OSSL_PARAM_END};
  return params;
}

int SigSignInit(void* ctx, void* provkey, const OSSL_PARAM params[]) {
  auto* c = static_cast<SignContext*>(ctx);
  c->key = static_cast<SignerKey*>(provkey);
  if (c->key == nullptr || c->key->signer == nullptr) {
    IDEVID_PROVIDER_ERROR(*c->provider, kReasonNoSigner,
                          "a key of the idevid-signer provider without its signer");
    return 0;
  }
  return SetParams(c, params);
}

// The scheme for this signature: ECDSA for EC keys; for RSA keys PKCS#1 v1.5, or PSS when
// the signer's salt is what was asked for (TLS 1.3 asks for the digest length, RFC 8446 4.2.3).
Result<SignScheme> SchemeFor(SignContext* c, std::size_t digest_length) {
  KeySigner& signer = *c->key->signer;
  if (!signer.is_rsa()) return SignScheme::kEcdsa;
  if (c->padding == RSA_PKCS1_PADDING) return SignScheme::kRsaPkcs1;
  bool digest_salt =
      c->salt_length == RSA_PSS_SALTLEN_DIGEST || c->salt_length == static_cast<int>(digest_length);
  IDEVID_ASSIGN_OR_RETURN(bool signer_salt_ok, signer.RsaPssSaltIsDigestLength());
  if (!digest_salt || !signer_salt_ok) {
    return UsageError(UsageCode::kUnsupported,
                      fmt::format("the RSA-PSS salt of {} is not the one asked for", signer.operation()));
  }
  return SignScheme::kRsaPss;
}

// The signature of a finished digest, made by the key's signer.
int SignDigestBySigner(SignContext* c, unsigned char* sig, std::size_t* siglen, std::size_t sigsize,
                       const unsigned char* digest, std::size_t digest_length) {
  std::size_t max = static_cast<std::size_t>(EVP_PKEY_get_size(&c->key->signer->public_key()));
  if (sig == nullptr) {
    *siglen = max;
    return 1;
  }
  auto scheme = SchemeFor(c, digest_length);
  if (!scheme) {
    ThreadSignerFailure() = scheme.error();
    IDEVID_PROVIDER_ERROR(*c->provider, kReasonSchemeRefused, "%s", scheme.error().message().c_str());
    return 0;
  }
  auto signature = c->key->signer->Sign(*scheme, c->digest, std::span(digest, digest_length));
  if (!signature) {
    ThreadSignerFailure() = signature.error();
    IDEVID_PROVIDER_ERROR(*c->provider, SignFailedReason(*c->key->signer), "%s",
                          signature.error().message().c_str());
    return 0;
  }
  if (signature->size() > sigsize) {
    IDEVID_PROVIDER_ERROR(*c->provider, kReasonBufferTooSmall, "the signature has %zu bytes, the buffer %zu",
                          signature->size(), sigsize);
    return 0;
  }
  std::memcpy(sig, signature->data(), signature->size());
  *siglen = signature->size();
  return 1;
}

int SigSign(void* ctx, unsigned char* sig, std::size_t* siglen, std::size_t sigsize, const unsigned char* tbs,
            std::size_t tbslen) {
  return SignDigestBySigner(static_cast<SignContext*>(ctx), sig, siglen, sigsize, tbs, tbslen);
}

int SigDigestSignInit(void* ctx, const char* mdname, void* provkey, const OSSL_PARAM params[]) {
  auto* c = static_cast<SignContext*>(ctx);
  if (SigSignInit(ctx, provkey, params) != 1) return 0;
  if (mdname != nullptr && *mdname != '\0') c->digest = mdname;
  ossl::UniquePtr<EVP_MD> md(EVP_MD_fetch(c->provider->libctx, c->digest.c_str(), "provider=default"));
  c->md.reset(EVP_MD_CTX_new());
  return md && c->md && EVP_DigestInit_ex(c->md.get(), md.get(), nullptr) == 1;
}

int SigDigestSignUpdate(void* ctx, const unsigned char* data, std::size_t length) {
  auto* c = static_cast<SignContext*>(ctx);
  return c->md && EVP_DigestUpdate(c->md.get(), data, length) == 1;
}

int SigDigestSignFinal(void* ctx, unsigned char* sig, std::size_t* siglen, std::size_t sigsize) {
  auto* c = static_cast<SignContext*>(ctx);
  if (sig == nullptr) return SignDigestBySigner(c, nullptr, siglen, 0, nullptr, 0);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!c->md || EVP_DigestFinal_ex(c->md.get(), digest, &length) != 1) return 0;
  return SignDigestBySigner(c, sig, siglen, sigsize, digest, length);
}

const OSSL_DISPATCH kSignature[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, reinterpret_cast<Fn>(SigNew)},
    {OSSL_FUNC_SIGNATURE_FREECTX, reinterpret_cast<Fn>(SigFree)},
    {OSSL_FUNC_SIGNATURE_DUPCTX, reinterpret_cast<Fn>(SigDup)},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, reinterpret_cast<Fn>(SigSignInit)},
    {OSSL_FUNC_SIGNATURE_SIGN, reinterpret_cast<Fn>(SigSign)},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, reinterpret_cast<Fn>(SigDigestSignInit)},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, reinterpret_cast<Fn>(SigDigestSignUpdate)},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, reinterpret_cast<Fn>(SigDigestSignFinal)},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, reinterpret_cast<Fn>(SigSetParams)},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, reinterpret_cast<Fn>(SigSettableParams)},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, reinterpret_cast<Fn>(SigGetParams)},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, reinterpret_cast<Fn>(SigGettableParams)},
    {0, nullptr}};

// ---- provider -----------------------------------------------------------------------------

const OSSL_ALGORITHM kKeymgmtAlgorithms[] = {
    {"EC:id-ecPublicKey", kProperties, kEcKeymgmt, "EC key held in a TPM or token"},
    {"RSA:rsaEncryption", kProperties, kRsaKeymgmt, "RSA key held in a TPM or token"},
    {nullptr, nullptr, nullptr, nullptr}};
const OSSL_ALGORITHM kSignatureAlgorithms[] = {
    {"ECDSA", kProperties, kSignature, "ECDSA by the key's signer"},
    {"RSA:rsaEncryption", kProperties, kSignature, "RSA PKCS#1 v1.5 and PSS by the key's signer"},
    {nullptr, nullptr, nullptr, nullptr}};

const OSSL_ALGORITHM* QueryOperation(void* /*provctx*/, int operation_id, int* no_cache) {
  *no_cache = 0;
  if (operation_id == OSSL_OP_KEYMGMT) return kKeymgmtAlgorithms;
  if (operation_id == OSSL_OP_SIGNATURE) return kSignatureAlgorithms;
  return nullptr;
}

void Teardown(void* provctx) { delete static_cast<ProviderContext*>(provctx); }

const OSSL_DISPATCH kProvider[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, reinterpret_cast<Fn>(QueryOperation)},
    {OSSL_FUNC_PROVIDER_TEARDOWN, reinterpret_cast<Fn>(Teardown)},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, reinterpret_cast<Fn>(ReasonStrings)},
    {0, nullptr}};

int ProviderInit(const OSSL_CORE_HANDLE* handle, const OSSL_DISPATCH* in, const OSSL_DISPATCH** out,
                 void** provctx) {
  OSSL_FUNC_core_get_libctx_fn* get_libctx = nullptr;
  ProviderContext context;
  context.handle = handle;
  for (; in->function_id != 0; ++in) {
    switch (in->function_id) {
      case OSSL_FUNC_CORE_GET_LIBCTX: get_libctx = OSSL_FUNC_core_get_libctx(in); break;
      case OSSL_FUNC_CORE_NEW_ERROR: context.new_error = OSSL_FUNC_core_new_error(in); break;
      case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
        context.set_error_debug = OSSL_FUNC_core_set_error_debug(in);
        break;
      case OSSL_FUNC_CORE_VSET_ERROR: context.vset_error = OSSL_FUNC_core_vset_error(in); break;
      default: break;
    }
  }
  if (get_libctx == nullptr || context.new_error == nullptr || context.set_error_debug == nullptr ||
      context.vset_error == nullptr) {
    return 0;
  }
  context.libctx = reinterpret_cast<OSSL_LIB_CTX*>(get_libctx(handle));
  *provctx = new ProviderContext(context);
  *out = kProvider;
  return 1;
}

}  // namespace

Result<SignerProviderLibrary> SignerProviderLibrary::Create() {
  SignerProviderLibrary library;
  library.libctx_ = OSSL_LIB_CTX_new();
  if (library.libctx_ == nullptr ||
      OSSL_PROVIDER_add_builtin(library.libctx_, kSignerProviderName, ProviderInit) != 1) {
    return FailOpenSsl("cannot create a library context for the idevid-signer provider");
  }
  library.default_provider_ = OSSL_PROVIDER_load(library.libctx_, "default");
  library.signer_provider_ = OSSL_PROVIDER_load(library.libctx_, kSignerProviderName);
  // Plain fetches prefer the default provider; our keymgmt and signature serve the keys
  // made by MakeSignerPrivateKey.
  if (library.default_provider_ == nullptr || library.signer_provider_ == nullptr ||
      EVP_set_default_properties(library.libctx_, "?provider=default") != 1) {
    return FailOpenSsl("cannot load the idevid-signer provider");
  }
  return library;
}

SignerProviderLibrary::SignerProviderLibrary(SignerProviderLibrary&& other) noexcept
    : libctx_(std::exchange(other.libctx_, nullptr)),
      default_provider_(std::exchange(other.default_provider_, nullptr)),
      signer_provider_(std::exchange(other.signer_provider_, nullptr)) {}

SignerProviderLibrary& SignerProviderLibrary::operator=(SignerProviderLibrary&& other) noexcept {
  if (this != &other) {
    Release();
    libctx_ = std::exchange(other.libctx_, nullptr);
    default_provider_ = std::exchange(other.default_provider_, nullptr);
    signer_provider_ = std::exchange(other.signer_provider_, nullptr);
  }
  return *this;
}

SignerProviderLibrary::~SignerProviderLibrary() { Release(); }

void SignerProviderLibrary::Release() {
  if (signer_provider_ != nullptr) OSSL_PROVIDER_unload(signer_provider_);
  if (default_provider_ != nullptr) OSSL_PROVIDER_unload(default_provider_);
  if (libctx_ != nullptr) OSSL_LIB_CTX_free(libctx_);
  signer_provider_ = default_provider_ = nullptr;
  libctx_ = nullptr;
}

std::optional<Error> TakeSignerFailure() { return std::exchange(ThreadSignerFailure(), std::nullopt); }

Result<ossl::PKey> MakeSignerPrivateKey(OSSL_LIB_CTX* libctx, std::shared_ptr<KeySigner> signer) {
  std::shared_ptr<KeySigner>* holder = &signer;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(kSignerParam, &holder, sizeof holder),
                         OSSL_PARAM_END};
  ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(libctx, signer->is_rsa() ? "RSA" : "EC", kProperties));
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_KEYPAIR, params) != 1) {
    return FailOpenSsl("cannot make the signer's key known to OpenSSL");
  }
  return ossl::PKey(key);
}

}  // namespace idevid
