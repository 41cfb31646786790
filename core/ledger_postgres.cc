// The ledger's PostgreSQL back end.
#include "core/ledger_sql.h"

namespace idevid {

Result<std::unique_ptr<SqlConnection>> OpenPostgresConnection(const std::string&) {
  return UsageError(UsageCode::kUnsupported, "this build has no PostgreSQL ledger yet; use sqlite:PATH");
}

}  // namespace idevid
