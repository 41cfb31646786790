// ssli-tpm and ssli-file: client-authenticated TLS to the cloud in each mode; the cloud must see
// the unit's serial and model.
#include "device/ssli/ssli_client.h"
#include "engine/tested_unit.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

void Handshake(TestedUnit& unit, ScenarioContext& s, const std::string& profile, const std::string& protocol,
               bool through_pkid) {
  auto socket = unit.dir() / (profile + ".sock");
  std::optional<ChildProcess> pkid;
  if (through_pkid) {
    scenarios::StartPkidPhase(unit, s, socket, pkid);
  }
  s.Phase(
      fmt::format("{} handshake with profile {}", protocol, profile), [&](PhaseContext& p) -> Result<void> {
        SsliConnectRequest request{&unit.config(), profile,     std::nullopt,
                                   unit.tcti(),    "127.0.0.1", unit.cloud().port()};
        if (through_pkid) request.pkid_socket = socket;
        auto start = std::chrono::steady_clock::now();
        IDEVID_ASSIGN_OR_RETURN(SsliResult result, SsliConnect(request));
        p.Measure("session",
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count(),
                  "ms");
        if (result.protocol != protocol) {
          p.Finding("wrong-protocol", fmt::format("negotiated {}, expected {}", result.protocol, protocol));
        }
        IDEVID_TRY(scenarios::CheckAccepted(p, result));
        if (result.accepted() && (result.verdict["serial"] != unit.options().serial ||
                                  result.verdict["model"] != unit.options().model)) {
          p.Finding("cloud-saw-another-unit", fmt::format("the cloud saw {}, expected serial {} model {}",
                                                          DisplayText(result.verdict.dump()),
                                                          unit.options().serial, unit.options().model));
        }
        if (result.tpm_mode)
          p.Measure("tpm_signatures", static_cast<double>(result.tpm_signatures), "count", 1.0, 1.0);
        return {};
      });
}

}  // namespace

std::vector<Scenario> SsliSuites() {
  return {{"ssli-tpm", "TLS 1.3 with the TPM key, idev-id from pkid",
           [](TestedUnit& u, ScenarioContext& s) { Handshake(u, s, "aamw-tpm", "TLSv1.3", true); }},
          {"ssli-tpm", "TLS 1.2 with the TPM key, idev-id from NV",
           [](TestedUnit& u, ScenarioContext& s) { Handshake(u, s, "aamw-tpm12", "TLSv1.2", false); }},
          {"ssli-file", "TLS 1.3 with a file-system certificate",
           [](TestedUnit& u, ScenarioContext& s) { Handshake(u, s, "aamw-file", "TLSv1.3", false); }}};
}

}  // namespace idevid
