// A connection to a TPM: the TCTI and the ESYS context on top of it, plus the handle owners.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <tss2/tss2_esys.h>

#include "core/result.h"
#include "core/tss_error.h"

namespace idevid {

// How often and how patiently a TPM command is re-sent when the TPM answers RETRY, YIELDED or
// TESTING. ESYS itself re-sends a few times without pausing; this adds a bounded back-off on top.
struct RetryPolicy {
  int max_attempts = 8;                      // total tries, >= 1
  std::chrono::milliseconds first_delay{2};  // pause before the second try
  std::chrono::milliseconds max_delay{250};  // the pause doubles up to this
  // Sleeps for the given time; injectable so that tests do not wait.
  std::function<void(std::chrono::milliseconds)> sleep;
};

// Runs `command` (one ESYS call) and re-runs it under `policy` while the TPM answers RETRY,
// YIELDED or TESTING; returns the last TSS2_RC.
TSS2_RC RunWithRetry(const RetryPolicy& policy, const std::function<TSS2_RC()>& command);

// Authorization values of the owner and endorsement hierarchies (empty: none set), from the
// environment (IDEVID_OWNER_AUTH, IDEVID_ENDORSEMENT_AUTH) so that they never appear on a command
// line; commands take them from files with --owner-auth-file / --endorsement-auth-file.
struct HierarchyAuth {
  std::string owner;
  std::string endorsement;
  static HierarchyAuth FromEnvironment();
};

struct TpmOpenOptions {
  RetryPolicy retry;
  // Upper bound for one command's answer; ESYS waits forever when unset (negative).
  std::chrono::milliseconds command_timeout{-1};
  HierarchyAuth auth = HierarchyAuth::FromEnvironment();
};

// Owns a TSS2_TCTI_CONTEXT together with the function that frees it.
using TctiOwner = std::unique_ptr<TSS2_TCTI_CONTEXT, void (*)(TSS2_TCTI_CONTEXT*)>;

// An open TPM: move-only; destroys the ESYS context first, then the TCTI.
class TpmContext {
 public:
  // Opens the TCTI named by `tcti_config` ("swtpm:host=127.0.0.1,port=2321", "mssim:...",
  // "device:/dev/tpmrm0", "tabrmd:bus_type=session,bus_name=...") and an ESYS context on it.
  // Fails with a kTss error naming the TCTI when it cannot be loaded or does not connect.
  static Result<TpmContext> Open(std::string_view tcti_config, TpmOpenOptions options = {});
  // Wraps a TCTI made elsewhere (e.g. a test double); `name` is used in messages.
  static Result<TpmContext> FromTcti(TctiOwner tcti, std::string name, TpmOpenOptions options = {});

  ESYS_CONTEXT* esys() const { return esys_.get(); }
  const std::string& tcti_name() const { return name_; }

  // Runs `command` (one ESYS call) under the retry policy; returns its last TSS2_RC.
  TSS2_RC Run(const std::function<TSS2_RC()>& command) const;

 private:
  struct EsysDeleter {
    void operator()(ESYS_CONTEXT* ctx) const;
  };
  TpmContext(TctiOwner tcti, std::unique_ptr<ESYS_CONTEXT, EsysDeleter> esys, std::string name,
             TpmOpenOptions options);

  TctiOwner tcti_;  // declared before esys_ so that it is destroyed after it
  std::unique_ptr<ESYS_CONTEXT, EsysDeleter> esys_;
  std::string name_;
  TpmOpenOptions options_;
};

// Owns an ESYS_TR and gives it up with `Drop` (flush or close) when destroyed: move-only.
// Must not outlive the TpmContext it came from (moving that context is fine).
template <void (*Drop)(ESYS_CONTEXT*, ESYS_TR)>
class EsysHandleOwner {
 public:
  EsysHandleOwner() = default;
  EsysHandleOwner(const TpmContext& tpm, ESYS_TR handle) : esys_(tpm.esys()), handle_(handle) {}
  EsysHandleOwner(EsysHandleOwner&& other) noexcept
      : esys_(std::exchange(other.esys_, nullptr)), handle_(other.Release()) {}
  EsysHandleOwner& operator=(EsysHandleOwner&& other) noexcept {
    if (this != &other) {
      Reset();
      esys_ = std::exchange(other.esys_, nullptr);
      handle_ = other.Release();
    }
    return *this;
  }
  EsysHandleOwner(const EsysHandleOwner&) = delete;
  EsysHandleOwner& operator=(const EsysHandleOwner&) = delete;
  ~EsysHandleOwner() { Reset(); }

  ESYS_TR handle() const { return handle_; }
  // Gives up ownership without dropping (after an ESYS call that invalidated the handle).
  ESYS_TR Release() { return std::exchange(handle_, ESYS_TR_NONE); }
  // Drops the handle now; errors are ignored (the TPM or the connection is gone).
  void Reset() {
    if (esys_ != nullptr && handle_ != ESYS_TR_NONE) Drop(esys_, handle_);
    handle_ = ESYS_TR_NONE;
  }

 private:
  ESYS_CONTEXT* esys_ = nullptr;  // owned by the TpmContext; stable when that is moved
  ESYS_TR handle_ = ESYS_TR_NONE;
};

// Flushes a transient object from the TPM (TPM2_FlushContext).
void FlushTransient(ESYS_CONTEXT* esys, ESYS_TR handle);
// Frees ESYS's record of a persistent object or NV index; the TPM entity stays.
void CloseReference(ESYS_CONTEXT* esys, ESYS_TR handle);

// A transient TPM object (key, session) owned by this process, flushed when dropped.
using TransientObject = EsysHandleOwner<FlushTransient>;
// An ESYS reference to a persistent object or NV index, closed when dropped.
using EsysReference = EsysHandleOwner<CloseReference>;

// Looks up a TPM handle (persistent 0x81xxxxxx or NV index 0x01xxxxxx). Fails with the TPM's
// TPM_RC_HANDLE error when nothing is at that handle.
Result<EsysReference> ReferenceTpmHandle(const TpmContext& tpm, TPM2_HANDLE handle);

// True when `error` is the TPM's own answer (no such index, not written, locked, ...), also when
// a resource manager relayed it, as opposed to a failure to reach the TPM or of the TSS itself.
inline bool IsTpmAnswer(const Error& error) {
  auto layer = static_cast<TSS2_RC>(error.code()) & TSS2_RC_LAYER_MASK;
  return error.domain() == ErrorDomain::kTss &&
         (layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER);
}

// The value of `found`, nullopt when the TPM answered TPM_RC_HANDLE (nothing at that handle or
// index), or any other error of `found` unchanged.
template <typename T>
Result<std::optional<T>> OrAbsent(Result<T> found) {
  if (found) return std::optional<T>(std::move(*found));
  if (IsTpmRc(found.error(), TPM2_RC_HANDLE)) return std::optional<T>();
  return Fail(std::move(found).error());
}
// Success when `done` succeeded or the TPM answered TPM_RC_HANDLE (nothing was there to act
// on); any other error of `done` unchanged.
inline Result<void> OrAbsent(Result<void> done) {
  if (done || IsTpmRc(done.error(), TPM2_RC_HANDLE)) return {};
  return done;
}

}  // namespace idevid
