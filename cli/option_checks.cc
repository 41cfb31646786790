#include "cli/option_checks.h"

#include <filesystem>
#include <string>

#include <fmt/format.h>

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

}  // namespace idevid::cli
