#include "core/tpm_capability.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/tpm_types.h"
#include "core/tss_error.h"

namespace idevid {
namespace {

using PropertyMap = std::map<TPM2_PT, std::uint32_t>;

// Reads every property from `first` on until the TPM reports no more data or `last` is passed.
Result<PropertyMap> ReadProperties(const TpmContext& tpm, TPM2_PT first, TPM2_PT last) {
  PropertyMap out;
  TPMI_YES_NO more = TPM2_YES;
  TPM2_PT next = first;
  while (more == TPM2_YES && next <= last) {
    EsysBuffer<TPMS_CAPABILITY_DATA> data;
    TSS2_RC rc = tpm.Run([&] {
      return Esys_GetCapability(tpm.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                next, TPM2_MAX_TPM_PROPERTIES, &more, data.out());
    });
    if (rc != TSS2_RC_SUCCESS) return FailTss(rc, "TPM2_GetCapability(TPM_PROPERTIES) failed");
    const TPML_TAGGED_TPM_PROPERTY& list = data->data.tpmProperties;
    if (list.count == 0) break;
    for (std::uint32_t i = 0; i < list.count; ++i) {
      out[list.tpmProperty[i].property] = list.tpmProperty[i].value;
    }
    next = list.tpmProperty[list.count - 1].property + 1;
  }
  return out;
}

std::string FourChars(std::uint32_t word) {
  std::string s;
  for (int shift = 24; shift >= 0; shift -= 8) {
    char c = static_cast<char>((word >> shift) & 0xFF);
    if (c != '\0') s.push_back(c);
  }
  return s;
}

std::uint32_t Get(const PropertyMap& map, TPM2_PT property) {
  auto it = map.find(property);
  return it == map.end() ? 0 : it->second;
}

void FillIdentity(const PropertyMap& p, TpmInfo& info) {
  info.manufacturer_id = Get(p, TPM2_PT_MANUFACTURER);
  info.manufacturer = FourChars(info.manufacturer_id);
  for (TPM2_PT pt :
       {TPM2_PT_VENDOR_STRING_1, TPM2_PT_VENDOR_STRING_2, TPM2_PT_VENDOR_STRING_3, TPM2_PT_VENDOR_STRING_4}) {
    info.vendor_string += FourChars(Get(p, pt));
  }
  while (!info.vendor_string.empty() && info.vendor_string.back() == ' ') {
    info.vendor_string.pop_back();
  }
  info.firmware_version_1 = Get(p, TPM2_PT_FIRMWARE_VERSION_1);
  info.firmware_version_2 = Get(p, TPM2_PT_FIRMWARE_VERSION_2);
  info.firmware_version =
      fmt::format("{}.{}.{}.{}", info.firmware_version_1 >> 16, info.firmware_version_1 & 0xFFFF,
                  info.firmware_version_2 >> 16, info.firmware_version_2 & 0xFFFF);
  std::uint32_t revision = Get(p, TPM2_PT_REVISION);
  info.spec_revision = fmt::format("{}.{:02}", revision / 100, revision % 100);
}

}  // namespace

Result<StartupState> EnsureStarted(const TpmContext& tpm) {
  // Any command before TPM2_Startup answers TPM_RC_INITIALIZE (TPM 2.0 Part 3, 9.3.1); ESYS hides
  // that answer for Startup itself, so ask with GetCapability first.
  auto probe = ReadTpmProperty(tpm, TPM2_PT_MANUFACTURER);
  if (probe) return StartupState::kWasStarted;
  if (probe.error().domain() != ErrorDomain::kTss ||
      BaseTpmRc(static_cast<TSS2_RC>(probe.error().code())) != TPM2_RC_INITIALIZE) {
    return Fail(probe.error());
  }
  TSS2_RC rc = tpm.Run([&] { return Esys_Startup(tpm.esys(), TPM2_SU_CLEAR); });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, "TPM2_Startup(CLEAR) failed");
  return StartupState::kStartedNow;
}

