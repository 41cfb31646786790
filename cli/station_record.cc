#include "cli/station_record.h"

#include <cstdlib>
#include <iostream>

#include <fmt/format.h>

#include "core/display_text.h"
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

Result<std::unique_ptr<Ledger>> OpenStationLedger(const std::string& given, const std::string& factory_spec) {
  return OpenLedger(given.empty() ? factory_spec : given);
}

Result<LineCheckOutcome> RunLineCheck(const TpmContext& tpm, const TrustBundle& factory_ca,
                                      const CheckRequest& request, const StationContext& context,
                                      nlohmann::json& record) {
  IDEVID_ASSIGN_OR_RETURN(CheckReport report, CheckUnit(tpm, factory_ca, request), "the line check");
  LineCheckOutcome checked{std::move(report), ""};
  checked.outcome = checked.report.passed() ? "PASS" : "FAIL";
  record["line_check"] = CheckRecord(request, checked.report, context);
  if (!checked.report.passed()) record["outcome"] = "FAIL";
  return checked;
}

void ReportRefusal(const std::string& serial, const std::string& model, const std::string& reason,
                   const std::string& detail, nlohmann::json& record) {
  std::cout << fmt::format("refused {} ({}): {}: {}\n", QuotedDisplayText(serial), QuotedDisplayText(model),
                           DisplayText(reason), detail);
  record["outcome"] = "FAIL";
  record["refusal"] = {{"reason", reason}, {"detail", detail}};
}

}  // namespace idevid::cli
