// The cloud's check of a unit's attestation evidence (an IAK quote of its measured boot, bound
// to the TLS session of its identity) against a policy. Every rule is a finding of its own; the
// first broken one is the verdict's reason.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <openssl/types.h>
#include <nlohmann/json.hpp>

#include "cloud/attest_policy.h"
#include "core/attestation_wire.h"
#include "core/verdict.h"

namespace idevid {

// The TPM's reset and restart counts last attested per unit serial (TPMS_CLOCK_INFO): they only
// grow on one TPM; going back means its state was rolled back. Safe for concurrent use.
class BootCounters {
 public:
  struct Counts {
    std::uint32_t reset_count = 0;
    std::uint32_t restart_count = 0;
  };
  enum class Change { kFirst, kSame, kReboot, kRollback };
  // Compares `now` with what `serial` last attested and, unless it went back, remembers it.
  Change Observe(const std::string& serial, Counts now);
  // What `serial` last attested; nullopt before its first attestation.
  std::optional<Counts> Last(const std::string& serial);

 private:
  std::mutex mutex_;
  std::map<std::string, Counts> last_;
};

// What a session's evidence is checked against.
struct AttestationContext {
  std::string serial;      // the serial of the TLS identity (the device certificate)
  Bytes nonce;             // the challenge's nonce
  Bytes exporter;          // this session's exporter value (kAttestationExporterLabel)
  X509_STORE* factory_ca;  // the store the IAK certificate must chain to
  const AttestPolicy* policy;
  BootCounters* counters;
};

struct AttestationVerdict {
  bool attested = false;
  std::string policy;  // the policy's name
  std::string reason;  // the first failure's "id: evidence"; "ok" when attested
  Verdict findings;    // every rule broken, in the order checked (a reboot is a warning)
  // {"verdict": "attested"|"refused", "policy", "reason", "findings": [...]}.
  nlohmann::json ToJson() const;
};

// Checks, in this order, each a finding id: iak-certificate (does not parse or chain to the
// factory CA), iak-serial (names another serial than the TLS identity), quote-malformed,
// quote-type (TPM_GENERATED_VALUE magic, TPM_ST_ATTEST_QUOTE), quote-signature (not by that
// IAK), qualifying-data (not SessionBinding(nonce, exporter)), pcr-selection (the quote's or the
// evidence's selection does not cover the policy's), pcr-digest (quote digest != digest of the
// values sent), event-log (malformed), event-log-replay (replay != values sent, naming the PCR),
// event-not-allowed (per event), counter-rollback (resetCount/restartCount went back); and a
// warning "reboot" when they grew. Never fails: a refusal is a verdict.
AttestationVerdict VerifyAttestation(const AttestationEvidence& evidence, const AttestationContext& context);

}  // namespace idevid
