#include "core/pkcs11_key_signer.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <vector>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/openssl_error.h"
#include "core/pkcs11_error.h"
#include "core/x509.h"

namespace idevid {
namespace {

CK_BBOOL kTrue = CK_TRUE;
CK_BBOOL kFalse = CK_FALSE;

// A CK_ATTRIBUTE pointing at `value` (which outlives the call it is given to).
template <typename T>
CK_ATTRIBUTE Attr(CK_ATTRIBUTE_TYPE type, T& value) {
  return {type, &value, sizeof value};
}
CK_ATTRIBUTE Attr(CK_ATTRIBUTE_TYPE type, std::span<const std::uint8_t> bytes) {
  return {type, const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
}
CK_ATTRIBUTE Attr(CK_ATTRIBUTE_TYPE type, const std::string& text) {
  return {type, const_cast<char*>(text.data()), text.size()};
}

// The attributes that name a key: its label, and its id when given.
std::vector<CK_ATTRIBUTE> NameAttributes(const Pkcs11KeyName& name) {
  std::vector<CK_ATTRIBUTE> attributes = {Attr(CKA_LABEL, name.label)};
  if (name.id) attributes.push_back(Attr(CKA_ID, std::span<const std::uint8_t>(*name.id)));
  return attributes;
}

std::string Describe(const Pkcs11KeyName& name) {
  return name.id ? fmt::format("{} (id {})", QuotedDisplayText(name.label), Hex(*name.id))
                 : QuotedDisplayText(name.label);
}

// The objects matching `attributes` (C_FindObjects); the caller holds the token's mutex.
Result<std::vector<CK_OBJECT_HANDLE>> FindObjects(const Pkcs11Token& token,
                                                  std::vector<CK_ATTRIBUTE> attributes) {
  CK_FUNCTION_LIST& f = token.functions();
  CK_RV rv = f.C_FindObjectsInit(token.session(), attributes.data(), attributes.size());
  if (rv != CKR_OK) return Fail(Pkcs11Error(rv, "C_FindObjectsInit"));
  std::vector<CK_OBJECT_HANDLE> found;
  CK_OBJECT_HANDLE batch[16];
  CK_ULONG count = 0;
  while ((rv = f.C_FindObjects(token.session(), batch, 16, &count)) == CKR_OK && count > 0) {
    found.insert(found.end(), batch, batch + count);
  }
  f.C_FindObjectsFinal(token.session());
  if (rv != CKR_OK) return Fail(Pkcs11Error(rv, "C_FindObjects"));
  return found;
}

Result<std::vector<CK_OBJECT_HANDLE>> FindKeys(const Pkcs11Token& token, CK_OBJECT_CLASS& object_class,
                                               const Pkcs11KeyName& name) {
  std::vector<CK_ATTRIBUTE> attributes = NameAttributes(name);
  attributes.push_back(Attr(CKA_CLASS, object_class));
  return FindObjects(token, std::move(attributes));
}

// One attribute's value (C_GetAttributeValue, asked for its length first).
Result<Bytes> ReadAttribute(const Pkcs11Token& token, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  CK_ATTRIBUTE attribute = {type, nullptr, 0};
  CK_RV rv = token.functions().C_GetAttributeValue(token.session(), object, &attribute, 1);
  if (rv != CKR_OK) return Fail(Pkcs11Error(rv, "C_GetAttributeValue"));
  Bytes value(attribute.ulValueLen);
  attribute.pValue = value.data();
  rv = token.functions().C_GetAttributeValue(token.session(), object, &attribute, 1);
  if (rv != CKR_OK) return Fail(Pkcs11Error(rv, "C_GetAttributeValue"));
  value.resize(attribute.ulValueLen);
  return value;
}

// The DER of the named curve's OID, as CKA_EC_PARAMS holds it (PKCS#11 v2.40 2.3.3, RFC 5480 2.1.1.1).
Result<Bytes> NamedCurveParameters(int nid) {
  unsigned char* der = nullptr;
  int length = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &der);
  return AdoptDer(der, length, "the curve's object identifier");
}

// The public key object's key as OpenSSL sees it: EC P-256 (CKA_EC_POINT, a DER OCTET STRING of
// the uncompressed point, PKCS#11 v2.40 2.3.3) or RSA (CKA_MODULUS, CKA_PUBLIC_EXPONENT).
Result<ossl::PKey> ReadPublicKey(const Pkcs11Token& token, CK_OBJECT_HANDLE object) {
  CK_KEY_TYPE key_type = 0;
  CK_ATTRIBUTE type_attribute = Attr(CKA_KEY_TYPE, key_type);
  CK_RV rv = token.functions().C_GetAttributeValue(token.session(), object, &type_attribute, 1);
  if (rv != CKR_OK) return Fail(Pkcs11Error(rv, "C_GetAttributeValue"));
  ossl::ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld) return FailOpenSsl("cannot prepare key parameters");
  if (key_type == CKK_EC) {
    IDEVID_ASSIGN_OR_RETURN(Bytes params, ReadAttribute(token, object, CKA_EC_PARAMS));
    IDEVID_ASSIGN_OR_RETURN(Bytes p256, NamedCurveParameters(NID_X9_62_prime256v1));
    if (params != p256) {
      return UsageError(UsageCode::kUnsupported, "the token's EC key is not on P-256");
    }
    IDEVID_ASSIGN_OR_RETURN(Bytes wrapped, ReadAttribute(token, object, CKA_EC_POINT));
    const unsigned char* p = wrapped.data();
    ossl::UniquePtr<ASN1_STRING> point(d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(wrapped.size())));
    if (!point) return FailOpenSsl("the token's CKA_EC_POINT is not a DER OCTET STRING");
    if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                         ASN1_STRING_get0_data(point.get()),
                                         static_cast<std::size_t>(ASN1_STRING_length(point.get()))) != 1) {
      return FailOpenSsl("cannot prepare EC key parameters");
    }
    return PublicKeyFromParams("EC", bld.get(), "the token's");
  }
  if (key_type == CKK_RSA) {
    IDEVID_ASSIGN_OR_RETURN(Bytes modulus, ReadAttribute(token, object, CKA_MODULUS));
    IDEVID_ASSIGN_OR_RETURN(Bytes exponent, ReadAttribute(token, object, CKA_PUBLIC_EXPONENT));
    ossl::Bignum n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
    ossl::Bignum e(BN_bin2bn(exponent.data(), static_cast<int>(exponent.size()), nullptr));
    if (!n || !e || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
      return FailOpenSsl("cannot prepare RSA key parameters");
    }
    return PublicKeyFromParams("RSA", bld.get(), "the token's");
  }
  return UsageError(UsageCode::kUnsupported,
                    fmt::format("the token's key is of type {:#x}; EC and RSA keys sign", key_type));
}

