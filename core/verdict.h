// A verdict: what a check found, every finding, not only the first (as Chromium's CertErrors).
// A verdict with a failure is a FAIL of the unit; it is never an Error (core/result.h), which is
// reserved for what kept the check from being made.
#pragma once

#include <string>
#include <vector>

namespace idevid {

enum class Severity {
  kFailure,  // a rule the unit broke: the verdict fails
  kWarning,  // worth a person's look, the verdict still passes
};

// One thing a check found: a stable id ("serial-not-in-inventory"), how bad, and the evidence
// (escaped values from the unit, what was expected).
struct Finding {
  std::string id;
  Severity severity = Severity::kFailure;
  std::string evidence;
};

class Verdict {
 public:
  // Adds a finding; any kFailure makes the verdict fail.
  void Add(std::string id, std::string evidence, Severity severity = Severity::kFailure);
  // Adds every finding of `other`.
  void Merge(const Verdict& other);

  bool passed() const;
  const std::vector<Finding>& findings() const { return findings_; }
  // The first failure, or nullptr when the verdict passed.
  const Finding* first_failure() const;
  // Every failure as "id: evidence", joined by "; " (empty when passed).
  std::string FailureText() const;

 private:
  std::vector<Finding> findings_;
};

}  // namespace idevid
