#include "bench/bench_record.h"

#include <fmt/format.h>

#include <string_view>

namespace idevid {
namespace {

// Targets on swtpm (2 cores); see the README's Performance section.
// Against tpm2-openssl one client has measured from 28x to 50x on these machines from day to day
// (tpm2-openssl's ~130 ms is fixed; ours follows the machine's speed): the gate catches the loss
// of the order of magnitude, not the machine's mood.
constexpr double kHandshakesVsTpm2Openssl = 20;
constexpr double kHandshakesVsFileMode = 0.5;
constexpr double kSignerVsRawSign = 1 / 1.10;  // at most 10% more time per signature
constexpr double kBootVsTpm2Tools = 5;
constexpr double kTwoInstancesVsOne = 1.6;
constexpr double kTwoStationsVsOne = 1.6;        // enrolment through one service
constexpr double kLedgerPerUnit = 1 / 1.10;      // the SQLite ledger adds at most 10% to a unit
constexpr double kPostgresqlFourStations = 0.9;  // 4 stations on PostgreSQL against 4 with none
constexpr double kRunBudgetSeconds = 60;
// Quote and verification in-process against tpm2_quote + tpm2_checkquote processes.
constexpr double kAttestationVsTpm2Tools = 10;

void AddHandshakes(std::vector<ComparisonSpec>& specs) {
  for (const char* version : {"1.3", "1.2"}) {
    for (int clients : {1, 4, 16}) {
      auto name = fmt::format("handshake/tls{}/c{}/", version, clients);
      auto title =
          fmt::format("TPM-mode handshakes, TLS {}, {} client{}", version, clients, clients == 1 ? "" : "s");
      // tpm2-openssl 1.1.1 makes no client-authenticated TLS 1.2 handshake: nothing to compare.
      bool tls12 = std::string_view(version) == "1.2";
      specs.push_back({title, name + "ours", name + "tpm2-openssl", "ratio_vs_tpm2_openssl",
                       tls12 ? std::nullopt : std::optional<double>(kHandshakesVsTpm2Openssl), !tls12, 0,
                       tls12 ? "tpm2-openssl 1.1.1 makes no client-authenticated TLS 1.2 handshake" : ""});
      specs.push_back(
          {title, name + "ours", name + "file", "ratio_vs_file_mode", kHandshakesVsFileMode, true, 0, ""});
    }
  }
}

// The line with a ledger against the same line without, and with the CA's key in a token; each
// pair measured in one benchmark (bench/provisioning_benchmark.cc, PairedLines).
void AddLedgers(std::vector<ComparisonSpec>& specs) {
  for (const char* ledger : {"sqlite", "postgresql"}) {
    for (int stations : {1, 4}) {
      // The targets: one unit on SQLite, 4 stations on PostgreSQL. Reported, not gated: on swtpm,
      // where a unit takes ~15 ms, a durable commit on this machine's disk (~0.4 ms) and
      // PostgreSQL's CPU on 2 cores still miss them (README, Performance).
      bool sqlite = std::string_view(ledger) == "sqlite";
      std::optional<double> target;
      if (sqlite && stations == 1) target = kLedgerPerUnit;
      if (!sqlite && stations == 4) target = kPostgresqlFourStations;
      specs.push_back({fmt::format("Units per minute, {} station{}, {} ledger", stations,
                                   stations == 1 ? "" : "s", sqlite ? "SQLite" : "PostgreSQL"),
                       fmt::format("ledger/{}/n{}", ledger, stations),
                       fmt::format("ledger_paired/{}/n{}", ledger, stations), "ratio_vs_no_ledger", target,
                       false, 0, "reserve, provision, line check, commit; paired with no ledger"});
    }
  }
  specs.push_back({"Units per minute, issuing CA key in SoftHSM2", "hsm_key/n1", "hsm_key_paired/n1",
                   "ratio_vs_file_key", std::nullopt, false, 0,
                   "1 station, no ledger; each certificate signed in the token, paired with the key file"});
}

}  // namespace

const char* TargetStatusName(TargetStatus s) {
  switch (s) {
    case TargetStatus::kMet: return "met";
    case TargetStatus::kMissed: return "MISSED";
    case TargetStatus::kNoTarget: return "-";
    case TargetStatus::kNotMeasured: return "not measured";
  }
  return "?";
}

std::vector<ComparisonSpec> BenchComparisons(const std::string& identity_algorithm) {
  std::vector<ComparisonSpec> specs;
  specs.push_back({fmt::format("Our signer ({}) over raw TPM2_Sign", identity_algorithm),
                   "signer/" + identity_algorithm, "raw_sign_paired/" + identity_algorithm,
                   "ratio_vs_raw_tpm2_sign", kSignerVsRawSign, true, 0, "overhead <= 10% per signature"});
  AddHandshakes(specs);
  specs.push_back({"Boot load: pkid's load of idev-id at start", "boot/pkid_load", "boot/tpm2_tools",
                   "ratio_vs_tpm2_tools", kBootVsTpm2Tools, true, 0,
                   "in pkid, against tpm2_nvread + tpm2_readpublic processes"});
  specs.push_back({"Boot load: pkid process start to idev-id loaded", "boot/pkid_process", "boot/tpm2_tools",
                   "ratio_vs_tpm2_tools", kBootVsTpm2Tools, false, 0,
                   "exec and dynamic linking of pkid included"});
  specs.push_back({"Units per minute, 2 swtpm instances", "provision_parallel/n2", "provision_parallel/n1",
                   "ratio_vs_one_instance", kTwoInstancesVsOne, true, 0, "provisioning and line check"});
  specs.push_back({"Units per minute, 4 swtpm instances", "provision_parallel/n4", "provision_parallel/n1",
                   "ratio_vs_one_instance", std::nullopt, false, 0, "provisioning and line check"});
  AddLedgers(specs);
  for (const char* alg : {"ecc-p256", "rsa-2048"}) {
    specs.push_back({fmt::format("TCG enrolment of one unit ({}) over local provisioning", alg),
                     fmt::format("enrol/{}", alg), fmt::format("provision/{}", alg),
                     "ratio_vs_local_provisioning", std::nullopt, false, 0,
                     "IAK, certify, TCG-CSR-IDEVID, credential activation, two NV writes"});
  }
  specs.push_back({"Units per minute through one factory serve, 2 stations", "enrol_service/n2",
                   "enrol_service/n1", "ratio_vs_one_station", kTwoStationsVsOne, true, 0,
                   "TCG enrolment over HTTPS, one service"});
  specs.push_back({"Units per minute through one factory serve, 4 stations", "enrol_service/n4",
                   "enrol_service/n1", "ratio_vs_one_station", std::nullopt, false, 0,
                   "TCG enrolment over HTTPS, one service"});
  specs.push_back({"Attested connection over the plain TPM-mode handshake", "attest/connection",
                   "attest/handshake", "ratio_vs_plain_handshake", std::nullopt, false, 0,
                   "handshake, quote, verification; one unit, clouds with and without a policy"});
  specs.push_back({"Attestation: quote and verification in-process", "attest/quote_verify",
                   "attest/tpm2_tools", "ratio_vs_tpm2_tools", kAttestationVsTpm2Tools, true, 0,
                   "TPM2_Quote and VerifyAttestation against tpm2_quote + tpm2_checkquote processes"});
  specs.push_back({"idevid run, all suites, embedded default", "idevid_run/embedded", "",
                   "ratio_vs_60s_budget", 1.0, true, 1 / kRunBudgetSeconds, "wall time under 60 s"});
  return specs;
}

std::vector<Comparison> Compare(const std::vector<ComparisonSpec>& specs,
                                const std::map<std::string, BenchFigure>& figures) {
  auto rate = [&](const std::string& name) -> std::optional<double> {
    auto it = figures.find(name);
    if (it == figures.end() || !it->second.error.empty() || it->second.per_second <= 0) return std::nullopt;
    return it->second.per_second;
  };
  std::vector<Comparison> out;
  for (const auto& spec : specs) {
    Comparison c{spec};
    c.ours_per_second = rate(spec.ours);
    c.comparator_per_second =
        spec.comparator.empty() ? std::optional<double>(spec.budget_per_second) : rate(spec.comparator);
    if (c.ours_per_second && c.comparator_per_second && *c.comparator_per_second > 0) {
      c.ratio = *c.ours_per_second / *c.comparator_per_second;
      c.status = !spec.target               ? TargetStatus::kNoTarget
                 : *c.ratio >= *spec.target ? TargetStatus::kMet
                                            : TargetStatus::kMissed;
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<const Comparison*> GatesIn(const std::vector<Comparison>& comparisons, TargetStatus status) {
  std::vector<const Comparison*> found;
  for (const auto& c : comparisons) {
    if (c.spec.gated && c.status == status) found.push_back(&c);
  }
  return found;
}

}  // namespace idevid