// Destroys every object named `name` (any class); the caller holds the token's mutex.
Result<void> DestroyNamed(const Pkcs11Token& token, const Pkcs11KeyName& name) {
  IDEVID_ASSIGN_OR_RETURN(auto objects, FindObjects(token, NameAttributes(name)));
  for (CK_OBJECT_HANDLE object : objects) {
    CK_RV rv = token.functions().C_DestroyObject(token.session(), object);
    if (rv != CKR_OK) return Fail(Pkcs11Error(rv, "C_DestroyObject"));
  }
  return {};
}

struct DigestKind {
  int nid;
  CK_MECHANISM_TYPE hash;    // for PSS
  CK_RSA_PKCS_MGF_TYPE mgf;  // for PSS
  std::size_t length;
};

// The hash for any of OpenSSL's names of it ("SHA256", "SHA2-256").
Result<DigestKind> DigestByName(std::string_view name, std::size_t digest_length) {
  ossl::UniquePtr<EVP_MD> md(EVP_MD_fetch(nullptr, std::string(name).c_str(), nullptr));
  int nid = md ? EVP_MD_get_type(md.get()) : NID_undef;
  ClearOpenSslErrors();
  DigestKind kind{};
  switch (nid) {
    case NID_sha256: kind = {nid, CKM_SHA256, CKG_MGF1_SHA256, 32}; break;
    case NID_sha384: kind = {nid, CKM_SHA384, CKG_MGF1_SHA384, 48}; break;
    case NID_sha512: kind = {nid, CKM_SHA512, CKG_MGF1_SHA512, 64}; break;
    default:
      return UsageError(UsageCode::kUnsupported,
                        fmt::format("the token signer does not sign {} digests", name));
  }
  if (digest_length != kind.length) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("a {} digest has {} bytes, not {}", name, kind.length, digest_length));
  }
  return kind;
}

// DigestInfo ::= SEQUENCE { digestAlgorithm, digest } (RFC 8017 9.2 step 2), by OpenSSL's X509_SIG.
Result<Bytes> DigestInfo(int nid, std::span<const std::uint8_t> digest) {
  ossl::UniquePtr<X509_SIG> info(X509_SIG_new());
  X509_ALGOR* algorithm = nullptr;
  ASN1_OCTET_STRING* value = nullptr;
  if (!info) return FailOpenSsl("cannot make a DigestInfo");
  X509_SIG_getm(info.get(), &algorithm, &value);
  if (X509_ALGOR_set0(algorithm, OBJ_nid2obj(nid), V_ASN1_NULL, nullptr) != 1 ||
      ASN1_OCTET_STRING_set(value, digest.data(), static_cast<int>(digest.size())) != 1) {
    return FailOpenSsl("cannot make a DigestInfo");
  }
  unsigned char* der = nullptr;
  int length = i2d_X509_SIG(info.get(), &der);
  return AdoptDer(der, length, "the DigestInfo");
}

