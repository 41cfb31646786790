#include "provisioning/enrolment_checks.h"

#include <algorithm>

#include <openssl/x509v3.h>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/x509.h"
#include "core/x509_verify.h"

namespace idevid {
namespace {

constexpr std::string_view kOidEkCertificateUsage = "2.23.133.8.1";  // tcg-kp-EKCertificate

EnrolmentRefusal Refuse(std::string_view reason, std::string detail) {
  return {std::string(reason), std::move(detail)};
}

// §7.3.4: the attributes both device-identity keys must have, and the one that tells them apart.
constexpr TPMA_OBJECT kRequiredAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                            TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_SIGN_ENCRYPT;

std::optional<std::string> KeyShapeProblem(const TPMT_PUBLIC& pub) {
  if (pub.nameAlg != TPM2_ALG_SHA256) return fmt::format("nameAlg {:#06x} is not SHA-256", pub.nameAlg);
  if (pub.type == TPM2_ALG_ECC) {
    if (pub.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256) return std::nullopt;
    return fmt::format("ECC curve {:#06x} is not NIST P-256", pub.parameters.eccDetail.curveID);
  }
  if (pub.type == TPM2_ALG_RSA) {
    if (pub.parameters.rsaDetail.keyBits == 2048) return std::nullopt;
    return fmt::format("an RSA key of {} bits is not RSA-2048", pub.parameters.rsaDetail.keyBits);
  }
  return fmt::format("key type {:#06x} is neither ECC nor RSA", pub.type);
}

// Unmarshals one public area of the request or says which one did not parse.
std::variant<TPMT_PUBLIC, EnrolmentRefusal> PublicArea(std::span<const std::uint8_t> bytes,
                                                       std::string_view which) {
  auto pub = UnmarshalPublic(bytes);
  if (!pub) return Refuse(refusal::kMalformedRequest, fmt::format("{}: {}", which, pub.error().message()));
  return *pub;
}

std::optional<EnrolmentRefusal> OrderProblem(const TcgCsrContent& content, const EnrolmentOrder& order) {
  if (content.product_serial != order.serial) {
    return Refuse(refusal::kOrder,
                  fmt::format("the request names serial {}; the order is for {}",
                              QuotedDisplayText(content.product_serial), QuotedDisplayText(order.serial)));
  }
  if (content.product_model != order.model) {
    return Refuse(refusal::kOrder,
                  fmt::format("the request names model {}; the order is for {}",
                              QuotedDisplayText(content.product_model), QuotedDisplayText(order.model)));
  }
  return std::nullopt;
}

std::optional<EnrolmentRefusal> SignatureProblem(const TcgCsr& csr, const TPMT_PUBLIC& idevid) {
  auto signature = UnmarshalSignature(csr.signature);
  if (!signature) {
    return Refuse(refusal::kMalformedRequest, fmt::format("signature: {}", signature.error().message()));
  }
  if (signature->signature.any.hashAlg != csr.content.hash_algorithm) {
    return Refuse(refusal::kRequestSignature,
                  fmt::format("the signature hashes with {:#06x}, the request says hashAlgoId {:#06x}",
                              signature->signature.any.hashAlg, csr.content.hash_algorithm));
  }
  if (auto verified = VerifyTpmSignature(idevid, csr.signed_bytes, *signature); !verified) {
    return Refuse(refusal::kRequestSignature,
                  "the IDevID's signature over the request does not verify: " + verified.error().message());
  }
  return std::nullopt;
}

// Both public areas, or the refusal of the first that does not parse or breaks §7.3.4.
std::optional<EnrolmentRefusal> ReadKeys(const TcgCsrContent& content, CheckedRequest& out) {
  auto iak = PublicArea(content.iak_public, "attestPub (the IAK)");
  if (auto* refused = std::get_if<EnrolmentRefusal>(&iak)) return *refused;
  auto idevid = PublicArea(content.idevid_public, "signingPub (the IDevID)");
  if (auto* refused = std::get_if<EnrolmentRefusal>(&idevid)) return *refused;
  out.iak = std::get<TPMT_PUBLIC>(iak);
  out.idevid = std::get<TPMT_PUBLIC>(idevid);
  if (auto problem = KeyAttributeProblem(out.iak, true)) {
    return Refuse(refusal::kIakAttributes, "the IAK " + *problem);
  }
  if (auto problem = KeyAttributeProblem(out.idevid, false)) {
    return Refuse(refusal::kIdevidAttributes, "the IDevID " + *problem);
  }
  return std::nullopt;
}

// TCG EK Credential Profile 2.3 §3.2: an EK certificate is an end-entity certificate with the
// extended key usage tcg-kp-EKCertificate; ours must hold the RSA-2048 key MakeCredential needs.
std::optional<std::string> EkShapeProblem(X509& ek) {
  if (X509_check_ca(&ek) != 0) return "the EK certificate is a CA certificate";
  ossl::UniquePtr<EXTENDED_KEY_USAGE> usage(
      static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(&ek, NID_ext_key_usage, nullptr, nullptr)));
  bool ek_usage = false;
  for (int i = 0; usage && i < sk_ASN1_OBJECT_num(usage.get()); ++i) {
    char oid[64];
    OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(usage.get(), i), 1);
    ek_usage = ek_usage || std::string_view(oid) == kOidEkCertificateUsage;
  }
  if (!ek_usage)
    return fmt::format("the EK certificate lacks the extended key usage {}", kOidEkCertificateUsage);
  const EVP_PKEY* key = X509_get0_pubkey(&ek);
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) != 2048) {
    return "the EK certificate's key is not RSA-2048 (the EK credentials are made to, template L-1)";
  }
  return std::nullopt;
}

