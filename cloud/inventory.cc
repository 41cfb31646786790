#include "cloud/inventory.h"

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/file_io.h"

namespace idevid {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<Inventory> ParseInventory(std::string_view text, const std::string& file_name) {
  Inventory inventory;
  int number = 0;
  for (std::size_t start = 0; start <= text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = Trim(text.substr(start, end - start));
    start = end + 1;
    ++number;
    if (line.empty() || line.front() == '#' || (number == 1 && line == "serial,model")) continue;
    std::size_t comma = line.find(',');
    std::string_view serial = Trim(line.substr(0, comma));
    std::string_view model = comma == std::string_view::npos ? "" : Trim(line.substr(comma + 1));
    if (serial.empty() || model.empty() || model.find(',') != std::string_view::npos) {
      return ConfigError(ConfigCode::kSyntax, fmt::format("{}:{}: expected 'serial,model', got '{}'",
                                                          file_name, number, DisplayText(line)));
    }
    if (!inventory.emplace(std::string(serial), std::string(model)).second) {
      return ConfigError(ConfigCode::kConflict, fmt::format("{}:{}: serial {} is listed twice", file_name,
                                                            number, DisplayText(serial)));
    }
  }
  return inventory;
}

Result<Inventory> LoadInventory(const std::filesystem::path& path) {
  IDEVID_ASSIGN_OR_RETURN(std::string text, ReadFileText(path));
  return ParseInventory(text, path.string());
}

}  // namespace idevid
