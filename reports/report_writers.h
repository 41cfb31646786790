// The run record's writers: versioned JSON, JUnit XML (one testcase per scenario, read by
// GitLab, Jenkins and GitHub), and an HTML page with tables and inline SVG charts that opens
// offline. Each file is written atomically.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "reports/run_record.h"

namespace idevid {

nlohmann::json RunRecordJson(const RunRecord& record);
std::string RunRecordJunit(const RunRecord& record);
std::string RunRecordHtml(const RunRecord& record);

// The three files in `dir` (created if missing): run-record[-shard-I-of-N].json, junit[...].xml,
// report[...].html. Fails with kIo naming the file that could not be written.
Result<void> WriteReports(const std::filesystem::path& dir, const RunRecord& record);

}  // namespace idevid
