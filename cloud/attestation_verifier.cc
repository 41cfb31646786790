#include "cloud/attestation_verifier.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cloud/identity_verdict.h"
#include "core/display_text.h"
#include "core/event_log.h"
#include "core/idevid_profile.h"
#include "core/tpm_wire.h"
#include "core/x509.h"
#include "core/x509_verify.h"

namespace idevid {
namespace {

// PC Client PTP §4.7 (PCR attributes): PCRs 17-22 (D-RTM) start as all ones after TPM2_Startup,
// every other PCR as zeros.
Bytes InitialPcrValue(std::uint32_t pcr) { return Bytes(32, pcr >= 17 && pcr <= 22 ? 0xff : 0x00); }

std::string CountsText(BootCounters::Counts counts) {
  return fmt::format("resetCount {} restartCount {}", counts.reset_count, counts.restart_count);
}

// What the checks learn and pass on to the later ones.
struct Checked {
  ossl::Cert iak;            // null when the certificate does not parse
  bool iak_trusted = false;  // chains to the factory CA and names the TLS identity's serial
  std::optional<TPMS_ATTEST> quote;
  bool is_quote = false;         // of type TPM_ST_ATTEST_QUOTE: attested.quote is what it holds
  bool quote_authentic = false;  // a TPM-generated quote, signed by the IAK, for this session
  std::optional<PcrSelection> quoted;
  std::optional<EventLog> log;
};

class AttestationCheck {
 public:
  AttestationCheck(const AttestationEvidence& evidence, const AttestationContext& context)
      : evidence_(evidence), context_(context), policy_(context.policy ? *context.policy : NoPolicy()) {}

  Verdict Run() {
    CheckCertificate();
    CheckSerial();
    CheckQuote();
    CheckSignature();
    CheckQualifyingData();
    CheckSelection();
    CheckDigest();
    CheckEventLog();
    CheckReplay();
    if (checked_.log) verdict_.Merge(CheckEventsAgainstPolicy(*checked_.log, policy_));
    CheckCounters();
    return std::move(verdict_);
  }

 private:
  // Without a policy, nothing is allowed.
  static const AttestPolicy& NoPolicy() {
    static const AttestPolicy none{"(none)", {}, {}};
    return none;
  }

  void CheckCertificate() {
    auto cert = ParseCertificate(evidence_.iak_certificate);
    if (!cert) {
      verdict_.Add("iak-certificate", "the IAK certificate does not parse: " + cert.error().message());
      return;
    }
    checked_.iak = *std::move(cert);
    if (context_.factory_ca == nullptr) {
      verdict_.Add("iak-certificate", "no factory CA is configured to check the IAK certificate against");
      return;
    }
    auto chain = VerifyChain(*checked_.iak, {}, *context_.factory_ca);
    if (!chain) {
      verdict_.Add("iak-certificate",
                   "the IAK certificate's chain could not be checked: " + chain.error().message());
    } else if (!chain->valid) {
      verdict_.Add(
          "iak-certificate",
          fmt::format("the IAK certificate {} does not chain to the factory CA: {} (depth {})",
                      QuotedDisplayText(SubjectLine(*checked_.iak)), chain->error, chain->error_depth));
    } else if (!HasIakPolicy(*checked_.iak)) {
      // TCG TPM 2.0 Keys for Device Identity §8.1: the factory vouches for a restricted key it
      // verified in a TPM with this policy. Any other certificate of the unit (its IDevID's) is for
      // an unrestricted key, which signs anything, a forged TPMS_ATTEST too.
      verdict_.Add("iak-certificate",
                   fmt::format("the certificate {} is not an IAK certificate: it lacks the policy {} "
                               "(verifiedTPMRestricted) of a restricted key verified in the TPM",
                               QuotedDisplayText(SubjectLine(*checked_.iak)), kOidPolicyIakRestricted));
    } else {
      checked_.iak_trusted = true;
    }
  }

  static bool HasIakPolicy(const X509& cert) {
    auto policies = CertificatePolicyOids(cert);
    return std::find(policies.begin(), policies.end(), kOidPolicyIakRestricted) != policies.end();
  }

  // 802.1AR 8.8 / TCG TPM 2.0 Keys for Device Identity §8: the IAK certificate names the unit by
  // subject serialNumber, as its IDevID certificate does.
  void CheckSerial() {
    if (!checked_.iak) return;
    auto serials = SubjectAttribute(*checked_.iak, "serialNumber");
    if (!serials || serials->size() != 1) {
      verdict_.Add("iak-serial",
                   fmt::format("the IAK certificate's subject {} does not carry exactly one serialNumber",
                               QuotedDisplayText(SubjectLine(*checked_.iak))));
      checked_.iak_trusted = false;
    } else if (serials->front() != context_.serial) {
      verdict_.Add("iak-serial",
                   fmt::format("the IAK certificate names serial {}, the TLS identity {}",
                               QuotedDisplayText(serials->front()), QuotedDisplayText(context_.serial)));
      checked_.iak_trusted = false;
    }
  }

