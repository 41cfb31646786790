// libFuzzer target: a CRL file as the cloud reads it (--crl). Parsing and reading what it states
// must never crash; a CRL that reads encodes to DER that parses and reads the same.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/x509_crl.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto crl = idevid::ParseCrl(std::span<const std::uint8_t>(data, size));
  if (!crl) return 0;
  auto content = idevid::ReadCrl(**crl);
  if (!content) return 0;
  auto der = idevid::CrlDer(**crl);
  if (!der) return 0;
  auto again = idevid::ParseCrl(*der);
  if (!again) __builtin_trap();
  auto content_again = idevid::ReadCrl(**again);
  if (!content_again || content_again->number != content->number ||
      content_again->entries.size() != content->entries.size()) {
    __builtin_trap();
  }
  return 0;
}
