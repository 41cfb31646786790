#include "core/fault_tcti/fault_spec.h"

#include <charconv>
#include <map>

#include <fmt/format.h>
#include <tss2/tss2_tpm2_types.h>

// The fault TCTI module links none of idevid_core: errors are passed up here without context
// (Error::WithContext is not inline).
namespace idevid {
namespace {

constexpr const char* kKeys = "retry, yielded, delay-ms, drop-after, drop-on, corrupt";

Result<int> Count(std::string_view key, std::string_view value) {
  int n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n < 0) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("fault '{}={}': the value must be a whole number >= 0", key, value));
  }
  return n;
}

Result<std::uint32_t> CommandCode(std::string_view value) {
  static const std::map<std::string_view, std::uint32_t> names = {{"sign", TPM2_CC_Sign},
                                                                  {"nv-read", TPM2_CC_NV_Read},
                                                                  {"read-public", TPM2_CC_ReadPublic},
                                                                  {"get-capability", TPM2_CC_GetCapability},
                                                                  {"create-primary", TPM2_CC_CreatePrimary}};
  if (auto it = names.find(value); it != names.end()) return it->second;
  std::uint32_t code = 0;
  if (value.size() > 2 && value.substr(0, 2) == "0x") {
    auto [end, ec] = std::from_chars(value.data() + 2, value.data() + value.size(), code, 16);
    if (ec == std::errc() && end == value.data() + value.size() && code != 0) return code;
  }
  return UsageError(UsageCode::kInvalidArgument,
                    fmt::format("fault 'drop-on={}': name a command (sign, nv-read, read-public, "
                                "get-capability, create-primary) or a hex code such as 0x15d",
                                value));
}

}  // namespace

Result<FaultSpec> ParseFaultSpec(std::string_view faults) {
  FaultSpec spec;
  while (!faults.empty()) {
    std::string_view item = faults.substr(0, faults.find(','));
    faults.remove_prefix(std::min(faults.size(), item.size() + 1));
    auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      return UsageError(UsageCode::kInvalidArgument,
                        fmt::format("fault '{}' is not KEY=VALUE; the keys are: {}", item, kKeys));
    }
    std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    std::map<std::string_view, int*> counts = {{"retry", &spec.retry},
                                               {"yielded", &spec.yielded},
                                               {"delay-ms", &spec.delay_ms},
                                               {"drop-after", &spec.drop_after},
                                               {"corrupt", &spec.corrupt}};
    if (auto it = counts.find(key); it != counts.end()) {
      IDEVID_ASSIGN_OR_RETURN(*it->second, Count(key, value));
    } else if (key == "drop-on") {
      IDEVID_ASSIGN_OR_RETURN(spec.drop_on, CommandCode(value));
    } else {
      return UsageError(UsageCode::kInvalidArgument,
                        fmt::format("unknown fault '{}'; the keys are: {}", key, kKeys));
    }
  }
  return spec;
}

Result<std::pair<FaultSpec, std::string>> ParseFaultTctiConfig(std::string_view config) {
  auto at = config.find('@');
  if (at == std::string_view::npos || at + 1 == config.size()) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("fault TCTI config '{}' is not FAULTS@TCTI, e.g. "
                                  "retry=2@swtpm:host=127.0.0.1,port=2321",
                                  config));
  }
  IDEVID_ASSIGN_OR_RETURN(FaultSpec spec, ParseFaultSpec(config.substr(0, at)));
  return std::pair{spec, std::string(config.substr(at + 1))};
}

Result<std::string> FaultTctiString(const std::string& library, const std::string& faults,
                                    const std::string& inner) {
  IDEVID_TRY(ParseFaultSpec(faults));
  if (inner.empty()) {
    return UsageError(UsageCode::kMissingArgument, "the fault TCTI needs a TCTI to put itself in front of");
  }
  return fmt::format("{}:{}@{}", library, faults, inner);
}

}  // namespace idevid
