// Small helpers the suites share.
#pragma once

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/result.h"
#include "device/pkid/pkid_client.h"
#include "device/ssli/ssli_client.h"
#include "engine/scenario.h"
#include "engine/tested_unit.h"

namespace idevid::scenarios {

// The cloud's judgement of an SSL-I session as the phase's findings: none when it accepted the
// unit; "cloud-refused-unit" with its reasons when it refused the identity. A cloud that answered
// neither (no verdict at all) is the bench's peer failing: kPeer kMalformed.
inline Result<void> CheckAccepted(PhaseContext& p, const SsliResult& session) {
  if (session.accepted()) return {};
  if (session.refused()) {
    p.Finding("cloud-refused-unit", session.refusal->reason);
    return {};
  }
  return PeerError(PeerCode::kMalformed, fmt::format("the cloud answered HTTP {} without a verdict: {}",
                                                     session.http_status, DisplayText(session.body)));
}

// A check that `result` failed with an error of `domain` whose message names `part`: a result
// that succeeded is the finding `id` ("...-accepted"); an error of that domain that does not
// name `part` is the finding "wrong-error"; an error of another domain is passed up (the check
// could not be made, e.g. the cloud went away).
template <typename T>
Result<void> ExpectError(PhaseContext& p, const Result<T>& result, ErrorDomain domain,
                         const std::string& part, const std::string& id) {
  if (result) {
    p.Finding(id, fmt::format("it succeeded; expected a {} error naming {}", DomainName(domain),
                              QuotedDisplayText(part)));
    return {};
  }
  if (result.error().domain() != domain) {
    return Fail(result.error().WithContext(
        fmt::format("expected a {} error naming {}", DomainName(domain), QuotedDisplayText(part))));
  }
  if (result.error().message().find(part) == std::string::npos) {
    p.Finding("wrong-error", fmt::format("expected an error naming {}, got {}", QuotedDisplayText(part),
                                         DisplayText(result.error().ToString(), 400)));
  }
  return {};
}

// The phase "start pkid": pkid on the unit's TPM, answering on `socket`, kept in `pkid`.
inline bool StartPkidPhase(TestedUnit& unit, ScenarioContext& s, const std::filesystem::path& socket,
                           std::optional<ChildProcess>& pkid) {
  return s.Phase("start pkid", [&](PhaseContext&) -> Result<void> {
    IDEVID_ASSIGN_OR_RETURN(pkid, unit.StartPkid(unit.tcti(), socket));
    return {};
  });
}

// pkid's detailed view of idev-id, as `show ... certificate-id idev-id detail` answers on `socket`.
inline Result<std::string> ShowIdevid(const std::filesystem::path& socket) {
  IDEVID_ASSIGN_OR_RETURN(
      auto show,
      SendPkidCommand(socket, "show security pki node-local local-certificate certificate-id idev-id detail"),
      "asking pkid on {} for idev-id", socket.string());
  return show.text;
}

// The q-th quantile (0..1) of `samples`.
inline double Quantile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  return samples[static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1))];
}

}  // namespace idevid::scenarios
