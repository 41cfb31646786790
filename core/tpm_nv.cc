#include "core/tpm_nv.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "core/tpm_capability.h"
#include "core/tpm_types.h"
#include "core/tss_error.h"

namespace idevid {
namespace {

ESYS_TR AuthHandle(NvAuth auth, const EsysReference& nv) {
  return auth == NvAuth::kOwner ? ESYS_TR_RH_OWNER : nv.handle();
}

std::string IndexName(TPM2_HANDLE index) { return fmt::format("NV index {:#010x}", index); }

Result<EsysReference> ReferenceIndex(const TpmContext& tpm, TPM2_HANDLE index) {
  auto nv = ReferenceTpmHandle(tpm, index);
  if (!nv && IsTpmRc(nv.error(), TPM2_RC_HANDLE)) {
    return Fail(std::move(nv).error().WithContext(fmt::format("{} is not defined", IndexName(index))));
  }
  return nv;
}

Result<NvPublic> ReadPublicOf(const TpmContext& tpm, const EsysReference& nv, TPM2_HANDLE index) {
  EsysBuffer<TPM2B_NV_PUBLIC> pub;
  EsysBuffer<TPM2B_NAME> name;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_NV_ReadPublic(tpm.esys(), nv.handle(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, pub.out(),
                              name.out());
  });
  if (rc != TSS2_RC_SUCCESS) {
    return FailTss(rc, fmt::format("TPM2_NV_ReadPublic of {} failed", IndexName(index)));
  }
  return NvPublic{index, pub->nvPublic.dataSize, pub->nvPublic.attributes, pub->nvPublic.nameAlg};
}

}  // namespace

Result<std::uint16_t> NvChunkSize(const TpmContext& tpm) {
  IDEVID_ASSIGN_OR_RETURN(auto max, ReadTpmProperty(tpm, TPM2_PT_NV_BUFFER_MAX),
                          "cannot learn the largest NV chunk");
  if (max == 0)
    return UsageError(UsageCode::kUnsupported,
                      "the TPM reports TPM_PT_NV_BUFFER_MAX = 0; NV cannot be read or written");
  return static_cast<std::uint16_t>(std::min<std::uint32_t>(max, TPM2_MAX_NV_BUFFER_SIZE));
}

Result<void> NvDefine(const TpmContext& tpm, const NvDefinition& definition) {
  TPM2B_NV_PUBLIC info{};
  info.nvPublic.nvIndex = definition.index;
  info.nvPublic.nameAlg = TPM2_ALG_SHA256;
  info.nvPublic.attributes = definition.attributes;
  info.nvPublic.dataSize = definition.size;
  TPM2B_AUTH empty_auth{};
  ESYS_TR created = ESYS_TR_NONE;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_NV_DefineSpace(tpm.esys(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               &empty_auth, &info, &created);
  });
  if (rc != TSS2_RC_SUCCESS) {
    return FailTss(rc,
                   fmt::format("cannot define {} of {} bytes", IndexName(definition.index), definition.size));
  }
  EsysReference close_on_return(tpm, created);
  return {};
}

Result<NvPublic> NvReadPublic(const TpmContext& tpm, TPM2_HANDLE index) {
  IDEVID_ASSIGN_OR_RETURN(auto nv, ReferenceIndex(tpm, index));
  return ReadPublicOf(tpm, nv, index);
}

