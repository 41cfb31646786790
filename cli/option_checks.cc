#include "cli/option_checks.h"

#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "cli/tpm_args.h"
#include "core/display_text.h"

namespace idevid::cli {

CLI::Validator ExistingFileCheck() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        std::error_code ec;
        auto status = std::filesystem::status(path, ec);
        if (!std::filesystem::exists(status)) {
          return fmt::format("no such file {}", QuotedDisplayText(path));
        }
        if (std::filesystem::is_directory(status)) {
          return fmt::format("{} is a directory, not a file", QuotedDisplayText(path));
        }
        return "";
      },
      "FILE", "EXISTING_FILE");
}

Result<std::pair<std::string, std::uint16_t>> SplitHostPort(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("{} is not HOST:PORT", QuotedDisplayText(text)));
  }
  auto port = ParseHandle("port", text.substr(colon + 1));
  if (!port || *port > 65535) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("{} has no valid port", QuotedDisplayText(text)));
  }
  return std::pair(text.substr(0, colon), static_cast<std::uint16_t>(*port));
}

}  // namespace idevid::cli
