#include "reports/run_record.h"

namespace idevid {

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPass: return "PASS";
    case Outcome::kFail: return "FAIL";
    case Outcome::kError: return "ERROR";
    case Outcome::kSkip: return "SKIP";
    case Outcome::kAborted: return "ABORTED";
  }
  return "ERROR";
}

Outcome OverallOutcome(const std::vector<ScenarioRecord>& scenarios) {
  Outcome overall = Outcome::kPass;
  for (const auto& s : scenarios) {
    if (s.outcome == Outcome::kError || s.outcome == Outcome::kAborted) return s.outcome;
    if (s.outcome == Outcome::kFail) overall = Outcome::kFail;
  }
  return overall;
}

}  // namespace idevid
