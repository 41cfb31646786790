// libFuzzer target: a TCG-CSR-IDEVID as a station sends it to the enrolment authority. Parsing
// must never crash or read out of bounds, and a request that parses must encode back to exactly
// the bytes received (the codec is its own inverse: nothing accepted is lost or reinterpreted).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "provisioning/tcg_csr.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> input(data, size);
  auto csr = idevid::ParseTcgCsr(input);
  if (!csr) return 0;
  auto content = idevid::EncodeTcgCsrContent(csr->content);
  if (!content || *content != csr->signed_bytes) __builtin_trap();
  idevid::Bytes request = idevid::EncodeTcgCsr(*content, csr->signature);
  if (!std::equal(request.begin(), request.end(), input.begin(), input.end())) __builtin_trap();
  return 0;
}
