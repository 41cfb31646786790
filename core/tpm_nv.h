// NV indices: define, write, write-lock, read, read the public area, undefine. Reads and writes
// are split into chunks of at most TPM_PT_NV_BUFFER_MAX bytes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <tss2/tss2_tpm2_types.h>

#include "core/result.h"
#include "core/tpm_context.h"

namespace idevid {

// Who authorizes an NV read or write: the owner hierarchy or the index's own auth value.
enum class NvAuth { kOwner, kIndex };

// Attributes of an index written once by the owner and then locked for good, readable by
// anyone with the (empty) index auth: TPMA_NV_OWNERWRITE|OWNERREAD|AUTHREAD|WRITEDEFINE|NO_DA.
inline constexpr TPMA_NV kNvWriteOnceReadable =
    TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD | TPMA_NV_WRITEDEFINE | TPMA_NV_NO_DA;

struct NvDefinition {
  TPM2_HANDLE index = 0;  // 0x01xxxxxx
  std::uint16_t size = 0;
  TPMA_NV attributes = kNvWriteOnceReadable;  // an ordinary index (TPM_NT_ORDINARY)
};

// The public area of a defined index.
struct NvPublic {
  TPM2_HANDLE index = 0;
  std::uint16_t size = 0;
  TPMA_NV attributes = 0;
  TPMI_ALG_HASH name_alg = TPM2_ALG_NULL;
  bool written() const { return (attributes & TPMA_NV_WRITTEN) != 0; }
  bool write_locked() const { return (attributes & TPMA_NV_WRITELOCKED) != 0; }
};

// Defines an ordinary index under the owner hierarchy (empty index auth). Fails with
// TPM_RC_NV_DEFINED if the index exists, TPM_RC_NV_SPACE if the TPM is full.
Result<void> NvDefine(const TpmContext& tpm, const NvDefinition& definition);

// Reads the public area. Fails with TPM_RC_HANDLE when the index is not defined.
Result<NvPublic> NvReadPublic(const TpmContext& tpm, TPM2_HANDLE index);

// Writes `data` at `offset`, in chunks. Fails with TPM_RC_NV_LOCKED after NvWriteLock.
Result<void> NvWrite(const TpmContext& tpm, TPM2_HANDLE index, std::span<const std::uint8_t> data,
                     std::uint16_t offset = 0, NvAuth auth = NvAuth::kOwner);

// Reads `size` bytes at `offset` (the whole index when size is 0), in chunks. Fails with
// TPM_RC_NV_UNINITIALIZED when the index was never written.
Result<std::vector<std::uint8_t>> NvRead(const TpmContext& tpm, TPM2_HANDLE index, std::uint16_t size = 0,
                                         std::uint16_t offset = 0, NvAuth auth = NvAuth::kIndex);

// Locks the index against writes; with TPMA_NV_WRITEDEFINE the lock lasts until undefined.
Result<void> NvWriteLock(const TpmContext& tpm, TPM2_HANDLE index, NvAuth auth = NvAuth::kOwner);

// Removes the index (owner authorization).
Result<void> NvUndefine(const TpmContext& tpm, TPM2_HANDLE index);

// The largest chunk one NV read or write may carry on this TPM (and in the TSS's buffers).
Result<std::uint16_t> NvChunkSize(const TpmContext& tpm);

}  // namespace idevid
