// The device's answer to a cloud's attestation challenge: TPM2_Quote by the IAK over the
// measured-boot PCRs with qualifying data that binds the cloud's nonce to this TLS session, with
// the PCR values, the event log and the IAK certificate (core/attestation_wire.h).
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <span>
#include <string>

#include "core/attestation_wire.h"
#include "core/result.h"
#include "device/config/device_config.h"

namespace idevid {

// The session's exporter value for attestation (RFC 8446 §7.5 / RFC 5705):
// kAttestationExporterBytes under kAttestationExporterLabel, no context. kTls when the session
// cannot export (not established).
Result<Bytes> AttestationExporter(SSL* ssl);

// One quote, spelled out: by which key, over which PCRs, with which qualifying data.
struct QuoteSpec {
  std::uint32_t signer_handle = 0;  // a persistent signing key (the IAK, normally)
  PcrSelection selection;
  Bytes qualifying_data;  // at most 64 bytes
};

// Makes attestation evidence on one TPM with one attestation configuration. Opens the TPM for
// each proof and flushes or closes every handle it made before returning. Copyable.
class AttestationProver {
 public:
  // `tcti` names the TPM holding the IAK (as in `idevid ssli connect`).
  AttestationProver(std::string tcti, AttestationConfig config);

  // The genuine evidence for `challenge` in the session whose exporter value is `exporter`: a
  // quote by the configured IAK over the challenge's PCRs with SessionBinding(nonce, exporter).
  // Fails with kConfig/kConflict when the challenge asks for PCRs the configuration does not
  // allow, and as Make.
  Result<AttestationEvidence> Prove(const AttestationChallenge& challenge,
                                    std::span<const std::uint8_t> exporter) const;

  // Evidence with a quote as `spec` says (any key, selection or qualifying data), the PCR values
  // of that selection, the event log and the IAK certificate. Fails with the TPM's error (no key
  // at the handle, no certificate in NV), kConfig/kFile when the event log cannot be read,
  // kConfig/kLimit when it is over kMaxEventLogBytes.
  Result<AttestationEvidence> Make(const QuoteSpec& spec) const;

  // The configured event log's bytes (errors as Make).
  Result<Bytes> ReadEventLog() const;
  // The IAK certificate (DER) from its NV index. Fails with the TPM's error.
  Result<Bytes> ReadIakCertificate() const;

  const AttestationConfig& config() const { return config_; }
  const std::string& tcti() const { return tcti_; }

 private:
  std::string tcti_;
  AttestationConfig config_;
};

}  // namespace idevid
