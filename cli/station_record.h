// The line station's per-unit record from the command line: who ran it, the line check that ends
// a unit, the ledger it is recorded in, and writing it.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/ledger.h"
#include "provisioning/line_check.h"
#include "provisioning/unit_record.h"

namespace idevid::cli {

// The station, the operator ($USER), this program's version and the start time.
StationContext MakeStationContext(const std::string& station);

// Writes `record` to `path` when one was asked for and returns `exit_code`; a failed write is
// reported and turns the outcome into an infrastructure error (2).
int FinishRecord(const std::string& path, const nlohmann::json& record, int exit_code);

// The ledger a command records in: `given` (--ledger) when set, else `factory_spec` (the
// factory's). Fails as OpenLedger does.
Result<std::unique_ptr<Ledger>> OpenStationLedger(const std::string& given, const std::string& factory_spec);

// The line check that ends a unit's provisioning, and the unit's record with it: `record` gets
// "line_check" (the check's record) and its outcome becomes FAIL when the check failed.
struct LineCheckOutcome {
  CheckReport report;
  std::string outcome;  // "PASS" or "FAIL"
};
Result<LineCheckOutcome> RunLineCheck(const TpmContext& tpm, const TrustBundle& factory_ca,
                                      const CheckRequest& request, const StationContext& context,
                                      nlohmann::json& record);

// Prints "refused SERIAL (MODEL): reason: detail" and puts the refusal in `record` (outcome FAIL).
void ReportRefusal(const std::string& serial, const std::string& model, const std::string& reason,
                   const std::string& detail, nlohmann::json& record);

}  // namespace idevid::cli
