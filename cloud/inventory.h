// The cloud's inventory of units it expects: a CSV file of "serial,model" lines.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "core/result.h"

namespace idevid {

using Inventory = std::map<std::string, std::string>;  // serial -> model

// Parses "serial,model" lines; blank lines and lines starting with '#' are skipped, an optional
// header "serial,model" is allowed. Fails with kConfig naming the line for a malformed line or
// a serial listed twice.
Result<Inventory> ParseInventory(std::string_view text, const std::string& file_name);
Result<Inventory> LoadInventory(const std::filesystem::path& path);

}  // namespace idevid