// ECDSA-Sig-Value (RFC 3279 2.2.3) of the token's r||s (PKCS#11 v2.40 2.3.1: r and s, each as long
// as the order).
Result<Bytes> EcdsaSignatureDer(const Bytes& raw) {
  if (raw.empty() || raw.size() % 2 != 0) {
    return Fail(
        ErrorDomain::kPkcs11, CKR_GENERAL_ERROR,
        fmt::format("CKR_GENERAL_ERROR: the token's ECDSA signature has {} bytes, not r||s", raw.size()));
  }
  int half = static_cast<int>(raw.size() / 2);
  ossl::EcdsaSig sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw.data(), half, nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + half, half, nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return FailOpenSsl("cannot encode the token's ECDSA signature");
  }
  unsigned char* der = nullptr;
  int length = i2d_ECDSA_SIG(sig.get(), &der);
  return AdoptDer(der, length, "the ECDSA signature");
}

}  // namespace

Result<std::shared_ptr<Pkcs11KeySigner>> Pkcs11KeySigner::Generate(std::shared_ptr<Pkcs11Token> token,
                                                                   KeyAlgorithm algorithm,
                                                                   const Pkcs11KeyName& name, bool replace) {
  std::unique_lock lock(token->mutex());
  IDEVID_ASSIGN_OR_RETURN(auto existing, FindObjects(*token, NameAttributes(name)),
                          "looking for a key named {} in the token", Describe(name));
  if (!existing.empty() && !replace) {
    return UsageError(UsageCode::kWrongState,
                      fmt::format("the token already holds a key named {}; name another in the URI "
                                  "(object=) or pass --force to replace it (what it signed will no "
                                  "longer verify against a new factory)",
                                  Describe(name)));
  }
  if (!existing.empty()) IDEVID_TRY(DestroyNamed(*token, name), "replacing the key named {}", Describe(name));
  std::vector<CK_ATTRIBUTE> pub = NameAttributes(name);
  std::vector<CK_ATTRIBUTE> priv = NameAttributes(name);
  pub.push_back(Attr(CKA_TOKEN, kTrue));
  pub.push_back(Attr(CKA_PRIVATE, kFalse));
  pub.push_back(Attr(CKA_VERIFY, kTrue));
  for (CK_ATTRIBUTE a : {Attr(CKA_TOKEN, kTrue), Attr(CKA_PRIVATE, kTrue), Attr(CKA_SENSITIVE, kTrue),
                         Attr(CKA_EXTRACTABLE, kFalse), Attr(CKA_SIGN, kTrue)}) {
    priv.push_back(a);
  }
  CK_ULONG modulus_bits = 2048;
  Bytes exponent = {0x01, 0x00, 0x01};  // 65537
  Bytes curve;
  CK_MECHANISM mechanism = {CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  if (algorithm == KeyAlgorithm::kEccP256) {
    IDEVID_ASSIGN_OR_RETURN(curve, NamedCurveParameters(NID_X9_62_prime256v1));
    pub.push_back(Attr(CKA_EC_PARAMS, std::span<const std::uint8_t>(curve)));
  } else {
    mechanism.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
    pub.push_back(Attr(CKA_MODULUS_BITS, modulus_bits));
    pub.push_back(Attr(CKA_PUBLIC_EXPONENT, std::span<const std::uint8_t>(exponent)));
  }
  CK_OBJECT_HANDLE public_handle = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE private_handle = CK_INVALID_HANDLE;
  CK_RV rv = token->functions().C_GenerateKeyPair(token->session(), &mechanism, pub.data(), pub.size(),
                                                  priv.data(), priv.size(), &public_handle, &private_handle);
  if (rv != CKR_OK) {
    return Fail(Pkcs11Error(rv, "C_GenerateKeyPair")
                    .WithContext(fmt::format("generating the {} key {} in the token",
                                             KeyAlgorithmName(algorithm), Describe(name))));
  }
  std::shared_ptr<Pkcs11KeySigner> signer(new Pkcs11KeySigner());
  IDEVID_ASSIGN_OR_RETURN(signer->public_key_, ReadPublicKey(*token, public_handle),
                          "reading the public half of the new key {}", Describe(name));
  signer->token_ = std::move(token);
  signer->name_ = name;
  signer->private_key_ = private_handle;
  return signer;
}

Result<std::shared_ptr<Pkcs11KeySigner>> Pkcs11KeySigner::Find(std::shared_ptr<Pkcs11Token> token,
                                                               const Pkcs11KeyName& name) {
  std::unique_lock lock(token->mutex());
  CK_OBJECT_CLASS private_class = CKO_PRIVATE_KEY;
  CK_OBJECT_CLASS public_class = CKO_PUBLIC_KEY;
  IDEVID_ASSIGN_OR_RETURN(auto private_keys, FindKeys(*token, private_class, name),
                          "looking for the key {} in the token", Describe(name));
  IDEVID_ASSIGN_OR_RETURN(auto public_keys, FindKeys(*token, public_class, name),
                          "looking for the key {} in the token", Describe(name));
  if (private_keys.size() != 1 || public_keys.size() != 1) {
    return ConfigError(ConfigCode::kReference,
                       fmt::format("the token holds {} private and {} public keys named {}, not one of each; "
                                   "check the URI's object= and id=, or that this is the factory's token",
                                   private_keys.size(), public_keys.size(), Describe(name)));
  }
  std::shared_ptr<Pkcs11KeySigner> signer(new Pkcs11KeySigner());
  IDEVID_ASSIGN_OR_RETURN(signer->public_key_, ReadPublicKey(*token, public_keys.front()),
                          "reading the public half of the key {}", Describe(name));
  signer->token_ = std::move(token);
  signer->name_ = name;
  signer->private_key_ = private_keys.front();
  return signer;
}

Result<Bytes> Pkcs11KeySigner::SignInToken(SignScheme scheme, std::string_view digest_name,
                                           std::span<const std::uint8_t> digest) {
  IDEVID_ASSIGN_OR_RETURN(DigestKind kind, DigestByName(digest_name, digest.size()));
  Bytes input(digest.begin(), digest.end());
  CK_RSA_PKCS_PSS_PARAMS pss = {kind.hash, kind.mgf, kind.length};
  CK_MECHANISM mechanism = {CKM_ECDSA, nullptr, 0};
  if (scheme == SignScheme::kRsaPkcs1) {
    mechanism.mechanism = CKM_RSA_PKCS;
    IDEVID_ASSIGN_OR_RETURN(input, DigestInfo(kind.nid, digest));
  } else if (scheme == SignScheme::kRsaPss) {
    mechanism = {CKM_RSA_PKCS_PSS, &pss, sizeof pss};
  }
  if ((scheme == SignScheme::kEcdsa) == is_rsa()) {
    return UsageError(UsageCode::kUnsupported, "the signature scheme does not fit the token's key");
  }
  std::unique_lock lock(token_->mutex());
  CK_FUNCTION_LIST& f = token_->functions();
  CK_RV rv = f.C_SignInit(token_->session(), &mechanism, private_key_);
  if ((rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID) && !token_->StillPresent()) {
    rv = CKR_TOKEN_NOT_PRESENT;  // the key went with its token
  }
  if (rv != CKR_OK) return Fail(Pkcs11Error(rv, "C_SignInit"));
  Bytes signature(static_cast<std::size_t>(EVP_PKEY_get_size(public_key_.get())) * 2 + 16);
  CK_ULONG length = signature.size();
  rv = f.C_Sign(token_->session(), input.data(), input.size(), signature.data(), &length);
  if (rv != CKR_OK) return Fail(Pkcs11Error(rv, "C_Sign"));
  signature.resize(length);
  if (scheme == SignScheme::kEcdsa) return EcdsaSignatureDer(signature);
  return signature;
}

Result<Bytes> Pkcs11KeySigner::Sign(SignScheme scheme, std::string_view digest_name,
                                    std::span<const std::uint8_t> digest) {
  auto signature = SignInToken(scheme, digest_name, digest);
  std::lock_guard lock(mutex_);
  if (signature) {
    ++signatures_;
  } else {
    ++failures_;
    last_failure_ = signature.error().WithContext(fmt::format("signing with the key {}", Describe(name_)));
    return Fail(*last_failure_);
  }
  return signature;
}

std::uint64_t Pkcs11KeySigner::signatures() const {
  std::lock_guard lock(mutex_);
  return signatures_;
}

std::uint64_t Pkcs11KeySigner::failures() const {
  std::lock_guard lock(mutex_);
  return failures_;
}

std::optional<Error> Pkcs11KeySigner::last_failure() const {
  std::lock_guard lock(mutex_);
  return last_failure_;
}

}  // namespace idevid
