// The attestation messages of the cloud's identity exchange (version 1), JSON over the HTTPS
// session that carried the device's identity: the cloud's challenge (an answer to
// GET /v1/identity) and the device's evidence (POST /v1/attestation), with the binding of a
// quote to that TLS session (RFC 8446 §7.5 / RFC 5705 exporter).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/tpm_pcr.h"
#include "core/x509.h"

namespace idevid {

inline constexpr int kAttestationVersion = 1;
inline constexpr std::string_view kAttestationPath = "/v1/attestation";
// The TLS exporter label (RFC 5705 §4: "EXPORTER" prefix for labels not in the IANA registry)
// and the length of the exported value.
inline constexpr std::string_view kAttestationExporterLabel = "EXPORTER-idevid-attestation";
inline constexpr std::size_t kAttestationExporterBytes = 32;
inline constexpr std::size_t kAttestationNonceBytes = 32;
// The largest evidence message the cloud reads (an event log of kMaxEventLogBytes, base64, plus
// the rest).
inline constexpr std::size_t kMaxEvidenceBytes = 1536 * 1024;

// {"version": 1, "type": "attestation-challenge", "nonce": base64, "pcrs": "sha256:0,...",
//  "exporter": {"label": "EXPORTER-idevid-attestation", "length": 32}}
struct AttestationChallenge {
  Bytes nonce;        // kAttestationNonceBytes, fresh per challenge
  PcrSelection pcrs;  // what the cloud's policy wants quoted
};

// {"version": 1, "type": "attestation-evidence", "quote": base64 TPMS_ATTEST,
//  "signature": base64 TPMT_SIGNATURE, "pcrs": "sha256:0,...",
//  "pcr_values": {"0": hex, ...}, "event_log": base64, "iak_certificate": base64 DER}
struct AttestationEvidence {
  Bytes quote;            // the marshalled TPMS_ATTEST the IAK signed
  Bytes signature;        // the marshalled TPMT_SIGNATURE over it
  PcrSelection pcrs;      // the selection the values are for
  PcrValues pcr_values;   // the values the device read (the quote's digest must match them)
  Bytes event_log;        // the measured-boot log, as the firmware wrote it
  Bytes iak_certificate;  // DER
};

// The messages' JSON text.
std::string ChallengeJson(const AttestationChallenge& challenge);
std::string EvidenceJson(const AttestationEvidence& evidence);

// Parse a message (hostile input, at most kMaxEvidenceBytes). Fail with kConfig/kSyntax naming
// the member that is missing or malformed, kUsage/kUnsupported for another version or type,
// kConfig/kLimit when over the limit.
Result<AttestationChallenge> ParseChallenge(std::string_view json);
Result<AttestationEvidence> ParseEvidence(std::string_view json);

// The quote's qualifying data for `nonce` in the session whose exporter value is `exporter`:
// SHA-256("idevid-attestation-v1" || nonce || exporter), so that a quote made for one session
// does not fit another, nor another nonce.
Bytes SessionBinding(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> exporter);

}  // namespace idevid
