#include "core/tpm_context.h"

#include <algorithm>
#include <cstdlib>

#include <algorithm>
#include <thread>
#include <utility>

#include <tss2/tss2_tctildr.h>

#include <fmt/format.h>

#include "core/tss_error.h"

namespace idevid {
namespace {

void FinalizeLoadedTcti(TSS2_TCTI_CONTEXT* tcti) { Tss2_TctiLdr_Finalize(&tcti); }

void RealSleep(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

}  // namespace

void TpmContext::EsysDeleter::operator()(ESYS_CONTEXT* ctx) const { Esys_Finalize(&ctx); }

TpmContext::TpmContext(TctiOwner tcti, std::unique_ptr<ESYS_CONTEXT, EsysDeleter> esys, std::string name,
                       TpmOpenOptions options)
    : tcti_(std::move(tcti)), esys_(std::move(esys)), name_(std::move(name)), options_(std::move(options)) {
  options_.retry.max_attempts = std::max(1, options_.retry.max_attempts);
}

HierarchyAuth HierarchyAuth::FromEnvironment() {
  const char* owner = std::getenv("IDEVID_OWNER_AUTH");
  const char* endorsement = std::getenv("IDEVID_ENDORSEMENT_AUTH");
  return {owner ? owner : "", endorsement ? endorsement : ""};
}

Result<TpmContext> TpmContext::Open(std::string_view tcti_config, TpmOpenOptions options) {
  if (tcti_config.empty()) {
    return UsageError(UsageCode::kMissingArgument,
                      "no TCTI given: name the TPM as swtpm:host=H,port=P, mssim:host=H,port=P, "
                      "device:/dev/tpmrm0 or tabrmd:bus_type=session,bus_name=N");
  }
  std::string config(tcti_config);
  TSS2_TCTI_CONTEXT* raw = nullptr;
  TSS2_RC rc = Tss2_TctiLdr_Initialize(config.c_str(), &raw);
  if (rc != TSS2_RC_SUCCESS) {
    return FailTss(rc, fmt::format("cannot connect to the TPM through TCTI '{}'; check that the "
                                   "TPM (or swtpm, tpm2-abrmd) is running and the TCTI string "
                                   "is right",
                                   config));
  }
  return FromTcti(TctiOwner(raw, FinalizeLoadedTcti), config, std::move(options));
}

Result<TpmContext> TpmContext::FromTcti(TctiOwner tcti, std::string name, TpmOpenOptions options) {
  ESYS_CONTEXT* raw = nullptr;
  TSS2_RC rc = Esys_Initialize(&raw, tcti.get(), nullptr);
  std::unique_ptr<ESYS_CONTEXT, EsysDeleter> esys(raw);
  if (rc != TSS2_RC_SUCCESS) {
    return FailTss(rc, fmt::format("cannot start an ESYS context on TCTI '{}'", name));
  }
  for (const auto& [hierarchy, value] : {std::pair{ESYS_TR_RH_OWNER, &options.auth.owner},
                                         std::pair{ESYS_TR_RH_ENDORSEMENT, &options.auth.endorsement}}) {
    if (value->empty()) continue;
    TPM2B_AUTH auth{};
    if (value->size() > sizeof(auth.buffer)) {
      return UsageError(UsageCode::kInvalidArgument,
                        fmt::format("a hierarchy authorization value is {} bytes; a TPM takes at most {}",
                                    value->size(), sizeof(auth.buffer)));
    }
    auth.size = static_cast<UINT16>(value->size());
    std::copy(value->begin(), value->end(), auth.buffer);
    rc = Esys_TR_SetAuth(esys.get(), hierarchy, &auth);
    if (rc != TSS2_RC_SUCCESS) return FailTss(rc, "cannot set a hierarchy authorization value");
  }
  if (options.command_timeout.count() >= 0) {
    rc = Esys_SetTimeout(esys.get(), static_cast<int32_t>(options.command_timeout.count()));
    if (rc != TSS2_RC_SUCCESS) return FailTss(rc, "cannot set the TPM command timeout");
  }
  return TpmContext(std::move(tcti), std::move(esys), std::move(name), std::move(options));
}

TSS2_RC TpmContext::Run(const std::function<TSS2_RC()>& command) const {
  return RunWithRetry(options_.retry, command);
}

TSS2_RC RunWithRetry(const RetryPolicy& policy, const std::function<TSS2_RC()>& command) {
  std::chrono::milliseconds delay = policy.first_delay;
  TSS2_RC rc = command();
  for (int attempt = 1; attempt < policy.max_attempts && IsRetryableTpmRc(rc); ++attempt) {
    if (policy.sleep) {
      policy.sleep(delay);
    } else {
      RealSleep(delay);
    }
    delay = std::min(delay * 2, policy.max_delay);
    rc = command();
  }
  return rc;
}

void FlushTransient(ESYS_CONTEXT* esys, ESYS_TR handle) {
  (void)RunWithRetry(RetryPolicy{}, [&] { return Esys_FlushContext(esys, handle); });
}

void CloseReference(ESYS_CONTEXT* esys, ESYS_TR handle) { (void)Esys_TR_Close(esys, &handle); }

Result<EsysReference> ReferenceTpmHandle(const TpmContext& tpm, TPM2_HANDLE handle) {
  ESYS_TR tr = ESYS_TR_NONE;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_TR_FromTPMPublic(tpm.esys(), handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
  });
  if (rc != TSS2_RC_SUCCESS) {
    return FailTss(rc, fmt::format("nothing usable at TPM handle {:#010x}", handle));
  }
  return EsysReference(tpm, tr);
}

}  // namespace idevid
