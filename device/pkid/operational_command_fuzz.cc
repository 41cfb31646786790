// libFuzzer target: whatever a client writes to pkid's socket is parsed and answered (against
// an empty store) without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "device/pkid/command_handler.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const idevid::NodeLocalStore store;
  static const idevid::CommandHandler handler(store, []() -> idevid::Result<void> { return {}; });
  std::string_view line(reinterpret_cast<const char*>(data), size);
  (void)idevid::ParseOperationalCommand(line);
  (void)handler.Execute(line);
  return 0;
}
