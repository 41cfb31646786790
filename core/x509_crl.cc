#include "core/x509_crl.h"

#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <ctime>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/file_io.h"
#include "core/openssl_error.h"
#include "core/signer_provider.h"
#include "core/utc_time.h"

namespace idevid {
namespace {

using Asn1Time = ossl::UniquePtr<ASN1_TIME>;

// RFC 5280 5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050 (ASN1_TIME_set picks so).
Result<Asn1Time> Asn1TimeOf(CrlClock::time_point t) {
  Asn1Time time(ASN1_TIME_set(nullptr, CrlClock::to_time_t(t)));
  if (!time) return FailOpenSsl(fmt::format("cannot encode the time {}", UtcTimestamp(t)));
  return time;
}

Result<CrlClock::time_point> TimePointOf(const ASN1_TIME& time, std::string_view what) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(&time, &tm) != 1)
    return FailOpenSsl(fmt::format("the CRL's {} is not a valid time", what));
  return CrlClock::from_time_t(::timegm(&tm));
}

// BN_hex2bn accepts a prefix of its input; a serial must be hex through to its end.
ossl::Bignum ParseHexSerial(std::string_view hex) {
  BIGNUM* bn = nullptr;
  std::string text(hex);
  if (text.empty() || BN_hex2bn(&bn, text.c_str()) != static_cast<int>(text.size())) {
    BN_free(bn);
    ClearOpenSslErrors();
    return nullptr;
  }
  return ossl::Bignum(bn);
}

std::string BignumHex(const BIGNUM& bn) {
  char* hex = BN_bn2hex(&bn);
  if (hex == nullptr) return "";
  std::string text(hex);
  OPENSSL_free(hex);
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string IntegerHex(const ASN1_INTEGER& value) {
  ossl::Bignum bn(ASN1_INTEGER_to_BN(&value, nullptr));
  return bn ? BignumHex(*bn) : "";
}

// RFC 5280 5.3.1: reasonCode is absent for unspecified; removeFromCRL belongs to delta CRLs.
Result<ossl::UniquePtr<X509_REVOKED>> RevokedEntry(const CrlEntry& entry) {
  ossl::Bignum serial = ParseHexSerial(entry.certificate_serial);
  if (!serial) {
    return UsageError(UsageCode::kInvalidArgument, fmt::format("{} is not a certificate serial in hex",
                                                               QuotedDisplayText(entry.certificate_serial)));
  }
  if (entry.reason == RevocationReason::kRemoveFromCrl) {
    return UsageError(
        UsageCode::kInvalidArgument,
        "removeFromCRL is a reason of delta CRLs only (RFC 5280 5.3.1); a full CRL leaves the entry out");
  }
  ossl::UniquePtr<X509_REVOKED> revoked(X509_REVOKED_new());
  ossl::UniquePtr<ASN1_INTEGER> number(BN_to_ASN1_INTEGER(serial.get(), nullptr));
  IDEVID_ASSIGN_OR_RETURN(Asn1Time date, Asn1TimeOf(entry.revoked_at));
  if (!revoked || !number || X509_REVOKED_set_serialNumber(revoked.get(), number.get()) != 1 ||
      X509_REVOKED_set_revocationDate(revoked.get(), date.get()) != 1) {
    return FailOpenSsl(fmt::format("cannot make the CRL entry of serial {}", entry.certificate_serial));
  }
  if (entry.reason != RevocationReason::kUnspecified) {
    ossl::UniquePtr<ASN1_ENUMERATED> reason(ASN1_ENUMERATED_new());
    if (!reason || ASN1_ENUMERATED_set(reason.get(), static_cast<long>(entry.reason)) != 1 ||
        X509_REVOKED_add1_ext_i2d(revoked.get(), NID_crl_reason, reason.get(), 0, 0) != 1) {
      return FailOpenSsl(fmt::format("cannot add the reason of serial {}", entry.certificate_serial));
    }
  }
  return revoked;
}

// RFC 5280 5.2.1 (the issuer's key identifier) and 5.2.3 (the CRL number), both non-critical.
Result<void> AddCrlExtensions(X509_CRL& crl, const X509& issuer, std::uint64_t number) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, const_cast<X509*>(&issuer), nullptr, nullptr, &crl, 0);
  ossl::UniquePtr<X509_EXTENSION> aki(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || X509_CRL_add_ext(&crl, aki.get(), -1) != 1) {
    return FailOpenSsl(
        "cannot add the Authority Key Identifier: the issuing CA has no Subject Key Identifier");
  }
  ossl::UniquePtr<ASN1_INTEGER> value(ASN1_INTEGER_new());
  if (!value || ASN1_INTEGER_set_uint64(value.get(), number) != 1 ||
      X509_CRL_add1_ext_i2d(&crl, NID_crl_number, value.get(), 0, 0) != 1) {
    return FailOpenSsl("cannot add the CRL number");
  }
  return {};
}

