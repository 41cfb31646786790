// negative: what must fail, failing the right way (each scenario passes when it does).
#include <algorithm>
#include <functional>

#include <openssl/ssl.h>

#include "cloud/cloud_server.h"
#include "core/display_text.h"
#include "core/tpm_keys.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "device/pkid/node_local_store.h"
#include "device/ssli/ssli_client.h"
#include "engine/tested_unit.h"
#include "provisioning/line_check.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

using scenarios::CheckAccepted;
using scenarios::ExpectError;

SsliConnectRequest TpmSession(TestedUnit& unit, std::uint16_t port) {
  return {&unit.config(), "aamw-tpm", std::nullopt, unit.tcti(), "127.0.0.1", port};
}

void CloudWithoutFactoryCa(TestedUnit& unit, ScenarioContext& s) {
  s.Phase("a cloud trusting another CA refuses the unit", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(auto other, InitFactory({.dir = unit.dir() / "other-ca", .force = true}));
    IDEVID_ASSIGN_OR_RETURN(auto cloud,
                            CloudServer::Start({"127.0.0.1", 0, unit.dir() / "cloud.pem",
                                                unit.dir() / "cloud.key", FactoryFiles::Chain(other.dir)}),
                            "starting a cloud that trusts another CA");
    IDEVID_ASSIGN_OR_RETURN(SsliResult session, SsliConnect(TpmSession(unit, cloud->port())));
    if (!session.refused()) {
      p.Finding("unknown-ca-accepted", fmt::format("a cloud without the factory CA answered HTTP {}: {}",
                                                   session.http_status, DisplayText(session.body)));
    } else if (session.refusal->alert != SSL_AD_UNKNOWN_CA) {
      p.Finding("wrong-refusal", "expected the TLS alert unknown CA (48), got " + session.refusal->reason);
    }
    return {};
  });
}

// A phase: the line check of the TPM behind `tcti` against `factory_ca` names every one of
// `must_fail` among its failed measurements.
void ExpectCheckFailures(ScenarioContext& s, const std::string& name, const std::string& tcti,
                         const std::filesystem::path& factory_ca, const CheckRequest& request,
                         const std::vector<std::string>& must_fail) {
  s.Phase(name, [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(auto tpm, TpmContext::Open(tcti));
    IDEVID_ASSIGN_OR_RETURN(auto bundle, LoadTrustBundle(factory_ca));
    IDEVID_ASSIGN_OR_RETURN(auto report, CheckUnit(tpm, bundle, request), "the line check");
    auto failures = report.failures();
    for (const auto& m : must_fail) {
      if (std::find(failures.begin(), failures.end(), m) == failures.end()) {
        p.Finding(m + "-passed",
                  fmt::format("measurement {} did not fail (failed: {})", m, fmt::join(failures, ",")));
      }
    }
    return {};
  });
}

// A phase: pkid's boot load of idev-id from the TPM behind `tcti` refuses it, saying `part`.
void ExpectBootLoadRefused(TestedUnit& unit, ScenarioContext& s, const std::string& tcti,
                           const std::string& part) {
  s.Phase("pkid's boot load refuses idev-id", [&](PhaseContext& p) -> Result<void> {
    StoreEntry entry =
        LoadIdevidEntry(unit.config().idevid, tcti, [] { return std::chrono::system_clock::now(); });
    if (entry.status.loaded) {
      p.Finding("spoiled-idevid-loaded", "pkid's boot load loaded the spoiled idev-id");
    } else {
      p.ExpectContains("refusal-does-not-say-why", entry.status.error, part);
    }
    return {};
  });
}

void SerialMismatch(TestedUnit& unit, ScenarioContext& s) {
  ExpectCheckFailures(s, "line check names expected_serial", unit.tcti(), unit.factory_ca(),
                      {.expect_serial = "NOT-THIS-UNIT", .expect_model = unit.options().model},
                      {"expected_serial"});
}

