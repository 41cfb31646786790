#include "engine/attestation_forgeries.h"

#include <fmt/format.h>

#include <memory>

#include "core/attestation_wire.h"
#include "core/display_text.h"
#include "core/event_log.h"
#include "core/tpm_context.h"
#include "core/tpm_keys.h"
#include "core/tpm_pcr.h"
#include "engine/process.h"
#include "provisioning/enrolment_station.h"

namespace idevid {
namespace {

using Hook = AttestationHook;

constexpr std::uint32_t kIdevidHandle = 0x81020000;
constexpr std::uint32_t kIdevidNvIndex = 0x01C90000;

Bytes Binding(const AttestationChallenge& challenge, std::span<const std::uint8_t> exporter) {
  return SessionBinding(challenge.nonce, exporter);
}

// The genuine evidence with `change` applied to it.
Hook Changed(std::function<Result<void>(AttestationEvidence&)> change) {
  return [change](const AttestationChallenge& challenge, std::span<const std::uint8_t> exporter,
                  const AttestationProver& genuine) -> Result<AttestationEvidence> {
    IDEVID_ASSIGN_OR_RETURN(AttestationEvidence evidence, genuine.Prove(challenge, exporter));
    IDEVID_TRY(change(evidence));
    return evidence;
  };
}

// A forgery played by one session whose evidence `hook` makes.
AttestationForgery OneSession(std::string name, std::string finding, Hook hook, std::string detail = {}) {
  return {std::move(name), std::move(finding),
          [hook](const AttestationBench& bench) { return AttestOnce(bench, hook); }, std::move(detail)};
}

// PFP §10.2.1: one event of the log claims another digest than the one extended.
AttestationForgery EventDigestChanged() {
  return OneSession("event-digest-changed", "event-log-replay",
                    Changed([](AttestationEvidence& evidence) -> Result<void> {
                      IDEVID_ASSIGN_OR_RETURN(EventLog log, ParseEventLog(evidence.event_log));
                      for (LogEvent& event : log.events) {
                        auto digest = event.digests.find(kAlgSha256);
                        if (event.type == kEvNoAction || digest == event.digests.end()) continue;
                        digest->second.at(0) ^= 0x01;
                        break;
                      }
                      evidence.event_log = EncodeEventLog(log.events);
                      return {};
                    }));
}

// The evidence of an earlier session of the same unit, sent again as it was.
AttestationForgery ReplayedQuote() {
  return {"replayed-quote", "qualifying-data", [](const AttestationBench& bench) -> Result<SsliResult> {
            auto earlier = std::make_shared<std::optional<AttestationEvidence>>();
            IDEVID_ASSIGN_OR_RETURN(
                SsliResult first,
                AttestOnce(
                    bench,
                    [earlier](const AttestationChallenge& challenge, std::span<const std::uint8_t> exporter,
                              const AttestationProver& genuine) -> Result<AttestationEvidence> {
                      IDEVID_ASSIGN_OR_RETURN(AttestationEvidence evidence,
                                              genuine.Prove(challenge, exporter));
                      *earlier = evidence;
                      return evidence;
                    }),
                "the earlier session");
            if (!first.attested()) {
              return UsageError(UsageCode::kWrongState,
                                "the earlier, genuine session was not attested: " + DisplayText(first.body));
            }
            return AttestOnce(
                bench,
                [earlier](const AttestationChallenge&, std::span<const std::uint8_t>,
                          const AttestationProver&) -> Result<AttestationEvidence> { return **earlier; });
          }};
}

// RFC 5705 §4: a quote of this session's nonce bound to the exporter of another session of the
// same unit (a relay: the device answers a challenge forwarded from someone else's session).
AttestationForgery RelayedQuote() {
  return {"relayed-quote", "qualifying-data", [](const AttestationBench& bench) -> Result<SsliResult> {
            auto other = std::make_shared<Bytes>();
            IDEVID_TRY(AttestOnce(bench,
                                  [other](const AttestationChallenge& challenge,
                                          std::span<const std::uint8_t> exporter,
                                          const AttestationProver& genuine) -> Result<AttestationEvidence> {
                                    other->assign(exporter.begin(), exporter.end());
                                    return genuine.Prove(challenge, exporter);
                                  }),
                       "the other session");
            return AttestOnce(bench,
                              [other](const AttestationChallenge& challenge, std::span<const std::uint8_t>,
                                      const AttestationProver& genuine) -> Result<AttestationEvidence> {
                                return genuine.Make({genuine.config().key_handle, challenge.pcrs,
                                                     SessionBinding(challenge.nonce, *other)});
                              });
          }};
}

// A quote made by the IDevID (a signing key of the same TPM, not restricted, not the IAK).
AttestationForgery QuoteByIdevid() {
  return OneSession("quote-by-idevid", "quote-signature",
                    [](const AttestationChallenge& challenge, std::span<const std::uint8_t> exporter,
                       const AttestationProver& genuine) {
                      return genuine.Make({kIdevidHandle, challenge.pcrs, Binding(challenge, exporter)});
                    });
}

// A quote by the IDevID presented with the IDevID's own certificate (same factory, same serial):
// an unrestricted key signs any bytes, so only the IAK certificate's policy can vouch for a quote.
AttestationForgery IdevidCertificateAsIak() {
  return OneSession("idevid-certificate-as-iak", "iak-certificate",
                    [](const AttestationChallenge& challenge, std::span<const std::uint8_t> exporter,
                       const AttestationProver& genuine) -> Result<AttestationEvidence> {
                      IDEVID_ASSIGN_OR_RETURN(
                          AttestationEvidence evidence,
                          genuine.Make({kIdevidHandle, challenge.pcrs, Binding(challenge, exporter)}));
                      AttestationConfig idevid = genuine.config();
                      idevid.nv_index = kIdevidNvIndex;
                      IDEVID_ASSIGN_OR_RETURN(evidence.iak_certificate,
                                              AttestationProver(genuine.tcti(), idevid).ReadIakCertificate(),
                                              "the IDevID certificate");
                      return evidence;
                    });
}

// A quote by the IAK of another TPM, for this session, with this unit's IAK certificate.
AttestationForgery IakOfAnotherTpm() {
  return {"iak-of-another-tpm", "quote-signature", [](const AttestationBench& bench) -> Result<SsliResult> {
            IDEVID_ASSIGN_OR_RETURN(std::string other_tcti, bench.other_tcti());
            return AttestOnce(
                bench,
                [other_tcti](const AttestationChallenge& challenge, std::span<const std::uint8_t> exporter,
                             const AttestationProver& genuine) -> Result<AttestationEvidence> {
                  IDEVID_ASSIGN_OR_RETURN(AttestationEvidence evidence, genuine.Prove(challenge, exporter));
                  IDEVID_ASSIGN_OR_RETURN(TpmContext other, TpmContext::Open(other_tcti));
                  IDEVID_ASSIGN_OR_RETURN(
                      PrimaryKey iak,
                      CreatePrimary(other, ESYS_TR_RH_ENDORSEMENT, IakKeyTemplate(KeyAlgorithm::kEccP256)),
                      "the other TPM's IAK");
                  IDEVID_ASSIGN_OR_RETURN(
                      Attestation quote,
                      Quote(other, iak.object.handle(), challenge.pcrs, Binding(challenge, exporter)),
                      "the other TPM's quote");
                  evidence.quote = std::move(quote.attest);
                  evidence.signature = std::move(quote.signature);
                  return evidence;
                });
          }};
}

// A quote over fewer PCRs than the policy asks for (PCR 9, the OS loader's files, left out).
AttestationForgery NarrowerSelection() {
  return OneSession(
      "narrower-pcr-selection", "pcr-selection",
      [](const AttestationChallenge& challenge, std::span<const std::uint8_t> exporter,
         const AttestationProver& genuine) -> Result<AttestationEvidence> {
        PcrSelection narrower = challenge.pcrs;
        if (narrower.pcrs.size() > 1) narrower.pcrs.pop_back();
        return genuine.Make({genuine.config().key_handle, narrower, Binding(challenge, exporter)});
      });
}

AttestationForgery TruncatedLog() {
  return OneSession("truncated-event-log", "event-log",
                    Changed([](AttestationEvidence& evidence) -> Result<void> {
                      // Cut inside the last event: its data is one byte short.
                      if (!evidence.event_log.empty()) evidence.event_log.pop_back();
                      return {};
                    }));
}

// An event log over kMaxEventLogBytes: the cloud refuses the message before it verifies anything.
AttestationForgery OversizeLog() {
  return OneSession("oversize-event-log", "evidence-malformed",
                    Changed([](AttestationEvidence& evidence) -> Result<void> {
                      evidence.event_log.resize(kMaxEventLogBytes + 1, 0);
                      return {};
                    }));
}

// TPM2_PCR_Extend by tpm2-tools after the boot (a runtime change the log does not record).
AttestationForgery PcrExtendedAfterBoot() {
  return {"pcr-extended-after-boot", "event-log-replay",
          [](const AttestationBench& bench) -> Result<SsliResult> {
            std::vector<std::string> argv{"tpm2_pcrextend", "8:sha256=" + std::string(64, 'a')};
            IDEVID_ASSIGN_OR_RETURN(CommandOutput run, RunCommand(argv, bench.unit->ToolEnvironment()));
            if (run.exit_status != 0) {
              return Fail(ErrorDomain::kProcess, run.status_code,
                          fmt::format("tpm2_pcrextend failed: {}", DisplayText(run.err)));
            }
            auto session = AttestOnce(bench);
            IDEVID_TRY(bench.unit->Reboot(), "rebooting after the extend");
            return session;
          },
          "PCR 8"};
}

// The unit booted with a kernel whose digest the policy does not list.
AttestationForgery KernelNotAllowed() {
  return {"kernel-not-allowed", "event-not-allowed",
          [](const AttestationBench& bench) -> Result<SsliResult> {
            IDEVID_ASSIGN_OR_RETURN(std::filesystem::path profile, bench.unit->OtherKernelProfile());
            IDEVID_TRY(bench.unit->Reboot(profile), "booting another kernel");
            auto session = AttestOnce(bench);
            IDEVID_TRY(bench.unit->Reboot(), "booting the known-good chain again");
            return session;
          },
          "PCR 4, EV_EFI_BOOT_SERVICES_APPLICATION"};
}

bool NamesReboot(const SsliResult& session) {
  const auto& findings =
      session.verdict.is_object() ? session.verdict.value("findings", nlohmann::json()) : nlohmann::json();
  if (!findings.is_array()) return false;
  return std::any_of(findings.begin(), findings.end(), [](const nlohmann::json& f) {
    return f.is_object() && f.value("id", std::string()) == "reboot";
  });
}

Result<void> CopyState(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::error_code ec;
  std::filesystem::remove_all(to, ec);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive, ec);
  if (ec)
    return ErrnoError(ec.value(),
                      fmt::format("cannot copy the TPM state {} to {}", from.string(), to.string()));
  return {};
}

// The TPM's state saved while it was off, then restored after two resets: its resetCount goes
// back below what the cloud last saw (TPM 2.0 Part 1 §36.7: it only grows on one TPM).
AttestationForgery CounterRollback() {
  return {
      "reset-count-rollback", "counter-rollback", [](const AttestationBench& bench) -> Result<SsliResult> {
        std::filesystem::path saved = bench.unit->options().dir / "saved-tpm-state";
        IDEVID_ASSIGN_OR_RETURN(SsliResult first, AttestOnce(bench), "the first attestation");
        if (!first.attested()) {
          return UsageError(UsageCode::kWrongState,
                            "the unit was not attested before the rollback: " + DisplayText(first.body));
        }
        IDEVID_TRY(bench.unit->Reboot(
                       {}, [&](const std::filesystem::path& state) { return CopyState(state, saved); }),
                   "saving the TPM's state");
        IDEVID_TRY(bench.unit->Reboot(), "a second reset");
        IDEVID_ASSIGN_OR_RETURN(SsliResult rebooted, AttestOnce(bench), "the attestation after the resets");
        if (!rebooted.attested() || !NamesReboot(rebooted)) {
          return UsageError(UsageCode::kWrongState,
                            "after two resets the cloud did not attest the unit with a "
                            "reboot warning: " +
                                DisplayText(rebooted.body));
        }
        IDEVID_TRY(bench.unit->Reboot(
                       {}, [&](const std::filesystem::path& state) { return CopyState(saved, state); }),
                   "restoring the saved TPM state");
        auto session = AttestOnce(bench);
        // Two more resets take the counters past what the cloud last saw: the genuine unit is
        // attested again.
        IDEVID_TRY(bench.unit->Reboot(), "a reset after the rollback");
        IDEVID_TRY(bench.unit->Reboot(), "a second reset after the rollback");
        return session;
      }};
}

}  // namespace