Result<void> SignCrl(X509_CRL& crl, EVP_PKEY& key) {
  ossl::MdCtx md(EVP_MD_CTX_new());
  (void)TakeSignerFailure();  // a stale one is not this signature's
  if (!md || EVP_DigestSignInit_ex(md.get(), nullptr, "SHA256", nullptr, nullptr, &key, nullptr) != 1 ||
      X509_CRL_sign_ctx(&crl, md.get()) <= 0) {
    // A key of our signer provider (a token): the device's answer, not OpenSSL's summary.
    if (auto failure = TakeSignerFailure()) {
      ClearOpenSslErrors();
      return Fail(std::move(failure)->WithContext("cannot sign the CRL with the issuing CA's key"));
    }
    return FailOpenSsl("cannot sign the CRL with the issuing CA's key");
  }
  return {};
}

Result<RevocationReason> EntryReason(const X509_REVOKED& revoked) {
  int critical = 0;
  ossl::UniquePtr<ASN1_ENUMERATED> reason(
      static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(&revoked, NID_crl_reason, &critical, nullptr)));
  if (!reason) {
    ClearOpenSslErrors();
    if (critical == -1) return RevocationReason::kUnspecified;  // RFC 5280 5.3.1: absent = unspecified
    return ConfigError(ConfigCode::kBadValue, "a CRL entry's reasonCode is given twice or cannot be decoded");
  }
  long value = ASN1_ENUMERATED_get(reason.get());
  if (value < 0 || value > 10 || value == 7) {
    return ConfigError(ConfigCode::kBadValue,
                       fmt::format("a CRL entry's reasonCode {} is not one of RFC 5280 5.3.1", value));
  }
  return static_cast<RevocationReason>(value);
}

Error Verify(int code, std::string message) {
  return Error(ErrorDomain::kVerify, static_cast<std::uint64_t>(code), std::move(message));
}

std::string NameText(const X509_NAME* name) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return DisplayText(std::string_view(data, static_cast<std::size_t>(length)));
}

// RFC 5280 6.3.3 (a): the CRL must be current at `now`.
Result<void> CheckCrlTimes(const X509_CRL& crl, CrlClock::time_point now) {
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(&crl);
  if (X509_CRL_get_version(&crl) != X509_CRL_VERSION_2 || next == nullptr) {
    return Fail(Verify(
        X509_V_ERR_CRL_HAS_EXPIRED,
        "the CRL is not a v2 CRL with a nextUpdate (RFC 5280 5.1.2.5): it cannot say until when it holds"));
  }
  std::time_t at = CrlClock::to_time_t(now);
  IDEVID_ASSIGN_OR_RETURN(auto this_update, TimePointOf(*X509_CRL_get0_lastUpdate(&crl), "thisUpdate"));
  IDEVID_ASSIGN_OR_RETURN(auto next_update, TimePointOf(*next, "nextUpdate"));
  if (X509_cmp_time(X509_CRL_get0_lastUpdate(&crl), &at) > 0) {
    return Fail(Verify(X509_V_ERR_CRL_NOT_YET_VALID,
                       fmt::format("the CRL is not yet valid: its thisUpdate {} is after now ({})",
                                   UtcTimestamp(this_update), UtcTimestamp(now))));
  }
  if (X509_cmp_time(next, &at) < 0) {
    return Fail(Verify(X509_V_ERR_CRL_HAS_EXPIRED,
                       fmt::format("the CRL is stale: its nextUpdate {} has passed (it is {}); publish a "
                                   "fresh one (idevid factory crl)",
                                   UtcTimestamp(next_update), UtcTimestamp(now))));
  }
  return {};
}

}  // namespace

