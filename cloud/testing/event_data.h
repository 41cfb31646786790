// Event data as PC Client firmware writes it (PFP §10.2), for tests of what names an event.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/x509.h"

namespace idevid::testing {

inline void PutLe(Bytes& out, std::uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

inline void PutUtf16(Bytes& out, std::string_view text) {
  for (char c : text) PutLe(out, static_cast<std::uint8_t>(c), 2);
}

// UEFI_IMAGE_LOAD_EVENT (PFP §10.2.3) of `file`: a device path of one File Path node (UEFI 2.9
// §10.3.5.4) and the End node; `declared_path_length` overrides LengthOfDevicePath when not 0.
inline Bytes ImageLoadData(std::string_view file, std::size_t declared_path_length = 0) {
  Bytes path = {0x04, 0x04};
  PutLe(path, 4 + 2 * (file.size() + 1), 2);
  PutUtf16(path, file);
  PutLe(path, 0, 2);
  path.insert(path.end(), {0x7F, 0xFF, 0x04, 0x00});
  Bytes data;
  PutLe(data, 0x1000, 8);    // ImageLocationInMemory
  PutLe(data, 0xA00000, 8);  // ImageLengthInMemory
  PutLe(data, 0, 8);         // ImageLinkTimeAddress
  PutLe(data, declared_path_length ? declared_path_length : path.size(), 8);
  data.insert(data.end(), path.begin(), path.end());
  return data;
}

}  // namespace idevid::testing
