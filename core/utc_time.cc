#include "core/utc_time.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace idevid {

std::string UtcTimestamp(std::chrono::system_clock::time_point t) {
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(t)));
}

}  // namespace idevid
