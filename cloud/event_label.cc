#include "cloud/event_label.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace idevid {
namespace {

using ByteSpan = std::span<const std::uint8_t>;

// PFP §10.4.1 event types whose data is a UEFI_IMAGE_LOAD_EVENT or a UEFI_VARIABLE_DATA.
constexpr std::uint32_t kEvEfiVariableBoot = 0x80000002;
constexpr std::uint32_t kEvEfiBootServicesDriver = 0x80000004;
constexpr std::uint32_t kEvEfiRuntimeServicesDriver = 0x80000005;
constexpr std::uint32_t kEvEfiVariableBoot2 = 0x8000000C;
constexpr std::uint32_t kEvEfiVariableAuthority = 0x800000E0;
// UEFI 2.9 §10.3.5.4: the Media Device Path's File Path node.
constexpr std::uint8_t kMediaDevicePath = 0x04;
constexpr std::uint8_t kFilePathNode = 0x04;
constexpr std::uint8_t kEndOfPath = 0x7F;

std::uint64_t LittleEndian(ByteSpan bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = bytes.size(); i > 0; --i) value = value << 8 | bytes[i - 1];
  return value;
}

bool IsPrintableAscii(std::uint8_t byte) { return byte >= 0x20 && byte < 0x7f; }

// Printable ASCII text, with NULs at the end dropped; nullopt for anything else.
std::optional<std::string> AsciiText(ByteSpan bytes) {
  while (!bytes.empty() && bytes.back() == 0) bytes = bytes.first(bytes.size() - 1);
  if (bytes.empty()) return std::nullopt;
  std::string text;
  for (std::uint8_t byte : bytes) {
    if (!IsPrintableAscii(byte)) return std::nullopt;
    text.push_back(static_cast<char>(byte));
  }
  return text;
}

// UTF-16LE text of printable ASCII characters (what firmware writes for names), with NUL
// characters at the end dropped; nullopt for anything else.
std::optional<std::string> Utf16Text(ByteSpan bytes) {
  if (bytes.size() % 2 != 0) return std::nullopt;
  while (bytes.size() >= 2 && bytes[bytes.size() - 2] == 0 && bytes.back() == 0)
    bytes = bytes.first(bytes.size() - 2);
  if (bytes.empty()) return std::nullopt;
  std::string text;
  for (std::size_t i = 0; i < bytes.size(); i += 2) {
    if (bytes[i + 1] != 0 || !IsPrintableAscii(bytes[i])) return std::nullopt;
    text.push_back(static_cast<char>(bytes[i]));
  }
  return text;
}

// UEFI_IMAGE_LOAD_EVENT: ImageLocationInMemory, ImageLengthInMemory, ImageLinkTimeAddress (8
// bytes each), LengthOfDevicePath (8), DevicePath. The File Path nodes' text, joined.
std::optional<std::string> ImageLoadPath(ByteSpan data) {
  constexpr std::size_t kHeader = 32;
  if (data.size() < kHeader) return std::nullopt;
  std::uint64_t length = LittleEndian(data.subspan(24, 8));
  ByteSpan path = data.subspan(kHeader);
  if (length > path.size()) return std::nullopt;
  path = path.first(static_cast<std::size_t>(length));
  std::string file;
  while (path.size() >= 4) {
    std::size_t node = static_cast<std::size_t>(LittleEndian(path.subspan(2, 2)));
    if (node < 4 || node > path.size() || path[0] == kEndOfPath) break;
    if (path[0] == kMediaDevicePath && path[1] == kFilePathNode) {
      auto text = Utf16Text(path.subspan(4, node - 4));
      if (!text) return std::nullopt;
      file += *text;
    }
    path = path.subspan(node);
  }
  if (file.empty()) return std::nullopt;
  return file;
}

// UEFI_VARIABLE_DATA: VariableName (GUID, 16 bytes), UnicodeNameLength (8, in characters),
// VariableDataLength (8), UnicodeName, VariableData. The UnicodeName.
std::optional<std::string> VariableName(ByteSpan data) {
  constexpr std::size_t kHeader = 32;
  if (data.size() < kHeader) return std::nullopt;
  std::uint64_t characters = LittleEndian(data.subspan(16, 8));
  ByteSpan rest = data.subspan(kHeader);
  if (characters > rest.size() / 2) return std::nullopt;
  return Utf16Text(rest.first(static_cast<std::size_t>(characters) * 2));
}

std::optional<std::string> Label(const LogEvent& event) {
  ByteSpan data(event.data);
  switch (event.type) {
    case kEvEfiBootServicesApplication:
    case kEvEfiBootServicesDriver:
    case kEvEfiRuntimeServicesDriver: return ImageLoadPath(data);
    case kEvEfiVariableDriverConfig:
    case kEvEfiVariableBoot:
    case kEvEfiVariableBoot2:
    case kEvEfiVariableAuthority: return VariableName(data);
    default:
      if (auto text = AsciiText(data)) return text;
      return Utf16Text(data);
  }
}

}  // namespace

std::string EventLabel(const LogEvent& event) { return Label(event).value_or(""); }

}  // namespace idevid
