// What an enrolment authority checks in a TCG-CSR-IDEVID before it challenges the unit's EK
// (TCG "TPM 2.0 Keys for Device Identity and Attestation" v1.0 rev 12 §6, §13): each broken rule
// is a refusal with a stable reason, never an error.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/openssl_ptr.h"
#include "core/tpm_wire.h"
#include "provisioning/enrolment_channel.h"
#include "provisioning/factory.h"
#include "provisioning/tcg_csr.h"

namespace idevid {

// Refusal reasons, one per broken rule.
namespace refusal {
inline constexpr std::string_view kMalformedRequest = "malformed-request";
inline constexpr std::string_view kRequestSignature = "request-signature";
inline constexpr std::string_view kEkCertificate = "ek-certificate";
inline constexpr std::string_view kEkChain = "ek-chain";
inline constexpr std::string_view kIakAttributes = "iak-attributes";
inline constexpr std::string_view kIdevidAttributes = "idevid-attributes";
inline constexpr std::string_view kCertify = "certify";
inline constexpr std::string_view kOrder = "order";
inline constexpr std::string_view kSerialIssued = "serial-issued";
inline constexpr std::string_view kSession = "session";
inline constexpr std::string_view kActivation = "activation";
}  // namespace refusal

// A request that passed every check, with what the authority needs next.
struct CheckedRequest {
  TcgCsr csr;
  TPMT_PUBLIC iak{};
  TPMT_PUBLIC idevid{};
  ossl::Cert ek_certificate;
};

// What the request is checked against.
struct RequestExpectations {
  const EnrolmentOrder* order = nullptr;                 // serial and model ordered
  std::span<const std::uint8_t> nonce;                   // qualifying data the certify must carry
  const std::vector<TrustBundle>* vendor_cas = nullptr;  // TPM vendor CAs for the EK certificate
};

// Parses `bytes` and checks, in this order: the IDevID's signature over the content, the EK
// certificate's chain to a vendor CA, both keys' attributes, the TPM2_Certify of the IDevID by
// the IAK (TPM-generated, of type certify, naming the IDevID, carrying the nonce, signed by the
// IAK), and the serial and model against the order. The first broken rule is the refusal.
std::variant<CheckedRequest, EnrolmentRefusal> CheckEnrolmentRequest(std::span<const std::uint8_t> bytes,
                                                                     const RequestExpectations& expect);

// The key attribute rules of §7.3.4 on their own (the line check applies them to a unit's keys):
// fixedTPM, fixedParent, sensitiveDataOrigin and sign set, decrypt clear, restricted set for the
// IAK and clear for the IDevID, nameAlg SHA-256, an ECC P-256 or RSA-2048 key. nullopt when they
// hold, else what is wrong.
std::optional<std::string> KeyAttributeProblem(const TPMT_PUBLIC& pub, bool restricted);

// Checks a TPM2_Certify: `attest` is TPM-generated (magic), of type certify, names `certified`,
// carries `nonce` as extraData, and `signature` over it verifies with `signer`. nullopt when it
// holds, else what is wrong.
std::optional<std::string> CertifyProblem(std::span<const std::uint8_t> attest,
                                          std::span<const std::uint8_t> signature, const TPMT_PUBLIC& signer,
                                          const TPMT_PUBLIC& certified, std::span<const std::uint8_t> nonce);

// Verifies `cert`'s chain to one of `bundles` (RFC 5280 6); nullopt when it chains, else why not.
std::optional<std::string> ChainProblem(const X509& cert, std::span<const TrustBundle> bundles);

}  // namespace idevid
