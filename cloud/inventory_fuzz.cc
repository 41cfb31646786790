// libFuzzer target: the cloud's inventory file must be refused with an error naming the line,
// never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cloud/inventory.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)idevid::ParseInventory(text, "fuzz.csv");
  return 0;
}
