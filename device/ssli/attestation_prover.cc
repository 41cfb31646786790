#include "device/ssli/attestation_prover.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/event_log.h"
#include "core/openssl_error.h"
#include "core/tpm_context.h"
#include "core/tpm_keys.h"
#include "core/tpm_nv.h"

namespace idevid {
namespace {

// The PCRs of `wanted` that `allowed` leaves out, as "8,9".
std::string NotAllowed(const PcrSelection& allowed, const PcrSelection& wanted) {
  std::vector<std::string> out;
  for (std::uint32_t pcr : wanted.pcrs) {
    if (allowed.hash != wanted.hash || !std::binary_search(allowed.pcrs.begin(), allowed.pcrs.end(), pcr)) {
      out.push_back(std::to_string(pcr));
    }
  }
  return fmt::format("{}", fmt::join(out, ","));
}

Result<TpmContext> OpenTpm(const std::string& tcti) {
  return TpmContext::Open(tcti, {.command_timeout = std::chrono::seconds(30)});
}

}  // namespace

Result<Bytes> AttestationExporter(SSL* ssl) {
  Bytes value(kAttestationExporterBytes);
  // RFC 8446 §7.5: no context is a different value than an empty one; we use none.
  if (SSL_export_keying_material(ssl, value.data(), value.size(), kAttestationExporterLabel.data(),
                                 kAttestationExporterLabel.size(), nullptr, 0, 0) != 1) {
    return FailOpenSsl("cannot export the TLS session's attestation value");
  }
  return value;
}

AttestationProver::AttestationProver(std::string tcti, AttestationConfig config)
    : tcti_(std::move(tcti)), config_(std::move(config)) {}

Result<AttestationEvidence> AttestationProver::Prove(const AttestationChallenge& challenge,
                                                     std::span<const std::uint8_t> exporter) const {
  if (config_.pcrs && !config_.pcrs->Covers(challenge.pcrs)) {
    return ConfigError(ConfigCode::kConflict,
                       fmt::format("the cloud asks for a quote of {}, but the attestation configuration "
                                   "allows {} only (not PCR {})",
                                   challenge.pcrs.ToString(), config_.pcrs->ToString(),
                                   NotAllowed(*config_.pcrs, challenge.pcrs)));
  }
  return Make({config_.key_handle, challenge.pcrs, SessionBinding(challenge.nonce, exporter)});
}

Result<AttestationEvidence> AttestationProver::Make(const QuoteSpec& spec) const {
  AttestationEvidence evidence;
  IDEVID_ASSIGN_OR_RETURN(evidence.event_log, ReadEventLog());
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, OpenTpm(tcti_));
  IDEVID_ASSIGN_OR_RETURN(evidence.iak_certificate, NvRead(tpm, config_.nv_index),
                          "reading the IAK certificate at NV {:#010x}", config_.nv_index);
  IDEVID_ASSIGN_OR_RETURN(EsysReference signer, ReferencePersistentKey(tpm, spec.signer_handle));
  IDEVID_ASSIGN_OR_RETURN(evidence.pcr_values, ReadPcrs(tpm, spec.selection), "reading PCRs {}",
                          spec.selection.ToString());
  IDEVID_ASSIGN_OR_RETURN(Attestation quote,
                          Quote(tpm, signer.handle(), spec.selection, spec.qualifying_data),
                          "TPM2_Quote by the key at {:#010x}", spec.signer_handle);
  evidence.quote = std::move(quote.attest);
  evidence.signature = std::move(quote.signature);
  evidence.pcrs = spec.selection;
  return evidence;
}

Result<Bytes> AttestationProver::ReadEventLog() const {
  // A securityfs log states no size: read up to one byte past the limit.
  std::ifstream in(config_.event_log, std::ios::binary);
  if (!in) {
    return ConfigError(ConfigCode::kFile,
                       fmt::format("the event log {} cannot be read: {}",
                                   QuotedDisplayText(config_.event_log), std::strerror(errno)));
  }
  Bytes bytes(kMaxEventLogBytes + 1);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (in.bad()) {
    return ConfigError(ConfigCode::kFile,
                       fmt::format("the event log {} cannot be read", QuotedDisplayText(config_.event_log)));
  }
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  if (bytes.size() > kMaxEventLogBytes) {
    return ConfigError(ConfigCode::kLimit,
                       fmt::format("the event log {} is larger than {} bytes",
                                   QuotedDisplayText(config_.event_log), kMaxEventLogBytes));
  }
  return bytes;
}

Result<Bytes> AttestationProver::ReadIakCertificate() const {
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, OpenTpm(tcti_));
  IDEVID_ASSIGN_OR_RETURN(Bytes der, NvRead(tpm, config_.nv_index),
                          "reading the IAK certificate at NV {:#010x}", config_.nv_index);
  return der;
}

}  // namespace idevid