  // TPM 2.0 Part 2 §10.12.12: only the TPM signs a TPMS_ATTEST that starts with
  // TPM_GENERATED_VALUE; a quote is of type TPM_ST_ATTEST_QUOTE.
  void CheckQuote() {
    auto quote = UnmarshalAttest(evidence_.quote);
    if (!quote) {
      verdict_.Add("quote-malformed", fmt::format("the quote ({} bytes) does not parse: {}",
                                                  evidence_.quote.size(), quote.error().message()));
      return;
    }
    checked_.quote = *quote;
    if (quote->magic != TPM2_GENERATED_VALUE) {
      verdict_.Add("quote-type", fmt::format("magic {:#010x} is not TPM_GENERATED_VALUE ({:#010x})",
                                             quote->magic, TPM2_GENERATED_VALUE));
    } else if (quote->type != TPM2_ST_ATTEST_QUOTE) {
      verdict_.Add("quote-type", fmt::format("type {:#06x} is not TPM_ST_ATTEST_QUOTE ({:#06x})", quote->type,
                                             TPM2_ST_ATTEST_QUOTE));
    } else {
      checked_.is_quote = true;
      checked_.quote_authentic = true;  // until the signature or binding says otherwise
    }
  }

  void CheckSignature() {
    if (!checked_.iak) {
      checked_.quote_authentic = false;
      return;  // no key to check it with; the certificate's finding says why
    }
    auto signature = UnmarshalSignature(evidence_.signature);
    std::optional<std::string> problem;
    if (!signature) {
      problem = "the signature does not parse: " + signature.error().message();
    } else if (EVP_PKEY* key = X509_get0_pubkey(checked_.iak.get()); key == nullptr) {
      problem = "the IAK certificate's public key is not one OpenSSL can use";
    } else if (auto verified = VerifyTpmSignature(*key, evidence_.quote, *signature); !verified) {
      problem = "the quote is not signed by the IAK of the certificate: " + verified.error().message();
    }
    if (problem) {
      verdict_.Add("quote-signature", *problem);
      checked_.quote_authentic = false;
    }
  }

  void CheckQualifyingData() {
    if (!checked_.quote) return;
    const TPM2B_DATA& extra = checked_.quote->extraData;
    const Bytes sent(extra.buffer, extra.buffer + std::min<std::size_t>(extra.size, sizeof(extra.buffer)));
    const Bytes expected = SessionBinding(context_.nonce, context_.exporter);
    if (sent != expected) {
      verdict_.Add(
          "qualifying-data",
          fmt::format("the quote's qualifying data {} is not {}, the binding of this challenge's nonce to "
                      "this TLS session: a quote made for another challenge or session",
                      sent.empty() ? "(empty)" : Hex(sent), Hex(expected)));
      checked_.quote_authentic = false;
    }
  }

  void CheckSelection() {
    if (checked_.is_quote) {
      auto quoted = PcrSelectionFromTpml(checked_.quote->attested.quote.pcrSelect);
      if (!quoted) {
        verdict_.Add("pcr-selection", "the quote's PCR selection: " + quoted.error().message());
        return;
      }
      checked_.quoted = *std::move(quoted);
      if (!checked_.quoted->Covers(policy_.pcrs)) {
        verdict_.Add("pcr-selection", fmt::format("the quote selects {}, which does not cover policy {}'s {}",
                                                  checked_.quoted->ToString(),
                                                  QuotedDisplayText(policy_.name), policy_.pcrs.ToString()));
      }
      if (*checked_.quoted != evidence_.pcrs) {
        verdict_.Add("pcr-selection", fmt::format("the quote selects {}, the values sent are for {}",
                                                  checked_.quoted->ToString(), evidence_.pcrs.ToString()));
      }
    }
    if (!evidence_.pcrs.Covers(policy_.pcrs)) {
      verdict_.Add(
          "pcr-selection",
          fmt::format("the evidence selects {}, which does not cover policy {}'s {}",
                      evidence_.pcrs.ToString(), QuotedDisplayText(policy_.name), policy_.pcrs.ToString()));
    }
  }

