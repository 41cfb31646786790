// The per-unit record a factory station keeps: versioned JSON, written atomically, never a
// private key.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "provisioning/enrolment_station.h"
#include "provisioning/line_check.h"
#include "provisioning/provisioner.h"

namespace idevid {

inline constexpr int kUnitRecordVersion = 1;

struct StationContext {
  std::string station;  // line station id
  std::string operator_name;
  std::string software_version;
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point ended;
};

// The record of a provisioning: outcome PASS with the certificate, or FAIL with the ledger's
// refusal; with the ledger's part (EK hash, resumed) when a ledger was used.
nlohmann::json ProvisionRecord(const ProvisionRequest& request, const ProvisionResult& result,
                               const StationContext& context);

// The record of a TCG enrolment: outcome PASS with both certificates, or FAIL with the refusal.
nlohmann::json EnrolRecord(const EnrolRequest& request, const EnrolResult& result,
                           const StationContext& context);

nlohmann::json CheckRecord(const CheckRequest& request, const CheckReport& report,
                           const StationContext& context);

// A record for a run that ended in an infrastructure error (outcome ERROR) with its message.
nlohmann::json ErrorRecord(const std::string& kind, const Error& error, const StationContext& context);

// Writes the record to `path` (temp file + rename).
Result<void> WriteRecord(const std::filesystem::path& path, const nlohmann::json& record);

}  // namespace idevid
