#include "cli/tpm_state_file.h"

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/file_io.h"

namespace idevid::cli {
namespace {

constexpr int kRecordVersion = 1;

// What is wrong with a record, from the exception nlohmann::json threw reading it: text that is
// not JSON, a field that is absent (at() of a missing key), or a value of the wrong type.
ConfigCode RecordErrorCode(const nlohmann::json::exception& e) {
  if (dynamic_cast<const nlohmann::json::parse_error*>(&e) != nullptr) return ConfigCode::kSyntax;
  if (dynamic_cast<const nlohmann::json::out_of_range*>(&e) != nullptr) return ConfigCode::kMissing;
  return ConfigCode::kBadValue;
}

}  // namespace

nlohmann::json ToJson(const TpmStateRecord& record) {
  nlohmann::json j = {{"version", kRecordVersion},       {"tcti", record.tcti},
                      {"swtpm_tcti", record.swtpm_tcti}, {"port", record.port},
                      {"swtpm_pid", record.swtpm_pid},   {"state_dir", record.state_dir}};
  if (record.abrmd) {
    j["abrmd"] = {{"abrmd_pid", record.abrmd->abrmd_pid},
                  {"dbus_pid", record.abrmd->dbus_pid},
                  {"bus_address", record.abrmd->bus_address},
                  {"bus_name", record.abrmd->bus_name}};
  }
  return j;
}

std::filesystem::path StateFilePath(const std::filesystem::path& dir) { return dir / "idevid-tpm.json"; }

Result<void> WriteStateRecord(const std::filesystem::path& dir, const TpmStateRecord& record) {
  return WriteFileAtomic(StateFilePath(dir), ToJson(record).dump(2) + "\n", 0600);
}

Result<TpmStateRecord> ReadStateRecord(const std::filesystem::path& dir) {
  auto path = StateFilePath(dir);
  if (!std::filesystem::exists(path)) {
    return UsageError(
        UsageCode::kWrongState,
        fmt::format("no TPM was started with --state {} ({} does not exist)", dir.string(), path.string()));
  }
  IDEVID_ASSIGN_OR_RETURN(std::string text, ReadFileText(path), "reading the TPM state record");
  try {
    auto j = nlohmann::json::parse(text);
    if (j.at("version").get<int>() != kRecordVersion) {
      return ConfigError(ConfigCode::kBadValue,
                         fmt::format("{}: unsupported record version {}", path.string(),
                                     DisplayText(j.at("version").dump())));
    }
    TpmStateRecord r;
    r.tcti = j.at("tcti").get<std::string>();
    r.swtpm_tcti = j.at("swtpm_tcti").get<std::string>();
    int port = j.at("port").get<int>();
    if (port < 1 || port > 65535) {
      return ConfigError(ConfigCode::kBadValue,
                         fmt::format("{}: port {} is not a TCP port", path.string(), port));
    }
    r.port = static_cast<std::uint16_t>(port);
    r.swtpm_pid = j.at("swtpm_pid").get<pid_t>();
    r.state_dir = j.at("state_dir").get<std::string>();
    if (j.contains("abrmd")) {
      const auto& a = j.at("abrmd");
      r.abrmd =
          TpmStateRecord::Abrmd{a.at("abrmd_pid").get<pid_t>(), a.at("dbus_pid").get<pid_t>(),
                                a.at("bus_address").get<std::string>(), a.at("bus_name").get<std::string>()};
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    return ConfigError(RecordErrorCode(e), fmt::format("{} is not a valid TPM state record: {}",
                                                       path.string(), DisplayText(e.what(), 400)));
  }
}

}  // namespace idevid::cli
