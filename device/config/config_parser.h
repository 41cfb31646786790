// The parser of the device configuration language: Junos-style `set` statements, one per line,
// `#` comments, double-quoted words for values with blanks.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/result.h"
#include "device/config/device_config.h"

namespace idevid {

// Parses a whole configuration. The first problem fails the parse with kConfig and a message
// "FILE:LINE:COLUMN: what was expected and what was found"; after parsing, references are
// checked (an SSL-I profile naming an unknown certificate-id or CA profile, a local certificate
// without its key, ...) and reported at the statement that makes them.
Result<DeviceConfig> ParseDeviceConfig(std::string_view text, const std::string& file_name);

// Reads and parses a configuration file; kIo when it cannot be read.
Result<DeviceConfig> LoadDeviceConfig(const std::filesystem::path& path);

}  // namespace idevid
