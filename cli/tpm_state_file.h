// The record `idevid tpm start` leaves in its state directory so that `idevid tpm stop` can
// stop exactly what was started, by pid.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace idevid::cli {

struct TpmStateRecord {
  std::string tcti;  // what clients use
  std::string swtpm_tcti;
  std::uint16_t port = 0;
  pid_t swtpm_pid = -1;
  std::string state_dir;  // absolute; swtpm's command line contains it
  struct Abrmd {
    pid_t abrmd_pid = -1;
    pid_t dbus_pid = -1;
    std::string bus_address;
    std::string bus_name;
  };
  std::optional<Abrmd> abrmd;
};

nlohmann::json ToJson(const TpmStateRecord& record);

// DIR/idevid-tpm.json
std::filesystem::path StateFilePath(const std::filesystem::path& dir);

// Writes the record atomically into DIR.
Result<void> WriteStateRecord(const std::filesystem::path& dir, const TpmStateRecord& record);

// Reads DIR's record; kUsage kWrongState when there is none, kIo when it cannot be read, kConfig
// when it is not a valid record (kSyntax: not JSON, kMissing: a field is absent, kBadValue: a
// value of the wrong type or range, or another version).
Result<TpmStateRecord> ReadStateRecord(const std::filesystem::path& dir);

}  // namespace idevid::cli
