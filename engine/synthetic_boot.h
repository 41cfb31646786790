// The measured boot of a unit that has no firmware (a swtpm): the events PC Client UEFI firmware,
// shim and grub would measure for a boot profile's chain, extended into the TPM's SHA-256 PCRs
// 0-9 and written as a crypto-agile event log, so that the unit can be attested like a device.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/event_log.h"
#include "core/result.h"
#include "core/tpm_context.h"
#include "core/tpm_pcr.h"
#include "engine/boot_profile.h"

namespace idevid {

// The PCRs a synthetic boot measures into: sha256:0,1,2,3,4,5,6,7,8,9.
PcrSelection BootPcrSelection();

// The events of booting `profile` (TCG PC Client PFP 1.05 §3.3.4 and §10.4.4): PCR 0 the S-CRTM
// version and the firmware blob, PCR 7 the Secure Boot variables, PCR 1 the boot variables, PCR 4
// the boot-option action, EV_SEPARATOR into PCRs 0-7, PCR 5 the GPT, PCR 4 the boot loader and
// the kernel as EFI applications, PCR 8 the kernel command line and PCR 9 the kernel and initrd
// (EV_IPL, as grub measures them), PCR 5 ExitBootServices. Each event's data names its component
// (the firmware's and the images' names, the file paths, the command line). Never fails.
std::vector<LogEvent> BootEvents(const BootProfile& profile);

// Extends BootEvents(profile) into the TPM's SHA-256 PCRs in order and returns the log of what it
// extended. The PCRs must be fresh (just after TPM2_Startup(CLEAR)) for the log's replay to equal
// them. Fails with the TPM's error naming the event.
Result<EventLog> BootUnit(const TpmContext& tpm, const BootProfile& profile);

// Opens the TPM at `tcti`, boots it (BootUnit) and writes the log to `log_path` (replaced
// atomically). Fails with the TPM's or the file's error.
Result<EventLog> BootUnitAndWriteLog(const std::string& tcti, const BootProfile& profile,
                                     const std::filesystem::path& log_path);

}  // namespace idevid
