#include "core/verdict.h"

namespace idevid {

void Verdict::Add(std::string id, std::string evidence, Severity severity) {
  findings_.push_back({std::move(id), severity, std::move(evidence)});
}

void Verdict::Merge(const Verdict& other) {
  findings_.insert(findings_.end(), other.findings_.begin(), other.findings_.end());
}

bool Verdict::passed() const { return first_failure() == nullptr; }

const Finding* Verdict::first_failure() const {
  for (const Finding& f : findings_) {
    if (f.severity == Severity::kFailure) return &f;
  }
  return nullptr;
}

std::string Verdict::FailureText() const {
  std::string text;
  for (const Finding& f : findings_) {
    if (f.severity != Severity::kFailure) continue;
    if (!text.empty()) text += "; ";
    text += f.id + ": " + f.evidence;
  }
  return text;
}

}  // namespace idevid
