#include "engine/synthetic_boot.h"

#include <array>
#include <string_view>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/file_io.h"
#include "core/tpm_sign.h"

namespace idevid {
namespace {

// PFP §10.4.1 event types the chain uses beside those core/event_log.h names.
constexpr std::uint32_t kEvEfiVariableBoot = 0x80000002;
constexpr std::uint32_t kEvEfiAction = 0x80000007;
constexpr std::uint32_t kEvEfiPlatformFirmwareBlob2 = 0x8000000A;

using Guid = std::array<std::uint8_t, 16>;
// EFI_GLOBAL_VARIABLE 8BE4DF61-93CA-11D2-AA0D-00E098032B8C and EFI_IMAGE_SECURITY_DATABASE_GUID
// D719B2CB-3D3A-4596-A3BC-DAD00E67656F, in their in-memory (mixed-endian) form.
constexpr Guid kEfiGlobalVariable = {0x61, 0xDF, 0xE4, 0x8B, 0xCA, 0x93, 0xD2, 0x11,
                                     0xAA, 0x0D, 0x00, 0xE0, 0x98, 0x03, 0x2B, 0x8C};
constexpr Guid kImageSecurityDatabase = {0xCB, 0xB2, 0x19, 0xD7, 0x3A, 0x3D, 0x96, 0x45,
                                         0xA3, 0xBC, 0xDA, 0xD0, 0x0E, 0x67, 0x65, 0x6F};
// The GPT partition types of an EFI system partition and a Linux filesystem.
constexpr Guid kEspType = {0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11,
                           0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B};
constexpr Guid kLinuxType = {0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47,
                             0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4};

void PutLe(Bytes& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}
void PutBytes(Bytes& out, std::span<const std::uint8_t> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}
void PutText(Bytes& out, std::string_view text) { out.insert(out.end(), text.begin(), text.end()); }
// UCS-2 little-endian of ASCII text, without a terminator.
void PutUtf16(Bytes& out, std::string_view text) {
  for (char c : text) PutLe(out, static_cast<std::uint8_t>(c), 2);
}

Bytes Sha256(std::span<const std::uint8_t> data) {
  return HashMessage(kAlgSha256, data).value_or(Bytes(32, 0));
}
Bytes Sha256Text(std::string_view text) {
  return Sha256(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

LogEvent Measured(std::uint32_t pcr, std::uint32_t type, Bytes digest, Bytes data) {
  return LogEvent{pcr, type, {{kAlgSha256, std::move(digest)}}, std::move(data)};
}
// An event whose digest is that of its own data (PFP: EV_SEPARATOR, EV_S_CRTM_VERSION, ...).
LogEvent SelfMeasured(std::uint32_t pcr, std::uint32_t type, Bytes data) {
  Bytes digest = Sha256(data);
  return Measured(pcr, type, std::move(digest), std::move(data));
}

// UEFI_VARIABLE_DATA (PFP §10.2.6): VariableName GUID, UnicodeNameLength, VariableDataLength,
// UnicodeName, VariableData.
Bytes VariableData(const Guid& guid, std::string_view name, std::span<const std::uint8_t> value) {
  Bytes out(guid.begin(), guid.end());
  PutLe(out, name.size(), 8);
  PutLe(out, value.size(), 8);
  PutUtf16(out, name);
  PutBytes(out, value);
  return out;
}

// A device path of one File Path Media node (UEFI 2.9 §10.3.5.4) and the End node.
Bytes FilePathDevicePath(std::string_view path) {
  Bytes out = {0x04, 0x04};
  PutLe(out, 4 + 2 * (path.size() + 1), 2);
  PutUtf16(out, path);
  PutLe(out, 0, 2);
  PutBytes(out, std::array<std::uint8_t, 4>{0x7F, 0xFF, 0x04, 0x00});
  return out;
}

// UEFI_IMAGE_LOAD_EVENT (PFP §10.2.3) of an image loaded from `path`; digest: the image's.
LogEvent ImageLoad(const BootComponent& image, std::uint64_t location) {
  Bytes path = FilePathDevicePath(image.name);
  Bytes data;
  PutLe(data, location, 8);    // ImageLocationInMemory
  PutLe(data, 0x00A00000, 8);  // ImageLengthInMemory
  PutLe(data, 0, 8);           // ImageLinkTimeAddress
  PutLe(data, path.size(), 8);
  PutBytes(data, path);
  return Measured(4, kEvEfiBootServicesApplication, image.digest, std::move(data));
}

std::vector<LogEvent> FirmwareEvents(const BootProfile& profile) {
  Bytes version;
  PutUtf16(version, profile.firmware.name);
  PutLe(version, 0, 2);
  // UEFI_PLATFORM_FIRMWARE_BLOB2 (PFP §10.2.5): description, base, length.
  Bytes blob = {static_cast<std::uint8_t>(std::min<std::size_t>(profile.firmware.name.size(), 255))};
  PutText(blob, std::string_view(profile.firmware.name).substr(0, blob[0]));
  PutLe(blob, 0xFFC00000, 8);
  PutLe(blob, 0x00400000, 8);
  return {SelfMeasured(0, kEvSCrtmVersion, std::move(version)),
          Measured(0, kEvEfiPlatformFirmwareBlob2, profile.firmware.digest, std::move(blob))};
}

// PCR 7 (PFP §3.3.4.8): SecureBoot, PK, KEK, db and dbx, each measured as its UEFI_VARIABLE_DATA.
std::vector<LogEvent> SecureBootEvents() {
  std::vector<LogEvent> events;
  const std::array<std::uint8_t, 1> enabled = {1};
  events.push_back(
      SelfMeasured(7, kEvEfiVariableDriverConfig, VariableData(kEfiGlobalVariable, "SecureBoot", enabled)));
  for (std::string_view name : {"PK", "KEK"}) {
    events.push_back(SelfMeasured(7, kEvEfiVariableDriverConfig, VariableData(kEfiGlobalVariable, name, {})));
  }
  for (std::string_view name : {"db", "dbx"}) {
    events.push_back(
        SelfMeasured(7, kEvEfiVariableDriverConfig, VariableData(kImageSecurityDatabase, name, {})));
  }
  return events;
}

// PCR 1 (PFP §3.3.4.2): BootOrder and the boot option (EFI_LOAD_OPTION) that loads the boot
// loader; the digest is that of the variable's value.
std::vector<LogEvent> BootVariableEvents(const BootProfile& profile) {
  const std::array<std::uint8_t, 2> order = {0x01, 0x00};
  Bytes path = FilePathDevicePath(profile.boot_loader.name);
  Bytes option;
  PutLe(option, 1, 4);  // LOAD_OPTION_ACTIVE
  PutLe(option, path.size(), 2);
  PutUtf16(option, "debian");
  PutLe(option, 0, 2);
  PutBytes(option, path);
  return {
      Measured(1, kEvEfiVariableBoot, Sha256(order), VariableData(kEfiGlobalVariable, "BootOrder", order)),
      Measured(1, kEvEfiVariableBoot, Sha256(option), VariableData(kEfiGlobalVariable, "Boot0001", option))};
}

// UEFI_PARTITION_TABLE_HEADER (UEFI 2.9 §5.3.2), 92 bytes.
Bytes GptHeader() {
  Bytes out;
  PutText(out, "EFI PART");
  PutLe(out, 0x00010000, 4);
  PutLe(out, 92, 4);
  PutLe(out, 0, 8);  // HeaderCRC32, Reserved
  PutLe(out, 1, 8);
  PutLe(out, 0x01FFFFFF, 8);  // AlternateLBA of a 16 GiB disk
  PutLe(out, 34, 8);
  PutLe(out, 0x01FFFFDE, 8);
  PutBytes(out, std::array<std::uint8_t, 16>{0x5A, 0x17, 0xB0, 0x07});  // DiskGUID
  PutLe(out, 2, 8);
  PutLe(out, 128, 4);
  PutLe(out, 128, 4);
  PutLe(out, 0, 4);
  return out;
}

// A 128-byte GPT partition entry.
Bytes GptPartition(const Guid& type, std::uint8_t unique, std::uint64_t first, std::uint64_t last,
                   std::string_view name) {
  Bytes out(type.begin(), type.end());
  PutBytes(out, std::array<std::uint8_t, 16>{unique, 0x5A, 0x17});
  PutLe(out, first, 8);
  PutLe(out, last, 8);
  PutLe(out, 0, 8);
  Bytes label;
  PutUtf16(label, name);
  label.resize(72, 0);
  PutBytes(out, label);
  return out;
}

// PCR 5 (PFP §10.2.7): UEFI_GPT_DATA of the boot disk, an ESP and a root partition.
LogEvent GptEvent() {
  Bytes data = GptHeader();
  PutLe(data, 2, 8);
  PutBytes(data, GptPartition(kEspType, 1, 2048, 1050623, "EFI System Partition"));
  PutBytes(data, GptPartition(kLinuxType, 2, 1050624, 0x01FFFFDE, "root"));
  return SelfMeasured(5, kEvEfiGptEvent, std::move(data));
}

LogEvent Action(std::uint32_t pcr, std::string_view text) {
  return SelfMeasured(pcr, kEvEfiAction, Bytes(text.begin(), text.end()));
}

// What grub measures (grub 2.06 tpm module): into PCR 8 "kernel_cmdline: <line>" with the digest
// of the line, into PCR 9 each file it loads, named by its path.
std::vector<LogEvent> GrubEvents(const BootProfile& profile) {
  Bytes command = Bytes();
  PutText(command, "kernel_cmdline: " + profile.command_line);
  command.push_back(0);
  Bytes kernel;
  PutText(kernel, profile.kernel.name);
  kernel.push_back(0);
  Bytes initrd;
  PutText(initrd, profile.initrd.name);
  initrd.push_back(0);
  return {Measured(8, kEvIpl, Sha256Text(profile.command_line), std::move(command)),
          Measured(9, kEvIpl, profile.kernel.digest, std::move(kernel)),
          Measured(9, kEvIpl, profile.initrd.digest, std::move(initrd))};
}

void Append(std::vector<LogEvent>& events, std::vector<LogEvent> more) {
  for (auto& event : more) events.push_back(std::move(event));
}

}  // namespace

PcrSelection BootPcrSelection() {
  PcrSelection selection;
  for (std::uint32_t pcr = 0; pcr < kBootPcrCount; ++pcr) selection.pcrs.push_back(pcr);
  return selection;
}

std::vector<LogEvent> BootEvents(const BootProfile& profile) {
  std::vector<LogEvent> events = FirmwareEvents(profile);
  Append(events, SecureBootEvents());
  Append(events, BootVariableEvents(profile));
  events.push_back(Action(4, "Calling EFI Application from Boot Option"));
  for (std::uint32_t pcr = 0; pcr <= 7; ++pcr) events.push_back(SelfMeasured(pcr, kEvSeparator, Bytes(4, 0)));
  events.push_back(GptEvent());
  events.push_back(ImageLoad(profile.boot_loader, 0x7D000000));
  events.push_back(ImageLoad(profile.kernel, 0x7C000000));
  Append(events, GrubEvents(profile));
  events.push_back(Action(5, "Exit Boot Services Invocation"));
  events.push_back(Action(5, "Exit Boot Services Returned with Success"));
  return events;
}

Result<EventLog> BootUnit(const TpmContext& tpm, const BootProfile& profile) {
  EventLog log{{kAlgSha256}, BootEvents(profile)};
  for (std::size_t i = 0; i < log.events.size(); ++i) {
    const LogEvent& event = log.events[i];
    IDEVID_TRY(ExtendPcr(tpm, event.pcr, event.digests.at(kAlgSha256)), "measuring event {} ({}) of the boot",
               i + 1, EventTypeName(event.type));
  }
  return log;
}

Result<EventLog> BootUnitAndWriteLog(const std::string& tcti, const BootProfile& profile,
                                     const std::filesystem::path& log_path) {
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(tcti), "booting the unit");
  IDEVID_ASSIGN_OR_RETURN(EventLog log, BootUnit(tpm, profile), "booting the unit with profile {}",
                          QuotedDisplayText(profile.name));
  IDEVID_TRY(WriteFileAtomic(log_path, EncodeEventLog(log.events)), "writing the boot's event log");
  return log;
}

}  // namespace idevid
