// Remote attestation on a disposable attested unit (an enrolled, booted swtpm; never the target):
// the attested connection (handshake, quote, verification) beside the plain TPM-mode handshake
// of the same unit to a cloud with the same certificates but no policy; our quote and verifier
// (TPM2_Quote through core and VerifyAttestation in-process) against tpm2_quote + tpm2_checkquote
// processes doing the same quote and check; and the cloud's verification of one attestation alone.
#include <fmt/format.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>

#include "bench/bench_registry.h"
#include "cloud/attest_policy.h"
#include "cloud/attestation_verifier.h"
#include "cloud/cloud_server.h"
#include "core/attestation_wire.h"
#include "core/display_text.h"
#include "core/event_log.h"
#include "core/file_io.h"
#include "core/tpm_keys.h"
#include "core/tpm_nv.h"
#include "core/tpm_pcr.h"
#include "core/x509.h"
#include "engine/attested_unit.h"
#include "engine/process.h"
#include "provisioning/enrolment_station.h"
#include "provisioning/factory.h"

namespace idevid {
namespace {

// The unit, its policy and the two clouds, made by the first benchmark that asks (all of them
// run on the main thread: a child process dies with the thread that started it).
struct AttestationRig {
  std::unique_ptr<AttestedUnit> unit;
  AttestPolicy policy;
  ossl::UniquePtr<X509_STORE> factory_ca;
  Bytes event_log;
  Bytes iak_certificate;
  std::unique_ptr<CloudServer> attesting;  // with the policy
  std::unique_ptr<CloudServer> plain;      // the same without it
  std::unique_ptr<SsliClient> client_attested;
  std::unique_ptr<SsliClient> client_plain;
};

Result<ossl::UniquePtr<X509_STORE>> StoreOf(const std::filesystem::path& bundle) {
  IDEVID_ASSIGN_OR_RETURN(std::vector<ossl::Cert> certs, LoadCertificateBundle(bundle));
  ossl::UniquePtr<X509_STORE> store(X509_STORE_new());
  if (!store) return Fail(ErrorDomain::kOpenSsl, 0, "X509_STORE_new failed");
  for (const auto& cert : certs) {
    if (X509_STORE_add_cert(store.get(), cert.get()) != 1)
      return Fail(ErrorDomain::kOpenSsl, 0, "cannot add a factory CA certificate to the store");
  }
  return store;
}

Result<std::unique_ptr<CloudServer>> StartCloud(BenchContext& context,
                                                std::optional<std::filesystem::path> policy,
                                                const std::string& name) {
  const auto& d = context.unit().dir();
  return CloudServer::Start({.certificate = d / "cloud.pem",
                             .private_key = d / "cloud.key",
                             .factory_ca = FactoryFiles::Chain(context.unit().issuer().dir),
                             .log = context.options().work_dir / (name + ".jsonl"),
                             .attest_policy = std::move(policy)});
}

Result<std::unique_ptr<SsliClient>> ClientTo(const AttestedUnit& unit, const CloudServer& cloud) {
  return SsliClient::Create({.config = &unit.config(),
                             .profile = AttestedUnit::kProfile,
                             .tcti = unit.tcti(),
                             .host = "127.0.0.1",
                             .port = cloud.port()});
}

Result<void> MakeRig(BenchContext& context, AttestationRig& rig) {
  auto base = context.options().work_dir / "attestation";
  IDEVID_ASSIGN_OR_RETURN(rig.unit, AttestedUnit::Create({.stock = base / "stock",
                                                          .dir = base / "unit",
                                                          .factory_dir = context.unit().issuer().dir,
                                                          .serial = "BENCH-ATTEST"}));
  IDEVID_ASSIGN_OR_RETURN(rig.event_log, ReadFileBytes(rig.unit->event_log()));
  IDEVID_ASSIGN_OR_RETURN(EventLog log, ParseEventLog(rig.event_log));
  IDEVID_ASSIGN_OR_RETURN(PcrSelection pcrs, ParsePcrSelection(rig.unit->options().pcrs));
  rig.policy = PolicyFromLog(log, "bench-golden", pcrs);
  IDEVID_TRY(WriteFileAtomic(base / "policy.yaml", AttestPolicyYaml(rig.policy)));
  IDEVID_ASSIGN_OR_RETURN(rig.factory_ca, StoreOf(FactoryFiles::Chain(context.unit().issuer().dir)));
  {
    IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(rig.unit->tcti()));
    IDEVID_ASSIGN_OR_RETURN(rig.iak_certificate, NvRead(tpm, kDefaultIakNvIndex), "the IAK certificate");
  }
  IDEVID_ASSIGN_OR_RETURN(rig.attesting, StartCloud(context, base / "policy.yaml", "attest-cloud"));
  IDEVID_ASSIGN_OR_RETURN(rig.plain, StartCloud(context, std::nullopt, "plain-cloud"));
  IDEVID_ASSIGN_OR_RETURN(rig.client_attested, ClientTo(*rig.unit, *rig.attesting));
  IDEVID_ASSIGN_OR_RETURN(rig.client_plain, ClientTo(*rig.unit, *rig.plain));
  return {};
}

Result<AttestationRig*> Rig(BenchContext& context) {
  static AttestationRig rig;
  static std::optional<Error> failed;
  if (failed) return Fail(*failed);
  if (!rig.unit) {
    if (auto made = MakeRig(context, rig); !made) {
      failed = made.error();
      rig = {};
      return Fail(made.error());
    }
  }
  return &rig;
}

Result<void> Session(const SsliClient& client, bool attested) {
  IDEVID_ASSIGN_OR_RETURN(SsliResult r, client.Connect());
  if (attested ? r.attested() : (r.accepted() && !r.challenge)) return {};
  return Fail(ErrorDomain::kVerify, X509_V_ERR_APPLICATION_VERIFICATION,
              fmt::format("the cloud answered HTTP {} (expected {}): {}", r.http_status,
                          attested ? "attested" : "accepted without a challenge", DisplayText(r.body, 300)));
}

Bytes RandomBytes(std::size_t n) {
  Bytes out(n);
  RAND_bytes(out.data(), static_cast<int>(out.size()));
  return out;
}

// A session's worth of verification state: a fresh nonce and exporter.
struct Round {
  Bytes nonce = RandomBytes(kAttestationNonceBytes);
  Bytes exporter = RandomBytes(kAttestationExporterBytes);
};

Result<void> Attested(const AttestationVerdict& verdict) {
  if (verdict.attested) return {};
  return Fail(ErrorDomain::kVerify, X509_V_ERR_APPLICATION_VERIFICATION,
              "the verifier refused the unit's own evidence: " + verdict.reason);
}

AttestationContext ContextFor(AttestationRig& rig, const Round& round, BootCounters& counters) {
  return {.serial = rig.unit->options().serial,
          .nonce = round.nonce,
          .exporter = round.exporter,
          .factory_ca = rig.factory_ca.get(),
          .policy = &rig.policy,
          .counters = &counters};
}

// TPM2_Quote by the IAK, the PCRs read, and the verdict: what the device and the cloud do.
Result<AttestationEvidence> QuoteNow(AttestationRig& rig, const TpmContext& tpm, const EsysReference& iak,
                                     const Round& round) {
  const PcrSelection& pcrs = rig.policy.pcrs;
  IDEVID_ASSIGN_OR_RETURN(Attestation quote,
                          Quote(tpm, iak.handle(), pcrs, SessionBinding(round.nonce, round.exporter)));
  IDEVID_ASSIGN_OR_RETURN(PcrValues values, ReadPcrs(tpm, pcrs));
  return AttestationEvidence{.quote = std::move(quote.attest),
                             .signature = std::move(quote.signature),
                             .pcrs = pcrs,
                             .pcr_values = std::move(values),
                             .event_log = rig.event_log,
                             .iak_certificate = rig.iak_certificate};
}

void QuoteAndVerify(benchmark::State& state, BenchContext& context) {
  auto rig = Rig(context);
  std::optional<TpmContext> tpm;
  std::optional<EsysReference> iak;
  if (Usable(state, rig)) {
    auto opened = TpmContext::Open((*rig)->unit->tcti());
    if (Usable(state, opened)) tpm = std::move(*opened);
  }
  if (tpm) {
    auto key = ReferencePersistentKey(*tpm, kDefaultIakKeyHandle);
    if (Usable(state, key)) iak = std::move(*key);
  }
  BootCounters counters;
  for (auto _ : state) {
    Round round;
    auto evidence = QuoteNow(**rig, *tpm, *iak, round);
    auto step = evidence.and_then([&](const AttestationEvidence& e) {
      return Attested(VerifyAttestation(e, ContextFor(**rig, round, counters)));
    });
    if (!Continue(state, step)) break;
  }
  CountRate(state);
}

// tpm2_quote and tpm2_checkquote with the IAK's public key, as a verifier using tpm2-tools would.
Result<void> Tpm2ToolsQuote(AttestationRig& rig, const std::filesystem::path& dir,
                            const std::string& iak_pem) {
  std::string nonce = Hex(RandomBytes(32));
  auto at = [&](const char* name) { return (dir / name).string(); };
  std::string pcrs = rig.policy.pcrs.ToString();
  for (const auto& argv :
       {std::vector<std::string>{"tpm2_quote", "-c", fmt::format("{:#x}", kDefaultIakKeyHandle), "-l", pcrs,
                                 "-q", nonce, "-m", at("quote.msg"), "-s", at("quote.sig"), "-o",
                                 at("quote.pcrs"), "-g", "sha256"},
        std::vector<std::string>{"tpm2_checkquote", "-u", iak_pem, "-m", at("quote.msg"), "-s",
                                 at("quote.sig"), "-f", at("quote.pcrs"), "-g", "sha256", "-q", nonce}}) {
    IDEVID_ASSIGN_OR_RETURN(CommandOutput run, RunCommand(argv, rig.unit->ToolEnvironment()));
    if (run.exit_status != 0) {
      return Fail(ErrorDomain::kProcess, run.status_code,
                  fmt::format("{} failed: {}", argv[0], DisplayText(run.err, 300)));
    }
  }
  return {};
}

void Tpm2Tools(benchmark::State& state, BenchContext& context) {
  auto rig = Rig(context);
  auto dir = context.options().work_dir / "attestation" / "tpm2-tools";
  std::string iak_pem = (dir / "iak.pem").string();
  if (Usable(state, rig)) {
    std::filesystem::create_directories(dir);
    // The IAK's public key, read once (untimed), as a verifier holds it.
    auto read = RunCommand(
        {"tpm2_readpublic", "-c", fmt::format("{:#x}", kDefaultIakKeyHandle), "-f", "pem", "-o", iak_pem},
        (*rig)->unit->ToolEnvironment());
    if (Usable(state, read) && read->exit_status != 0) {
      Usable(state, Result<void>(Fail(ErrorDomain::kProcess, read->status_code,
                                      "tpm2_readpublic failed: " + DisplayText(read->err, 300))));
    }
  }
  for (auto _ : state) {
    if (!Continue(state, Tpm2ToolsQuote(**rig, dir, iak_pem))) break;
  }
  CountRate(state);
}

// The cloud's check of one attestation, on evidence made once.
void VerifyOnly(benchmark::State& state, BenchContext& context) {
  auto rig = Rig(context);
  Round round;
  std::optional<AttestationEvidence> evidence;
  if (Usable(state, rig)) {
    auto made = TpmContext::Open((*rig)->unit->tcti()).and_then([&](TpmContext tpm) {
      return ReferencePersistentKey(tpm, kDefaultIakKeyHandle).and_then([&](EsysReference iak) {
        return QuoteNow(**rig, tpm, iak, round);
      });
    });
    if (Usable(state, made)) evidence = std::move(*made);
  }
  BootCounters counters;
  for (auto _ : state) {
    if (!Continue(state, Attested(VerifyAttestation(*evidence, ContextFor(**rig, round, counters))))) break;
  }
  CountRate(state);
}

}  // namespace

void RegisterAttestationBenchmarks(BenchContext& context) {
  for (bool attested : {true, false}) {
    AddBenchmark(context, attested ? "attest/connection" : "attest/handshake", "sessions",
                 [&context, attested](benchmark::State& state) {
                   auto rig = Rig(context);
                   Usable(state, rig);
                   for (auto _ : state) {
                     const SsliClient& client = attested ? *(*rig)->client_attested : *(*rig)->client_plain;
                     if (!Continue(state, Session(client, attested))) break;
                   }
                   CountRate(state);
                 });
  }
  AddBenchmark(context, "attest/quote_verify", "attestations",
               [&context](benchmark::State& state) { QuoteAndVerify(state, context); });
  AddBenchmark(context, "attest/tpm2_tools", "attestations",
               [&context](benchmark::State& state) { Tpm2Tools(state, context); });
  AddBenchmark(context, "attest/verify_only", "verifications",
               [&context](benchmark::State& state) { VerifyOnly(state, context); });
}

}  // namespace idevid