Result<ossl::Crl> BuildCrl(const CrlContent& content, const X509& issuer, EVP_PKEY& issuer_key) {
  if (content.next_update <= content.this_update) {
    return UsageError(UsageCode::kInvalidArgument,
                      "a CRL's nextUpdate must be after its thisUpdate (RFC 5280 5.1.2.5)");
  }
  ossl::Crl crl(X509_CRL_new());
  IDEVID_ASSIGN_OR_RETURN(Asn1Time this_update, Asn1TimeOf(content.this_update));
  IDEVID_ASSIGN_OR_RETURN(Asn1Time next_update, Asn1TimeOf(content.next_update));
  if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(&issuer)) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    return FailOpenSsl("cannot start the CRL");
  }
  for (const CrlEntry& entry : content.entries) {
    IDEVID_ASSIGN_OR_RETURN(auto revoked, RevokedEntry(entry));
    if (X509_CRL_add0_revoked(crl.get(), revoked.get()) != 1) return FailOpenSsl("cannot add a CRL entry");
    (void)revoked.release();  // the CRL owns it now
  }
  if (X509_CRL_sort(crl.get()) != 1) return FailOpenSsl("cannot sort the CRL's entries");
  IDEVID_TRY(AddCrlExtensions(*crl, issuer, content.number));
  IDEVID_TRY(SignCrl(*crl, issuer_key));
  return crl;
}

Result<std::string> CrlPem(const X509_CRL& crl) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), const_cast<X509_CRL*>(&crl)) != 1) {
    return FailOpenSsl("cannot write the CRL as PEM");
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(length));
}

Result<Bytes> CrlDer(const X509_CRL& crl) {
  unsigned char* der = nullptr;
  int length = i2d_X509_CRL(const_cast<X509_CRL*>(&crl), &der);
  return AdoptDer(der, length, "the CRL");
}

Result<ossl::Crl> ParseCrl(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return ConfigError(ConfigCode::kFile, "no CRL: the input is empty");
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (text.find("-----BEGIN") != std::string_view::npos) {
    ossl::Bio bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
    ossl::Crl crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!crl) {
      Error e = OpenSslError("not a PEM X509 CRL");
      return ConfigError(ConfigCode::kFile, e.message());
    }
    return crl;
  }
  const unsigned char* p = bytes.data();
  ossl::Crl crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(bytes.size())));
  if (!crl) {
    Error e = OpenSslError("not a DER CRL");
    return ConfigError(ConfigCode::kFile, e.message());
  }
  if (p != bytes.data() + bytes.size()) {
    return ConfigError(ConfigCode::kFile,
                       fmt::format("{} bytes follow the DER CRL", bytes.data() + bytes.size() - p));
  }
  return crl;
}

Result<ossl::Crl> LoadCrlFile(const std::filesystem::path& path) {
  IDEVID_ASSIGN_OR_RETURN(auto bytes, ReadFileBytes(path));
  IDEVID_ASSIGN_OR_RETURN(auto crl, ParseCrl(bytes), "{}", path.string());
  return crl;
}

