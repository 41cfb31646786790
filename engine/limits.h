// Limits of the performance and soak suites' measurements, by key: a key ending in "_min" is a
// lower bound, any other (milliseconds "_ms", KiB "_kib") an upper bound. Defaults suit swtpm and most
// hardware TPMs; a bench file tightens or loosens them per bench.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace idevid {

struct Limit {
  std::optional<double> low;
  std::optional<double> high;
};

class PerformanceLimits {
 public:
  // Every key with its default bound.
  static const std::map<std::string, double>& Defaults();
  // Sets the bound of `key`; an unknown key is a kConfig kUnknownStatement error that lists the
  // known keys, a value that is not positive a kConfig kBadValue error.
  Result<void> Set(const std::string& key, double value);
  // The bound of a known key (the default unless set); a programming error aborts.
  Limit Get(const std::string& key) const;

 private:
  std::map<std::string, double> values_ = Defaults();
};

}  // namespace idevid
