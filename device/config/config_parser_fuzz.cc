// libFuzzer target: the device configuration parser must refuse bad input with an error, never
// crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "device/config/config_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)idevid::ParseDeviceConfig(text, "fuzz.conf");
  return 0;
}