Result<void> NvWrite(const TpmContext& tpm, TPM2_HANDLE index, std::span<const std::uint8_t> data,
                     std::uint16_t offset, NvAuth auth) {
  if (offset + data.size() > 0xFFFF) {
    return UsageError(
        UsageCode::kInvalidArgument,
        fmt::format("cannot write {} bytes at offset {}: NV offsets end at 65535", data.size(), offset));
  }
  IDEVID_ASSIGN_OR_RETURN(auto nv, ReferenceIndex(tpm, index));
  IDEVID_ASSIGN_OR_RETURN(auto chunk, NvChunkSize(tpm), "cannot write {}", IndexName(index));
  std::size_t done = 0;
  while (done < data.size()) {
    TPM2B_MAX_NV_BUFFER buffer{};
    buffer.size = static_cast<UINT16>(std::min<std::size_t>(chunk, data.size() - done));
    std::memcpy(buffer.buffer, data.data() + done, buffer.size);
    auto at = static_cast<UINT16>(offset + done);
    TSS2_RC rc = tpm.Run([&] {
      return Esys_NV_Write(tpm.esys(), AuthHandle(auth, nv), nv.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, &buffer, at);
    });
    if (rc != TSS2_RC_SUCCESS) {
      return FailTss(
          rc, fmt::format("cannot write {} bytes at offset {} of {}", buffer.size, at, IndexName(index)));
    }
    done += buffer.size;
  }
  return {};
}

Result<std::vector<std::uint8_t>> NvRead(const TpmContext& tpm, TPM2_HANDLE index, std::uint16_t size,
                                         std::uint16_t offset, NvAuth auth) {
  IDEVID_ASSIGN_OR_RETURN(auto nv, ReferenceIndex(tpm, index));
  IDEVID_ASSIGN_OR_RETURN(NvPublic pub, ReadPublicOf(tpm, nv, index));
  if (size == 0) size = static_cast<std::uint16_t>(pub.size - std::min(offset, pub.size));
  if (offset + size > pub.size) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("cannot read {} bytes at offset {} of {}: it holds {} bytes", size, offset,
                                  IndexName(index), pub.size));
  }
  IDEVID_ASSIGN_OR_RETURN(auto chunk, NvChunkSize(tpm), "cannot read {}", IndexName(index));
  std::vector<std::uint8_t> out;
  out.reserve(size);
  while (out.size() < size) {
    auto want = static_cast<UINT16>(std::min<std::size_t>(chunk, size - out.size()));
    auto at = static_cast<UINT16>(offset + out.size());
    EsysBuffer<TPM2B_MAX_NV_BUFFER> buffer;
    TSS2_RC rc = tpm.Run([&] {
      return Esys_NV_Read(tpm.esys(), AuthHandle(auth, nv), nv.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                          ESYS_TR_NONE, want, at, buffer.out());
    });
    if (rc != TSS2_RC_SUCCESS) {
      return FailTss(rc, fmt::format("cannot read {} bytes at offset {} of {}", want, at, IndexName(index)));
    }
    if (buffer->size == 0) {
      return UsageError(UsageCode::kUnsupported,
                        fmt::format("the TPM returned no bytes at offset {} of {}", at, IndexName(index)));
    }
    out.insert(out.end(), buffer->buffer, buffer->buffer + buffer->size);
  }
  return out;
}

Result<void> NvWriteLock(const TpmContext& tpm, TPM2_HANDLE index, NvAuth auth) {
  IDEVID_ASSIGN_OR_RETURN(auto nv, ReferenceIndex(tpm, index));
  TSS2_RC rc = tpm.Run([&] {
    return Esys_NV_WriteLock(tpm.esys(), AuthHandle(auth, nv), nv.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE);
  });
  if (rc != TSS2_RC_SUCCESS) {
    return FailTss(rc, fmt::format("cannot write-lock {}", IndexName(index)));
  }
  return {};
}

Result<void> NvUndefine(const TpmContext& tpm, TPM2_HANDLE index) {
  IDEVID_ASSIGN_OR_RETURN(auto nv, ReferenceIndex(tpm, index));
  TSS2_RC rc = tpm.Run([&] {
    return Esys_NV_UndefineSpace(tpm.esys(), ESYS_TR_RH_OWNER, nv.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE);
  });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, fmt::format("cannot undefine {}", IndexName(index)));
  nv.Release();  // the TPM entity and ESYS's record of it are gone
  return {};
}

}  // namespace idevid
