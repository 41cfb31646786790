// The bench record as JSON (for tracking over time: every comparison carries its ratio under the
// comparator's name, e.g. "ratio_vs_tpm2_openssl"), as the text table `idevid bench` prints, and
// as an HTML page with a bar chart per comparison that opens offline.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "bench/bench_record.h"

namespace idevid {

nlohmann::json BenchRecordJson(const BenchRecord& record);
std::string BenchRecordText(const BenchRecord& record);
std::string BenchRecordHtml(const BenchRecord& record);

// A rate as people read it: "312 /s", "1.2k /s", or per minute for units, "0.05 /s" for runs.
std::string FormatRate(double per_second, const std::string& unit);

}  // namespace idevid
