// The TCG PC Client measured-boot event log in the crypto-agile format (TCG PC Client Platform
// Firmware Profile 1.05, §10: a TCG_PCClientPCREvent carrying the Spec ID event first, then
// TCG_PCR_EVENT2 records), as firmware leaves it in
// /sys/kernel/security/tpm0/binary_bios_measurements and tpm2_eventlog reads it; and its replay
// into the PCR values it predicts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/x509.h"

namespace idevid {

// Event types (PFP §10.4.1) the synthetic boot and the policies name.
inline constexpr std::uint32_t kEvPostCode = 0x00000001;
inline constexpr std::uint32_t kEvNoAction = 0x00000003;
inline constexpr std::uint32_t kEvSeparator = 0x00000004;
inline constexpr std::uint32_t kEvAction = 0x00000005;
inline constexpr std::uint32_t kEvSCrtmVersion = 0x00000008;
inline constexpr std::uint32_t kEvIpl = 0x0000000D;
inline constexpr std::uint32_t kEvEfiVariableDriverConfig = 0x80000001;
inline constexpr std::uint32_t kEvEfiVariableBoot = 0x80000002;
inline constexpr std::uint32_t kEvEfiBootServicesApplication = 0x80000003;
inline constexpr std::uint32_t kEvEfiGptEvent = 0x80000006;
inline constexpr std::uint32_t kEvEfiAction = 0x80000007;
inline constexpr std::uint32_t kEvEfiPlatformFirmwareBlob = 0x80000008;
// PFP §10.2.5 UEFI_PLATFORM_FIRMWARE_BLOB2: the blob with its description (the firmware's name).
inline constexpr std::uint32_t kEvEfiPlatformFirmwareBlob2 = 0x8000000A;

// TPM_ALG_SHA256: the one bank the harness measures into and replays.
inline constexpr std::uint16_t kAlgSha256 = 0x000B;
// The PCRs a PC Client boot measures into (0-7 firmware and boot loader, 8-9 the OS loader's
// command line and files).
inline constexpr std::uint32_t kBootPcrCount = 10;
// The largest event log the harness parses or accepts: a real firmware log is 20-100 KiB.
inline constexpr std::size_t kMaxEventLogBytes = 1024 * 1024;

// One measurement: what was extended into which PCR (its digest per bank) and the event data.
struct LogEvent {
  std::uint32_t pcr = 0;
  std::uint32_t type = 0;
  std::map<std::uint16_t, Bytes> digests;  // TPM_ALG_ID -> digest
  Bytes data;
};

// A parsed log: the banks its Spec ID event declares and every event after it, in order.
struct EventLog {
  std::vector<std::uint16_t> algorithms;  // from the Spec ID event, e.g. {kAlgSha256}
  std::vector<LogEvent> events;           // without the Spec ID event itself
};

// The event type's name as the PFP spells it ("EV_SEPARATOR"), or "0x..." for one it does not
// define.
std::string EventTypeName(std::uint32_t type);
// The event type named by `name` (a PFP name or a 0x... number). kConfig/kSyntax otherwise.
Result<std::uint32_t> EventTypeFromName(std::string_view name);

// Parses a whole log (hostile input: at most kMaxEventLogBytes, every length checked without
// adding lengths together). Fails with kConfig/kSyntax naming the event's index (as tpm2_eventlog
// counts: the Spec ID event is event 0, events[i] is event i + 1) and the byte offset where it
// starts ("event 12 at byte 1880: digest count 9, but the Spec ID event declares 1 bank(s)"),
// kConfig/kLimit when over kMaxEventLogBytes. A log cut at an event boundary parses as the
// shorter log it then is.
Result<EventLog> ParseEventLog(std::span<const std::uint8_t> bytes);

// The log's bytes: the Spec ID event (SHA-256 bank only) then each event as a TCG_PCR_EVENT2 with
// its SHA-256 digest (events must carry one: 32 zero bytes are written for an event without).
Bytes EncodeEventLog(const std::vector<LogEvent>& events);

// The SHA-256 PCR values the log predicts: for each PCR an event touches, starting from 32 zero
// bytes, PCR := SHA-256(PCR || digest) for every event but EV_NO_ACTION. Fails with kConfig/kSyntax
// naming the event (numbered as ParseEventLog does) when it lacks a SHA-256 digest or names a PCR
// above 23.
Result<std::map<std::uint32_t, Bytes>> ReplayEventLog(const EventLog& log);

}  // namespace idevid
