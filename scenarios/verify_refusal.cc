// verify-refusal: a local verify of idev-id is refused word for word; a file-system
// certificate is verified for real.
#include "device/pkid/command_handler.h"
#include "device/pkid/pkid_client.h"
#include "engine/tested_unit.h"
#include "scenarios/scenario_helpers.h"
#include "scenarios/scenarios.h"

namespace idevid {
namespace {

// Starts pkid for the scenario, then checks `command` answers `status` with exactly `text`.
void ExpectAnswer(TestedUnit& unit, ScenarioContext& s, const std::string& socket_name,
                  const std::string& command, int status, const std::string& text) {
  auto socket = unit.dir() / socket_name;
  std::optional<ChildProcess> pkid;
  scenarios::StartPkidPhase(unit, s, socket, pkid);
  s.Phase(command, [&](PhaseContext& p) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(auto answer, SendPkidCommand(socket, command));
    if (answer.status != status || answer.text != text) {
      p.Finding("wrong-answer",
                fmt::format("expected status {} and {}, got status {} and {}", status,
                            QuotedDisplayText(text), answer.status, QuotedDisplayText(answer.text)));
    }
    return {};
  });
}

}  // namespace

std::vector<Scenario> VerifyRefusalSuite() {
  return {{"verify-refusal", "verify of idev-id is refused",
           [](TestedUnit& unit, ScenarioContext& s) {
             ExpectAnswer(unit, s, "refusal.sock",
                          "request security pki node-local local-certificate verify certificate-id idev-id",
                          1, std::string(kIdevidVerifyRefusal) + "\n");
           }},
          {"verify-refusal", "file-system certificate is verified for real",
           [](TestedUnit& unit, ScenarioContext& s) {
             ExpectAnswer(unit, s, "fs-verify.sock",
                          "request security pki node-local local-certificate verify certificate-id fs-cert",
                          0, "Local certificate fs-cert verification success\n");
           }}};
}

}  // namespace idevid
