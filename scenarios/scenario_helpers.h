// Small helpers the suites share.
#pragma once

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/result.h"
#include "device/pkid/pkid_client.h"
#include "engine/scenario.h"
#include "engine/tested_unit.h"

namespace idevid::scenarios {

// A check that did not hold: a FAIL of the phase.
inline tl::unexpected<Error> CheckFailed(std::string message) {
  return Fail(ErrorDomain::kVerify, 0, std::move(message));
}

// `text` contains `part`, or the phase fails saying what was there.
inline Result<void> ExpectContains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return {};
  return CheckFailed(fmt::format("expected '{}' in: {}", part, text));
}

// The phase "start pkid": pkid on the unit's TPM, answering on `socket`, kept in `pkid`.
inline bool StartPkidPhase(TestedUnit& unit, ScenarioContext& s, const std::filesystem::path& socket,
                           std::optional<ChildProcess>& pkid) {
  return s.Phase("start pkid", [&](PhaseContext&) -> Result<void> {
    auto child = unit.StartPkid(unit.tcti(), socket);
    if (!child) return Fail(child.error());
    pkid = std::move(*child);
    return {};
  });
}

// pkid's detailed view of idev-id, as `show ... certificate-id idev-id detail` answers on `socket`.
inline Result<std::string> ShowIdevid(const std::filesystem::path& socket) {
  auto show = SendPkidCommand(socket, "show security pki node-local local-certificate certificate-id idev-id detail");
  if (!show) return Fail(show.error());
  return show->text;
}

// The q-th quantile (0..1) of `samples`.
inline double Quantile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  return samples[static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1))];
}

}  // namespace idevid::scenarios