  // Part 3 §18.4.1: the quote signs the digest of the selected PCRs' values in selection order.
  void CheckDigest() {
    if (!checked_.quote || !checked_.quoted) return;
    const TPM2B_DIGEST& quoted = checked_.quote->attested.quote.pcrDigest;
    const Bytes signed_digest(quoted.buffer,
                              quoted.buffer + std::min<std::size_t>(quoted.size, sizeof(quoted.buffer)));
    auto digest = PcrCompositeDigest(*checked_.quoted, evidence_.pcr_values);
    if (!digest) {
      verdict_.Add("pcr-digest", "the values sent do not give the quote's PCRs: " + digest.error().message());
    } else if (*digest != signed_digest) {
      verdict_.Add("pcr-digest", fmt::format("the quote's PCR digest is {}, the values sent give {}",
                                             Hex(signed_digest), Hex(*digest)));
    }
  }

  void CheckEventLog() {
    auto log = ParseEventLog(evidence_.event_log);
    if (!log) {
      verdict_.Add("event-log", fmt::format("the event log ({} bytes) does not parse: {}",
                                            evidence_.event_log.size(), log.error().message()));
      return;
    }
    checked_.log = *std::move(log);
  }

  // Each PCR the unit sent must be what its log predicts: a PCR extended after boot, or a log
  // edited after the fact, differs here.
  void CheckReplay() {
    if (!checked_.log) return;
    auto replay = ReplayEventLog(*checked_.log);
    if (!replay) {
      verdict_.Add("event-log", "the event log does not replay: " + replay.error().message());
      return;
    }
    for (const auto& [pcr, sent] : evidence_.pcr_values) {
      auto predicted = replay->find(pcr);
      const Bytes expected = predicted == replay->end() ? InitialPcrValue(pcr) : predicted->second;
      if (expected != sent) {
        verdict_.Add("event-log-replay", fmt::format("PCR {}: the log gives {}, the unit sent {}", pcr,
                                                     Hex(expected), Hex(sent)));
      }
    }
  }

  // Only an authentic quote of a trusted IAK moves the counters: a forged one must not make the
  // unit's next genuine quote look like a rollback.
  void CheckCounters() {
    if (context_.counters == nullptr || !checked_.iak_trusted || !checked_.quote_authentic) return;
    const TPMS_CLOCK_INFO& clock = checked_.quote->clockInfo;
    BootCounters::Counts now{clock.resetCount, clock.restartCount};
    std::optional<BootCounters::Counts> before = context_.counters->Last(context_.serial);
    switch (context_.counters->Observe(context_.serial, now)) {
      case BootCounters::Change::kRollback:
        verdict_.Add("counter-rollback",
                     fmt::format("serial {}: the TPM reports {}, after {} before: its state was rolled back",
                                 QuotedDisplayText(context_.serial), CountsText(now),
                                 before ? CountsText(*before) : "more"));
        break;
      case BootCounters::Change::kReboot:
        verdict_.Add("reboot",
                     fmt::format("serial {}: the TPM reports {}, after {} before: the unit rebooted",
                                 QuotedDisplayText(context_.serial), CountsText(now),
                                 before ? CountsText(*before) : "less"),
                     Severity::kWarning);
        break;
      case BootCounters::Change::kFirst:
      case BootCounters::Change::kSame: break;
    }
  }

  const AttestationEvidence& evidence_;
  const AttestationContext& context_;
  const AttestPolicy& policy_;
  Checked checked_;
  Verdict verdict_;
};

}  // namespace

BootCounters::Change BootCounters::Observe(const std::string& serial, Counts now) {
  std::lock_guard lock(mutex_);
  auto [it, first] = last_.try_emplace(serial, now);
  if (first) return Change::kFirst;
  // TPM 2.0 Part 1 §36.7: resetCount grows on each TPM Reset (and restartCount starts again at 0);
  // restartCount grows on each TPM Restart or Resume.
  auto as_tuple = [](Counts c) { return std::pair{c.reset_count, c.restart_count}; };
  if (as_tuple(now) < as_tuple(it->second)) return Change::kRollback;
  if (as_tuple(now) == as_tuple(it->second)) return Change::kSame;
  it->second = now;
  return Change::kReboot;
}

std::optional<BootCounters::Counts> BootCounters::Last(const std::string& serial) {
  std::lock_guard lock(mutex_);
  auto it = last_.find(serial);
  if (it == last_.end()) return std::nullopt;
  return it->second;
}

nlohmann::json AttestationVerdict::ToJson() const {
  return {{"verdict", attested ? "attested" : "refused"},
          {"policy", policy},
          {"reason", reason},
          {"findings", FindingsJson(findings)}};
}

AttestationVerdict VerifyAttestation(const AttestationEvidence& evidence, const AttestationContext& context) {
  AttestationVerdict verdict;
  verdict.policy = context.policy ? context.policy->name : "";
  verdict.findings = AttestationCheck(evidence, context).Run();
  verdict.attested = verdict.findings.passed();
  const Finding* first = verdict.findings.first_failure();
  verdict.reason = first ? fmt::format("{}: {}", first->id, first->evidence) : "ok";
  return verdict;
}

}  // namespace idevid
