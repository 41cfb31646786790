#include "engine/limits.h"

#include <cstdlib>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/display_text.h"

namespace idevid {

const std::map<std::string, double>& PerformanceLimits::Defaults() {
  static const std::map<std::string, double> defaults = {
      {"handshake_tpm_p50_ms", 100},  {"handshake_tpm_p95_ms", 250}, {"handshake_file_p50_ms", 100},
      {"handshake_file_p95_ms", 250}, {"tpm_to_file_rate_min", 0.2}, {"sign_p50_ms", 200},
      {"sign_p95_ms", 500},           {"boot_load_median_ms", 1000}, {"soak_rss_growth_kib", 32768},
  };
  return defaults;
}

Result<void> PerformanceLimits::Set(const std::string& key, double value) {
  auto it = values_.find(key);
  if (it == values_.end()) {
    std::vector<std::string> known;
    for (const auto& [k, v] : Defaults()) known.push_back(k);
    return ConfigError(ConfigCode::kUnknownStatement, fmt::format("unknown limit '{}'; the limits are: {}",
                                                                  DisplayText(key), fmt::join(known, ", ")));
  }
  if (!(value > 0)) {
    return ConfigError(ConfigCode::kBadValue,
                       fmt::format("limit '{}' must be a positive number, not {}", key, value));
  }
  it->second = value;
  return {};
}

Limit PerformanceLimits::Get(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) std::abort();  // a scenario asked for a limit that does not exist
  bool lower = key.size() > 4 && key.compare(key.size() - 4, 4, "_min") == 0;  // else an upper bound
  return lower ? Limit{it->second, std::nullopt} : Limit{std::nullopt, it->second};
}

}  // namespace idevid
