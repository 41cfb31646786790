// libFuzzer target: a bench file must be refused with an error naming line and column, never
// crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/bench_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)idevid::ParseBenchFile(text, "fuzz.yaml", "/bench", {"boot-load", "negative"});
  return 0;
}
