#include "cli/station_record.h"

#include <cstdlib>

#include "engine/exit_codes.h"

namespace idevid::cli {

StationContext MakeStationContext(const std::string& station) {
  const char* user = std::getenv("USER");
  return {station, user ? user : "", IDEVID_VERSION, std::chrono::system_clock::now(), {}};
}

int FinishRecord(const std::string& path, const nlohmann::json& record, int exit_code) {
  if (path.empty()) return exit_code;
  if (auto written = WriteRecord(path, record); !written) {
    (void)ReportError(written.error());
    return kExitInfrastructure;
  }
  return exit_code;
}

}  // namespace idevid::cli