void ModelMismatch(TestedUnit& unit, ScenarioContext& s) {
  ExpectCheckFailures(s, "line check names expected_model", unit.tcti(), unit.factory_ca(),
                      {.expect_serial = unit.options().serial, .expect_model = "NOT-THIS-MODEL"},
                      {"expected_model"});
}

// The line checks the unit against another factory's CA: the chain does not verify.
void WrongFactoryCa(TestedUnit& unit, ScenarioContext& s) {
  std::filesystem::path other_ca;
  s.Phase("create another factory", [&](PhaseContext&) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(auto other, InitFactory({.dir = unit.dir() / "wrong-ca", .force = true}));
    other_ca = FactoryFiles::Chain(other.dir);
    return {};
  });
  ExpectCheckFailures(s, "line check names chain_to_factory_ca", unit.tcti(), other_ca, {},
                      {"chain_to_factory_ca"});
}

// A phase: a unit of its own on a fresh swtpm in `name` under the bench's directory (so
// destructive scenarios never touch the unit under test), provisioned by the bench's issuer,
// then spoiled by `spoil`. Its TPM connection is closed again, so that checks can open theirs.
bool DisposableUnitPhase(TestedUnit& unit, ScenarioContext& s, const std::string& name,
                         std::optional<SwtpmInstance>& swtpm,
                         const std::function<Result<void>(const TpmContext&)>& spoil) {
  return s.Phase("provision a disposable unit", [&](PhaseContext&) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(swtpm,
                            SwtpmInstance::Start({.state_dir = unit.dir() / name, .manufacture = true}));
    IDEVID_ASSIGN_OR_RETURN(auto tpm, TpmContext::Open(swtpm->tcti()));
    IDEVID_TRY(ProvisionUnit(tpm, unit.issuer(), {.serial = "CW-" + name, .model = "SRX4300"}),
               "provisioning the disposable unit");
    IDEVID_TRY(spoil(tpm), "spoiling the disposable unit");
    return {};
  });
}

// Destructive: on a unit of its own, the certificate in NV replaced by garbage.
void CorruptNvCertificate(TestedUnit& unit, ScenarioContext& s) {
  std::optional<SwtpmInstance> swtpm;
  bool ready = DisposableUnitPhase(unit, s, "corrupt", swtpm, [](const TpmContext& tpm) -> Result<void> {
    IDEVID_TRY(NvUndefine(tpm, 0x01C90000));
    IDEVID_TRY(NvDefine(tpm, {.index = 0x01C90000, .size = 64}));
    return NvWrite(tpm, 0x01C90000, Bytes(64, 0xA5));
  });
  if (!ready) return;
  ExpectCheckFailures(s, "line check names certificate_parses", swtpm->tcti(),
                      FactoryFiles::Chain(unit.issuer().dir), {},
                      {"certificate_parses", "key_matches_certificate"});
  ExpectBootLoadRefused(unit, s, swtpm->tcti(), "NV 0x01c90000 does not hold a certificate");
}

// Destructive: on a unit of its own, the NV index of the certificate undefined.
void MissingNvCertificate(TestedUnit& unit, ScenarioContext& s) {
  std::optional<SwtpmInstance> swtpm;
  bool ready = DisposableUnitPhase(unit, s, "missing", swtpm,
                                   [](const TpmContext& tpm) { return NvUndefine(tpm, 0x01C90000); });
  if (!ready) return;
  ExpectCheckFailures(s, "line check names nv_certificate_present", swtpm->tcti(),
                      FactoryFiles::Chain(unit.issuer().dir), {}, {"nv_certificate_present"});
  ExpectBootLoadRefused(unit, s, swtpm->tcti(), "NV index 0x01c90000 is not defined");
}

