#include "core/tss_error.h"

#include <tss2/tss2_rc.h>
#include <tss2/tss2_tpm2_types.h>

#include <fmt/format.h>

namespace idevid {
namespace {

std::string_view HintFor(TSS2_RC base) {
  switch (base) {
    case TPM2_RC_HANDLE: return "; the handle or NV index does not exist on this TPM";
    case TPM2_RC_OBJECT_MEMORY:
      return "; the TPM has no free transient slot: flush unused objects or put a resource manager "
             "(tpm2-abrmd, /dev/tpmrm0) in front of the TPM";
    case TPM2_RC_NV_LOCKED: return "; the NV index is write-locked";
    case TPM2_RC_NV_DEFINED: return "; the NV index is already defined";
    case TPM2_RC_NV_SPACE: return "; the TPM has no NV space left for this index";
    case TPM2_RC_NV_RANGE: return "; offset or size is outside the NV index";
    case TPM2_RC_BAD_AUTH:
    case TPM2_RC_AUTH_FAIL:
      return "; wrong authorization value: when the TPM's owner or endorsement hierarchy has one, "
             "give it in IDEVID_OWNER_AUTH / IDEVID_ENDORSEMENT_AUTH or with --owner-auth-file / "
             "--endorsement-auth-file";
    case TPM2_RC_LOCKOUT: return "; the TPM is in dictionary-attack lockout";
    case TPM2_RC_INITIALIZE: return "; the TPM needs TPM2_Startup";
    default: return "";
  }
}

}  // namespace

TSS2_RC BaseTpmRc(TSS2_RC rc) {
  TSS2_RC without_layer = rc & ~TSS2_RC_LAYER_MASK;
  if ((without_layer & TPM2_RC_FMT1) != 0) return without_layer & (TPM2_RC_FMT1 | 0x3F);
  return without_layer;
}

bool IsRetryableTpmRc(TSS2_RC rc) {
  if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER &&
      (rc & TSS2_RC_LAYER_MASK) != TSS2_RESMGR_TPM_RC_LAYER) {
    return false;
  }
  TSS2_RC base = BaseTpmRc(rc);
  return base == TPM2_RC_RETRY || base == TPM2_RC_YIELDED || base == TPM2_RC_TESTING;
}

bool IsTpmRc(const Error& error, TSS2_RC tpm_rc) {
  auto rc = static_cast<TSS2_RC>(error.code());
  TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  return error.domain() == ErrorDomain::kTss &&
         (layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER) && BaseTpmRc(rc) == tpm_rc;
}

bool IsTpmUnreachable(const Error& error) {
  if (error.domain() != ErrorDomain::kTss) return false;
  auto rc = static_cast<TSS2_RC>(error.code());
  TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  // Answers of the TPM itself (directly or relayed by a resource manager) mean it is there.
  if (layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER) return false;
  TSS2_RC base = rc & 0xFFFF;  // the base code, below the layer bits
  return base == TSS2_BASE_RC_NO_CONNECTION || base == TSS2_BASE_RC_IO_ERROR ||
         base == TSS2_BASE_RC_TRY_AGAIN;
}

Error TssError(TSS2_RC rc, std::string_view what) {
  const char* decoded = Tss2_RC_Decode(rc);
  return Error(ErrorDomain::kTss, rc,
               fmt::format("{}: {} ({:#x}){}", what, decoded ? decoded : "unknown TSS2_RC", rc,
                           HintFor(BaseTpmRc(rc))));
}

}  // namespace idevid
