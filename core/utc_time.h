// Timestamps as the records write them.
#pragma once

#include <chrono>
#include <string>

namespace idevid {

// "2026-11-28T12:00:01Z"
std::string UtcTimestamp(std::chrono::system_clock::time_point t);

}  // namespace idevid
