// The line station's per-unit record from the command line: who ran it, and writing it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "provisioning/unit_record.h"

namespace idevid::cli {

// The station, the operator ($USER), this program's version and the start time.
StationContext MakeStationContext(const std::string& station);

// Writes `record` to `path` when one was asked for and returns `exit_code`; a failed write is
// reported and turns the outcome into an infrastructure error (2).
int FinishRecord(const std::string& path, const nlohmann::json& record, int exit_code);

}  // namespace idevid::cli