Result<TpmInfo> ReadTpmInfo(const TpmContext& tpm) {
  IDEVID_ASSIGN_OR_RETURN(PropertyMap fixed, ReadProperties(tpm, TPM2_PT_FIXED, TPM2_PT_FIXED + 0xFF),
                          "cannot read the TPM's fixed properties");
  IDEVID_ASSIGN_OR_RETURN(PropertyMap var, ReadProperties(tpm, TPM2_PT_VAR, TPM2_PT_VAR + 0xFF),
                          "cannot read the TPM's variable properties");
  TpmInfo info;
  FillIdentity(fixed, info);
  info.nv_buffer_max = Get(fixed, TPM2_PT_NV_BUFFER_MAX);
  info.nv_index_max = Get(fixed, TPM2_PT_NV_INDEX_MAX);
  info.transient_min = Get(fixed, TPM2_PT_HR_TRANSIENT_MIN);
  info.transient_avail = Get(var, TPM2_PT_HR_TRANSIENT_AVAIL);
  info.persistent_avail = Get(var, TPM2_PT_HR_PERSISTENT_AVAIL);
  info.startup_clear = Get(var, TPM2_PT_STARTUP_CLEAR);
  return info;
}

Result<std::uint32_t> ReadTpmProperty(const TpmContext& tpm, TPM2_PT property) {
  IDEVID_ASSIGN_OR_RETURN(PropertyMap map, ReadProperties(tpm, property, property),
                          "cannot read TPM property {:#x}", property);
  auto it = map.find(property);
  if (it == map.end()) {
    return UsageError(UsageCode::kUnsupported,
                      fmt::format("the TPM does not report property {:#x}", property));
  }
  return it->second;
}

Result<std::vector<TPM2_HANDLE>> ListHandles(const TpmContext& tpm, TPM2_HT type) {
  std::vector<TPM2_HANDLE> handles;
  TPM2_HANDLE next = static_cast<TPM2_HANDLE>(type) << TPM2_HR_SHIFT;
  const TPM2_HANDLE end = next + TPM2_HR_HANDLE_MASK;
  TPMI_YES_NO more = TPM2_YES;
  while (more == TPM2_YES) {
    EsysBuffer<TPMS_CAPABILITY_DATA> data;
    TSS2_RC rc = tpm.Run([&] {
      return Esys_GetCapability(tpm.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, next,
                                TPM2_MAX_CAP_HANDLES, &more, data.out());
    });
    if (rc != TSS2_RC_SUCCESS) return FailTss(rc, "TPM2_GetCapability(HANDLES) failed");
    const TPML_HANDLE& list = data->data.handles;
    for (std::uint32_t i = 0; i < list.count; ++i) {
      if (list.handle[i] <= end) handles.push_back(list.handle[i]);
    }
    if (list.count == 0 || list.handle[list.count - 1] >= end) break;
    next = list.handle[list.count - 1] + 1;
  }
  return handles;
}

Result<std::vector<std::uint8_t>> GetRandom(const TpmContext& tpm, std::size_t count) {
  std::vector<std::uint8_t> out;
  out.reserve(count);
  while (out.size() < count) {
    auto want = static_cast<UINT16>(std::min<std::size_t>(count - out.size(), 32));
    EsysBuffer<TPM2B_DIGEST> bytes;
    TSS2_RC rc = tpm.Run([&] {
      return Esys_GetRandom(tpm.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, want, bytes.out());
    });
    if (rc != TSS2_RC_SUCCESS) return FailTss(rc, "TPM2_GetRandom failed");
    if (bytes->size == 0) return UsageError(UsageCode::kUnsupported, "TPM2_GetRandom returned no bytes");
    out.insert(out.end(), bytes->buffer, bytes->buffer + bytes->size);
  }
  return out;
}

Result<std::vector<TpmHandle>> ListTransientHandles(const TpmContext& tpm) {
  return ListHandles(tpm, TPM2_HT_TRANSIENT);
}

Result<std::vector<TpmHandle>> ListPersistentHandles(const TpmContext& tpm) {
  return ListHandles(tpm, TPM2_HT_PERSISTENT);
}

Result<std::vector<TpmHandle>> ListNvIndices(const TpmContext& tpm) {
  return ListHandles(tpm, TPM2_HT_NV_INDEX);
}

Result<std::uint32_t> ReadTpmManufacturer(const TpmContext& tpm) {
  return ReadTpmProperty(tpm, TPM2_PT_MANUFACTURER);
}

}  // namespace idevid