// Destructive: on a unit of its own, another key persisted at the IDevID key handle.
void KeyMismatch(TestedUnit& unit, ScenarioContext& s) {
  std::optional<SwtpmInstance> swtpm;
  bool ready = DisposableUnitPhase(unit, s, "mismatch", swtpm, [](const TpmContext& tpm) -> Result<void> {
    IDEVID_TRY(UnpersistKey(tpm, 0x81020000));
    IDEVID_ASSIGN_OR_RETURN(auto other,
                            CreatePrimary(tpm, ESYS_TR_RH_OWNER, IdevidKeyTemplate(KeyAlgorithm::kRsa2048)));
    return PersistKey(tpm, other.object, 0x81020000);
  });
  if (!ready) return;
  ExpectCheckFailures(s, "line check names key_matches_certificate", swtpm->tcti(),
                      FactoryFiles::Chain(unit.issuer().dir), {}, {"key_matches_certificate"});
  ExpectBootLoadRefused(unit, s, swtpm->tcti(), "does not match the certificate");
  s.Phase("SSL-I refuses a TPM-mode session before the handshake", [&](PhaseContext& p) -> Result<void> {
    auto request = TpmSession(unit, unit.cloud().port());
    request.tcti = swtpm->tcti();
    return ExpectError(p, SsliConnect(request), ErrorDomain::kVerify,
                       "does not match the idev-id certificate", "mismatched-key-used");
  });
}

// The TPM goes away in the middle of a run and comes back: the session while it is gone fails
// as an infrastructure error naming the TPM, and the next session after it is back works.
void TpmUnreachableMidRun(TestedUnit& unit, ScenarioContext& s) {
  std::optional<SwtpmInstance> swtpm;
  if (!DisposableUnitPhase(unit, s, "unreachable", swtpm, [](const TpmContext&) { return Result<void>{}; }))
    return;
  auto session = [&] {
    auto request = TpmSession(unit, unit.cloud().port());
    request.tcti = swtpm->tcti();
    return SsliConnect(request);
  };
  auto accepted = [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(SsliResult result, session());
    return CheckAccepted(p, result);
  };
  s.Phase("a TPM-mode session works", [&](PhaseContext& p) { return accepted(p); });
  s.Phase("the TPM stops: the session fails naming it", [&](PhaseContext& p) -> Result<void> {
    std::string tcti = swtpm->tcti();
    swtpm->Stop();
    return ExpectError(p, session(), ErrorDomain::kTss, tcti, "session-without-tpm");
  });
  s.Phase("the TPM is back: the next session works", [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(
        swtpm, SwtpmInstance::Start({.state_dir = unit.dir() / "unreachable", .port = swtpm->port()}));
    return accepted(p);
  });
}

}  // namespace

std::vector<Scenario> NegativeSuite() {
  return {
      {"negative", "cloud without the factory CA refuses the unit", CloudWithoutFactoryCa},
      {"negative", "serial mismatch fails the line check", SerialMismatch},
      {"negative", "model mismatch fails the line check", ModelMismatch},
      {"negative", "a line with another factory's CA fails the chain check", WrongFactoryCa},
      {"negative", "corrupt certificate in NV fails the line check and the boot load", CorruptNvCertificate},
      {"negative", "missing certificate in NV fails the line check and the boot load", MissingNvCertificate},
      {"negative", "a key that does not match idev-id is refused everywhere", KeyMismatch},
      {"negative", "TPM unreachable mid-run fails that session; the next one works", TpmUnreachableMidRun},
      {"negative", "TPM unreachable fails SSL-I before the handshake",
       [](TestedUnit& unit, ScenarioContext& s) {
         s.Phase("TPM-mode session with a TPM that does not answer", [&](PhaseContext& p) -> Result<void> {
           auto request = TpmSession(unit, unit.cloud().port());
           request.tcti = "swtpm:host=127.0.0.1,port=1";
           return ExpectError(p, SsliConnect(request), ErrorDomain::kTss, "swtpm:host=127.0.0.1,port=1",
                              "session-without-tpm");
         });
       }}};
}

}  // namespace idevid
