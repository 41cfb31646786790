// negative: what must fail, failing the right way (each scenario passes when it does).
#include <algorithm>

#include "cloud/cloud_server.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "device/ssli/ssli_client.h"
#include "harness/run/unit_under_test.h"
#include "provisioning/line_check.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

using scenarios::CheckFailed;

SsliConnectRequest TpmSession(UnitUnderTest& unit, std::uint16_t port) {
  return {&unit.config(), "aamw-tpm", std::nullopt, unit.tcti(), "127.0.0.1", port};
}

// The error `result` must have: its domain and a part of its message.
template <typename T>
Result<void> ExpectError(const Result<T>& result, ErrorDomain domain, const std::string& part) {
  if (result) return CheckFailed("it succeeded");
  if (result.error().domain() != domain || result.error().message().find(part) == std::string::npos) {
    return CheckFailed("it failed the wrong way: " + result.error().ToString());
  }
  return {};
}

void CloudWithoutFactoryCa(UnitUnderTest& unit, ScenarioContext& s) {
  s.Phase("a cloud trusting another CA refuses the unit", [&](PhaseContext&) -> Result<void> {
    auto other = InitFactory({.dir = unit.dir() / "other-ca", .force = true});
    if (!other) return Fail(other.error());
    auto cloud = CloudServer::Start({"127.0.0.1", 0, unit.dir() / "cloud.pem", unit.dir() / "cloud.key",
                                     FactoryFiles::Chain(other->dir)});
    if (!cloud) return Fail(cloud.error());
    return ExpectError(SsliConnect(TpmSession(unit, (*cloud)->port())), ErrorDomain::kTls, "refused");
  });
}

void ExpectCheckFailures(ScenarioContext& s, const std::string& name, const TpmContext& tpm,
                         const std::filesystem::path& factory_ca, const CheckRequest& request,
                         const std::vector<std::string>& must_fail) {
  s.Phase(name, [&](PhaseContext&) -> Result<void> {
    auto bundle = LoadTrustBundle(factory_ca);
    if (!bundle) return Fail(bundle.error());
    auto report = CheckUnit(tpm, *bundle, request);
    if (!report) return Fail(report.error());
    auto failures = report->failures();
    for (const auto& m : must_fail) {
      if (std::find(failures.begin(), failures.end(), m) == failures.end()) {
        return CheckFailed(fmt::format("measurement {} did not fail (failed: {})", m, fmt::join(failures, ",")));
      }
    }
    return {};
  });
}

void SerialMismatch(UnitUnderTest& unit, ScenarioContext& s) {
  auto tpm = TpmContext::Open(unit.tcti());
  if (!tpm) {
    s.Phase("open the TPM", [&](PhaseContext&) -> Result<void> { return Fail(tpm.error()); });
    return;
  }
  ExpectCheckFailures(s, "line check names expected_serial", *tpm, unit.factory_ca(),
                      {.expect_serial = "NOT-THIS-UNIT", .expect_model = unit.options().model},
                      {"expected_serial"});
}

// Destructive: on a unit of its own, the certificate in NV replaced by garbage.
void CorruptNvCertificate(UnitUnderTest& unit, ScenarioContext& s) {
  std::optional<SwtpmInstance> swtpm;
  std::optional<TpmContext> tpm;
  s.Phase("provision a disposable unit and corrupt its NV certificate", [&](PhaseContext&) -> Result<void> {
    auto started = SwtpmInstance::Start({.state_dir = unit.dir() / "corrupt", .manufacture = true});
    if (!started) return Fail(started.error());
    swtpm = std::move(*started);
    auto opened = TpmContext::Open(swtpm->tcti());
    if (!opened) return Fail(opened.error());
    tpm = std::move(*opened);
    auto provisioned = ProvisionUnit(*tpm, unit.issuer(), {.serial = "CW-CORRUPT", .model = "SRX4300"});
    if (!provisioned) return Fail(provisioned.error());
    Result<void> step = NvUndefine(*tpm, 0x01C90000);
    if (step) step = NvDefine(*tpm, {.index = 0x01C90000, .size = 64});
    if (step) step = NvWrite(*tpm, 0x01C90000, Bytes(64, 0xA5));
    return step;
  });
  if (tpm) {
    ExpectCheckFailures(s, "line check names certificate_parses", *tpm,
                        FactoryFiles::Chain(unit.issuer().dir), {},
                        {"certificate_parses", "key_matches_certificate"});
  }
}

}  // namespace

std::vector<Scenario> NegativeSuite() {
  return {{"negative", "cloud without the factory CA refuses the unit", CloudWithoutFactoryCa},
          {"negative", "serial mismatch fails the line check", SerialMismatch},
          {"negative", "corrupt certificate in NV fails the line check", CorruptNvCertificate},
          {"negative", "TPM unreachable fails SSL-I before the handshake",
           [](UnitUnderTest& unit, ScenarioContext& s) {
             s.Phase("TPM-mode session with a TPM that does not answer", [&](PhaseContext&) -> Result<void> {
               auto request = TpmSession(unit, unit.cloud().port());
               request.tcti = "swtpm:host=127.0.0.1,port=1";
               return ExpectError(SsliConnect(request), ErrorDomain::kTss, "swtpm:host=127.0.0.1,port=1");
             });
           }}};
}

}  // namespace idevid
