// The operational commands pkid answers, as operators know them from the appliance.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace idevid {

inline constexpr std::size_t kMaxCommandLength = 1024;

struct OperationalCommand {
  enum class Kind { kShow, kVerify, kReload, kExport };
  enum class Detail { kNormal, kBrief, kDetail };
  Kind kind = Kind::kShow;
  std::optional<std::string> certificate_id;  // show: one certificate; verify/export: required
  Detail detail = Detail::kNormal;
};

// The command forms, one line each, for help and for the answer to an unknown command.
const std::vector<std::string>& KnownCommands();

// Parses one command line (words separated by blanks). Fails with kUsage: for an unknown or
// malformed command the message echoes the line (DisplayText: escaped, cut) and lists the known
// ones; a line over kMaxCommandLength bytes or with control characters is refused as such.
Result<OperationalCommand> ParseOperationalCommand(std::string_view line);

}  // namespace idevid
