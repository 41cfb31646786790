// libFuzzer target: an event log as a device sends it to the verifier (hostile). Parsing and
// replay must never crash or read out of bounds, and a SHA-256-only log that parses must encode
// into a log that parses to the same events (nothing accepted is lost or reinterpreted).
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/event_log.h"

namespace {

bool SameEvents(const idevid::EventLog& a, const idevid::EventLog& b) {
  if (a.events.size() != b.events.size()) return false;
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    const auto& x = a.events[i];
    const auto& y = b.events[i];
    if (x.pcr != y.pcr || x.type != y.type || x.digests != y.digests || x.data != y.data) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto log = idevid::ParseEventLog(std::span<const std::uint8_t>(data, size));
  if (!log) return 0;
  auto pcrs = idevid::ReplayEventLog(*log);
  if (pcrs && pcrs->size() > 24) __builtin_trap();
  for (const auto& event : log->events) static_cast<void>(idevid::EventTypeName(event.type));
  if (log->algorithms != std::vector<std::uint16_t>{idevid::kAlgSha256}) return 0;
  auto again = idevid::ParseEventLog(idevid::EncodeEventLog(log->events));
  if (!again || !SameEvents(*log, *again)) __builtin_trap();
  return 0;
}
