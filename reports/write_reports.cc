// Writes the three reports of a run atomically.
#include <fmt/format.h>

#include "core/file_io.h"
#include "reports/report_writers.h"

namespace idevid {

Result<void> WriteReports(const std::filesystem::path& dir, const RunRecord& record) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoError(ec.value(), "cannot create " + dir.string());
  std::string suffix;
  if (!record.shard.empty()) {
    auto slash = record.shard.find('/');
    suffix = fmt::format("-shard-{}-of-{}", record.shard.substr(0, slash), record.shard.substr(slash + 1));
  }
  Result<void> written = WriteFileAtomic(
      dir / ("run-record" + suffix + ".json"),
      RunRecordJson(record).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  if (written) written = WriteFileAtomic(dir / ("junit" + suffix + ".xml"), RunRecordJunit(record));
  if (written) written = WriteFileAtomic(dir / ("report" + suffix + ".html"), RunRecordHtml(record));
  return written;
}

}  // namespace idevid