Result<SsliResult> AttestOnce(const AttestationBench& bench, AttestationHook prove) {
  IDEVID_ASSIGN_OR_RETURN(auto client, SsliClient::Create({.config = &bench.unit->config(),
                                                           .profile = AttestedUnit::kProfile,
                                                           .tcti = bench.unit->tcti(),
                                                           .host = bench.host,
                                                           .port = bench.port},
                                                          {.prove = std::move(prove)}));
  return client->Connect();
}

std::string RefusalFinding(const SsliResult& session) {
  if (!session.challenge || !session.refused() || !session.verdict.is_object()) return {};
  if (session.verdict.value("verdict", std::string()) != "refused") return {};
  std::string reason = session.verdict.value("reason", std::string());
  return reason.substr(0, reason.find(':'));
}

std::vector<AttestationForgery> AttestationForgeries() {
  return {EventDigestChanged(), ReplayedQuote(),          RelayedQuote(),
          QuoteByIdevid(),      IdevidCertificateAsIak(), IakOfAnotherTpm(),
          NarrowerSelection(),  TruncatedLog(),           OversizeLog(),
          KernelNotAllowed(),   PcrExtendedAfterBoot(),   CounterRollback()};
}

Result<Verdict> JudgeAttestationForgery(const AttestationForgery& forgery, const AttestationBench& bench) {
  IDEVID_ASSIGN_OR_RETURN(SsliResult session, forgery.play(bench), "playing the forgery {}", forgery.name);
  Verdict verdict;
  std::string reason =
      session.verdict.is_object() ? session.verdict.value("reason", std::string()) : session.body;
  if (!session.challenge) {
    verdict.Add("not-challenged", fmt::format("the cloud answered HTTP {} without a challenge: {}",
                                              session.http_status, DisplayText(session.body, 200)));
  } else if (session.attested()) {
    verdict.Add("forgery-attested", fmt::format("the cloud attested the unit despite {}", forgery.name));
  } else if (std::string found = RefusalFinding(session); found != forgery.finding) {
    verdict.Add("wrong-finding", fmt::format("refused as {} ({}); expected {}", QuotedDisplayText(found),
                                             DisplayText(reason, 300), forgery.finding));
  } else if (!forgery.detail_part.empty() && reason.find(forgery.detail_part) == std::string::npos) {
    verdict.Add("wrong-detail", fmt::format("refused for {}; expected it to say {}", DisplayText(reason, 300),
                                            QuotedDisplayText(forgery.detail_part)));
  }
  IDEVID_ASSIGN_OR_RETURN(SsliResult after, AttestOnce(bench), "the genuine unit after {}", forgery.name);
  if (!after.attested()) {
    verdict.Add("genuine-refused-after",
                fmt::format("after {} the cloud answered the genuine unit HTTP {}: {}", forgery.name,
                            after.http_status, DisplayText(after.body, 300)));
  }
  return verdict;
}

}  // namespace idevid