Result<CrlContent> ReadCrl(const X509_CRL& crl) {
  CrlContent content;
  int critical = 0;
  ossl::UniquePtr<ASN1_INTEGER> number(
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(&crl, NID_crl_number, &critical, nullptr)));
  ClearOpenSslErrors();
  if (number && ASN1_INTEGER_get_uint64(&content.number, number.get()) != 1) {
    return ConfigError(ConfigCode::kBadValue, "the CRL number is not a number of 64 bits");
  }
  IDEVID_ASSIGN_OR_RETURN(content.this_update, TimePointOf(*X509_CRL_get0_lastUpdate(&crl), "thisUpdate"));
  content.next_update = content.this_update;
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(&crl)) {
    IDEVID_ASSIGN_OR_RETURN(content.next_update, TimePointOf(*next, "nextUpdate"));
  }
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(const_cast<X509_CRL*>(&crl));
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    const X509_REVOKED* r = sk_X509_REVOKED_value(revoked, i);
    CrlEntry entry;
    entry.certificate_serial = IntegerHex(*X509_REVOKED_get0_serialNumber(r));
    IDEVID_ASSIGN_OR_RETURN(entry.reason, EntryReason(*r));
    IDEVID_ASSIGN_OR_RETURN(entry.revoked_at,
                            TimePointOf(*X509_REVOKED_get0_revocationDate(r), "revocationDate"));
    content.entries.push_back(std::move(entry));
  }
  return content;
}

Result<const X509*> CheckCrl(const X509_CRL& crl, const std::vector<const X509*>& cas,
                             CrlClock::time_point now) {
  const X509_NAME* issuer = X509_CRL_get_issuer(&crl);
  const X509* named = nullptr;
  bool may_sign = false;
  for (const X509* ca : cas) {
    if (X509_NAME_cmp(X509_get_subject_name(ca), issuer) != 0) continue;
    named = ca;
    X509* c = const_cast<X509*>(ca);
    // RFC 5280 4.2.1.3: a CA signs CRLs only with cRLSign in its KeyUsage.
    if ((X509_get_extension_flags(c) & EXFLAG_KUSAGE) && !(X509_get_key_usage(c) & KU_CRL_SIGN)) continue;
    may_sign = true;
    EVP_PKEY* key = X509_get0_pubkey(ca);
    if (key == nullptr || X509_CRL_verify(const_cast<X509_CRL*>(&crl), key) != 1) {  // RFC 5280 6.3.3 (g)
      ClearOpenSslErrors();
      continue;
    }
    IDEVID_TRY(CheckCrlTimes(crl, now));
    return ca;
  }
  if (named == nullptr) {
    return Fail(
        Verify(X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER,
               fmt::format("no CA of the factory issued the CRL: its issuer is {}", NameText(issuer))));
  }
  if (!may_sign) {
    return Fail(Verify(X509_V_ERR_KEYUSAGE_NO_CRL_SIGN,
                       fmt::format("{} may not sign CRLs: its KeyUsage lacks cRLSign (RFC 5280 4.2.1.3)",
                                   NameText(issuer))));
  }
  return Fail(Verify(X509_V_ERR_CRL_SIGNATURE_FAILURE,
                     fmt::format("the CRL's signature does not verify with the key of {} (another CA's "
                                 "key signed it, or it was altered)",
                                 NameText(issuer))));
}

std::optional<CrlRevocation> FindRevocation(const X509_CRL& crl, const X509& cert) {
  if (X509_NAME_cmp(X509_get_issuer_name(&cert), X509_CRL_get_issuer(&crl)) != 0) return std::nullopt;
  X509_REVOKED* revoked = nullptr;
  int found = X509_CRL_get0_by_cert(const_cast<X509_CRL*>(&crl), &revoked, const_cast<X509*>(&cert));
  ClearOpenSslErrors();
  if (found != 1 || revoked == nullptr) return std::nullopt;  // 2: removeFromCRL, not revoked
  CrlRevocation revocation;
  // An entry whose reason or date cannot be read still revokes (as unspecified, at thisUpdate).
  revocation.reason = EntryReason(*revoked).value_or(RevocationReason::kUnspecified);
  revocation.revoked_at = TimePointOf(*X509_REVOKED_get0_revocationDate(revoked), "revocationDate")
                              .value_or(CrlClock::time_point{});
  ClearOpenSslErrors();
  return revocation;
}

std::string CertificateSerialHex(const X509& cert) { return IntegerHex(*X509_get0_serialNumber(&cert)); }

bool SameCertificateSerial(std::string_view a, std::string_view b) {
  ossl::Bignum x = ParseHexSerial(a);
  ossl::Bignum y = ParseHexSerial(b);
  return x && y && BN_cmp(x.get(), y.get()) == 0;
}

}  // namespace idevid