std::optional<EnrolmentRefusal> EkProblem(const TcgCsrContent& content, const RequestExpectations& expect,
                                          CheckedRequest& out) {
  auto ek = ParseCertificate(content.ek_certificate);
  if (!ek) {
    return Refuse(refusal::kEkCertificate, "the EK certificate does not parse: " + ek.error().message());
  }
  out.ek_certificate = std::move(*ek);
  if (auto problem = EkShapeProblem(*out.ek_certificate)) return Refuse(refusal::kEkCertificate, *problem);
  if (auto problem = ChainProblem(*out.ek_certificate, *expect.vendor_cas)) {
    return Refuse(refusal::kEkChain,
                  fmt::format("the EK certificate ({}) does not chain to a TPM vendor CA: {}",
                              DisplayText(SubjectLine(*out.ek_certificate)), *problem));
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> KeyAttributeProblem(const TPMT_PUBLIC& pub, bool restricted) {
  if (auto shape = KeyShapeProblem(pub)) return shape;
  TPMA_OBJECT attributes = pub.objectAttributes;
  if ((attributes & kRequiredAttributes) != kRequiredAttributes) {
    return fmt::format(
        "lacks {} (attributes {:#010x}): by its own account the key may leave its TPM or was not made there",
        (attributes & TPMA_OBJECT_FIXEDTPM) == 0              ? "fixedTPM"
        : (attributes & TPMA_OBJECT_FIXEDPARENT) == 0         ? "fixedParent"
        : (attributes & TPMA_OBJECT_SENSITIVEDATAORIGIN) == 0 ? "sensitiveDataOrigin"
                                                              : "sign",
        attributes);
  }
  if ((attributes & TPMA_OBJECT_DECRYPT) != 0) {
    return fmt::format("has decrypt set (attributes {:#010x}); a device-identity key only signs", attributes);
  }
  bool is_restricted = (attributes & TPMA_OBJECT_RESTRICTED) != 0;
  if (is_restricted != restricted) {
    return fmt::format("is {}restricted (attributes {:#010x}); it must {}be", is_restricted ? "" : "not ",
                       attributes, restricted ? "" : "not ");
  }
  return std::nullopt;
}

std::optional<std::string> CertifyProblem(std::span<const std::uint8_t> attest,
                                          std::span<const std::uint8_t> signature, const TPMT_PUBLIC& signer,
                                          const TPMT_PUBLIC& certified, std::span<const std::uint8_t> nonce) {
  auto info = UnmarshalAttest(attest);
  if (!info) return "the certify info does not parse: " + info.error().message();
  // TPM 2.0 Part 2 §10.12.12: only a TPM signs a structure that starts with TPM_GENERATED_VALUE.
  if (info->magic != TPM2_GENERATED_VALUE)
    return fmt::format("magic {:#010x} is not TPM-generated", info->magic);
  if (info->type != TPM2_ST_ATTEST_CERTIFY) return fmt::format("type {:#06x} is not a certify", info->type);
  std::span<const std::uint8_t> extra(info->extraData.buffer, info->extraData.size);
  if (!std::ranges::equal(extra, nonce)) return "its qualifying data is not this enrolment's nonce";
  auto name = ObjectName(certified);
  if (!name) return "the IDevID's name: " + name.error().message();
  const TPM2B_NAME& attested = info->attested.certify.name;
  if (!std::ranges::equal(std::span<const std::uint8_t>(attested.name, attested.size), *name)) {
    return "it certifies another key than the IDevID in the request";
  }
  auto sig = UnmarshalSignature(signature);
  if (!sig) return "its signature does not parse: " + sig.error().message();
  if (auto verified = VerifyTpmSignature(signer, attest, *sig); !verified) {
    return "it is not signed by the IAK: " + verified.error().message();
  }
  return std::nullopt;
}

std::optional<std::string> ChainProblem(const X509& cert, std::span<const TrustBundle> bundles) {
  std::string last = "no CA to check it against is configured";
  for (const TrustBundle& bundle : bundles) {
    std::vector<const X509*> anchors, intermediates;
    for (const auto& ca : bundle.anchors) anchors.push_back(ca.get());
    for (const auto& ca : bundle.intermediates) intermediates.push_back(ca.get());
    auto verdict = VerifyChain(cert, intermediates, anchors);
    if (!verdict) return "the chain could not be checked: " + verdict.error().message();
    if (verdict->valid) return std::nullopt;
    last = fmt::format("{} (depth {})", verdict->error, verdict->error_depth);
  }
  return last;
}

std::variant<CheckedRequest, EnrolmentRefusal> CheckEnrolmentRequest(std::span<const std::uint8_t> bytes,
                                                                     const RequestExpectations& expect) {
  CheckedRequest out;
  auto csr = ParseTcgCsr(bytes);
  if (!csr) return Refuse(refusal::kMalformedRequest, csr.error().message());
  out.csr = std::move(*csr);
  const TcgCsrContent& content = out.csr.content;
  auto idevid = PublicArea(content.idevid_public, "signingPub (the IDevID)");
  if (auto* refused = std::get_if<EnrolmentRefusal>(&idevid)) return *refused;
  if (auto refused = SignatureProblem(out.csr, std::get<TPMT_PUBLIC>(idevid))) return *refused;
  if (auto refused = EkProblem(content, expect, out)) return *refused;
  if (auto refused = ReadKeys(content, out)) return *refused;
  if (auto problem = CertifyProblem(content.idevid_certify_info, content.idevid_certify_signature, out.iak,
                                    out.idevid, expect.nonce)) {
    return Refuse(refusal::kCertify, "the TPM2_Certify of the IDevID by the IAK: " + *problem);
  }
  if (auto refused = OrderProblem(content, *expect.order)) return *refused;
  return out;
}

}  // namespace idevid
