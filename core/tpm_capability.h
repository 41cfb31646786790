// What a TPM says about itself: startup state, fixed and variable properties, handle lists.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <tss2/tss2_tpm2_types.h>

#include "core/result.h"
#include "core/tpm_context.h"
#include "core/tpm_types.h"

namespace idevid {

// Outcome of EnsureStarted.
enum class StartupState { kWasStarted, kStartedNow };

// Sends TPM2_Startup(CLEAR) if the TPM has not been started since power-on; a TPM that is
// already started (TPM_RC_INITIALIZE) is fine. Fails only when the TPM cannot be reached or
// refuses startup.
Result<StartupState> EnsureStarted(const TpmContext& tpm);

// The identity and limits of a TPM, from TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES).
struct TpmInfo {
  std::string manufacturer;  // TPM_PT_MANUFACTURER as text, e.g. "IBM", "IFX", "STM"
  std::uint32_t manufacturer_id = 0;
  std::string vendor_string;  // TPM_PT_VENDOR_STRING_1..4, trailing NULs and blanks removed
  std::uint32_t firmware_version_1 = 0;
  std::uint32_t firmware_version_2 = 0;
  std::string firmware_version;        // "a.b.c.d" from the two 16-bit halves of each word
  std::string spec_revision;           // TPM_PT_REVISION as "1.59"
  std::uint32_t nv_buffer_max = 0;     // TPM_PT_NV_BUFFER_MAX: largest NV read/write chunk
  std::uint32_t nv_index_max = 0;      // TPM_PT_NV_INDEX_MAX: largest NV index
  std::uint32_t transient_min = 0;     // TPM_PT_HR_TRANSIENT_MIN: transient slots guaranteed
  std::uint32_t transient_avail = 0;   // TPM_PT_HR_TRANSIENT_AVAIL: free transient slots now
  std::uint32_t persistent_avail = 0;  // TPM_PT_HR_PERSISTENT_AVAIL
  std::uint32_t startup_clear = 0;     // TPM_PT_STARTUP_CLEAR bits
};

// Reads the fixed and variable properties. Fails with the TPM's error when it cannot.
Result<TpmInfo> ReadTpmInfo(const TpmContext& tpm);

// Reads one TPM property (TPM_PT_*). Fails with kUsage when the TPM does not report it.
Result<std::uint32_t> ReadTpmProperty(const TpmContext& tpm, TPM2_PT property);

// Lists the handles of one type: TPM2_HT_PERSISTENT, TPM2_HT_NV_INDEX, TPM2_HT_TRANSIENT, ...
// (through a resource manager, transient handles are this connection's only).
Result<std::vector<TPM2_HANDLE>> ListHandles(const TpmContext& tpm, TPM2_HT type);

// The handles of this connection's transient objects, of the persistent objects and of the
// defined NV indices: ListHandles of TPM2_HT_TRANSIENT, _PERSISTENT and _NV_INDEX.
Result<std::vector<TpmHandle>> ListTransientHandles(const TpmContext& tpm);
Result<std::vector<TpmHandle>> ListPersistentHandles(const TpmContext& tpm);
Result<std::vector<TpmHandle>> ListNvIndices(const TpmContext& tpm);

// TPM_PT_MANUFACTURER (up to four ASCII letters, e.g. 0x49424D00 "IBM"), the cheapest question
// a started TPM answers. Fails with the TPM's error, TPM_RC_INITIALIZE before TPM2_Startup.
Result<std::uint32_t> ReadTpmManufacturer(const TpmContext& tpm);

// Returns `count` bytes from the TPM's random number generator (TPM2_GetRandom, in chunks).
Result<std::vector<std::uint8_t>> GetRandom(const TpmContext& tpm, std::size_t count);

}  // namespace idevid
