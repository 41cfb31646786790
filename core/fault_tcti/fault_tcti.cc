// The fault-injecting TCTI: a tpm2-tss TCTI module (libtss2-tcti-idevid-fault.so) that sits in
// front of any real TCTI and answers RETRY/YIELDED, delays responses, drops the connection or
// corrupts a response, as its configuration asks (see fault_spec.h). Loaded by tctildr from a
// TCTI string "/path/libtss2-tcti-idevid-fault.so:FAULTS@INNER", so our processes and any other
// tpm2-tss program (tpm2-tools, tpm2-openssl) can be tested through it.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>
#include <thread>

#include <tss2/tss2_tcti.h>
#include <tss2/tss2_tctildr.h>
#include <tss2/tss2_tpm2_types.h>

#include "core/fault_tcti/fault_spec.h"

namespace idevid {
namespace {

constexpr std::uint64_t kMagic = 0x4944455646415554;  // "IDEVFAUT"
constexpr std::size_t kHeaderSize = 10;               // tag(2) size(4) code(4), TPM 2.0 Part 1, 18

struct FaultContext {
  TSS2_TCTI_CONTEXT_COMMON_V2 common;  // first: the TSS sees a TSS2_TCTI_CONTEXT*
  TSS2_TCTI_CONTEXT* inner;            // owned; released by tctildr when dropped or finalized
  FaultSpec spec;
  int commands;   // sent so far (including those answered here)
  int responses;  // received from the inner TCTI so far
  bool dropped;
  bool synthetic;  // the next receive returns `answer`
  std::uint8_t answer[kHeaderSize];
};

FaultContext* Self(TSS2_TCTI_CONTEXT* tcti) {
  auto* self = reinterpret_cast<FaultContext*>(tcti);
  return self != nullptr && self->common.v1.magic == kMagic ? self : nullptr;
}

std::uint32_t BigEndian32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

void PutBigEndian32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

void Drop(FaultContext* self) {
  if (self->inner != nullptr) Tss2_TctiLdr_Finalize(&self->inner);
  self->dropped = true;
}

// A response of only a header carrying `rc`, as the TPM sends for an error.
void Answer(FaultContext* self, TPM2_RC rc) {
  self->answer[0] = TPM2_ST_NO_SESSIONS >> 8;
  self->answer[1] = TPM2_ST_NO_SESSIONS & 0xff;
  PutBigEndian32(self->answer + 2, kHeaderSize);
  PutBigEndian32(self->answer + 6, rc);
  self->synthetic = true;
}

TSS2_RC Transmit(TSS2_TCTI_CONTEXT* tcti, size_t size, const uint8_t* command) {
  FaultContext* self = Self(tcti);
  if (self == nullptr || command == nullptr || size < kHeaderSize) return TSS2_TCTI_RC_BAD_REFERENCE;
  if (self->dropped) return TSS2_TCTI_RC_IO_ERROR;
  const FaultSpec& f = self->spec;
  int n = ++self->commands;
  if ((f.drop_after >= 0 && n > f.drop_after) || (f.drop_on != 0 && BigEndian32(command + 6) == f.drop_on)) {
    Drop(self);
    return TSS2_TCTI_RC_IO_ERROR;
  }
  if (n <= f.retry) {
    Answer(self, TPM2_RC_RETRY);
    return TSS2_RC_SUCCESS;
  }
  if (n <= f.retry + f.yielded) {
    Answer(self, TPM2_RC_YIELDED);
    return TSS2_RC_SUCCESS;
  }
  return Tss2_Tcti_Transmit(self->inner, size, command);
}

// Flips the parameters and makes the size field one byte short of what arrives.
void Corrupt(uint8_t* response, size_t size) {
  if (size < kHeaderSize) return;
  for (size_t i = kHeaderSize; i < size; ++i) response[i] ^= 0xff;
  PutBigEndian32(response + 2, static_cast<std::uint32_t>(size - 1));
}

TSS2_RC Receive(TSS2_TCTI_CONTEXT* tcti, size_t* size, uint8_t* response, int32_t timeout) {
  FaultContext* self = Self(tcti);
  if (self == nullptr || size == nullptr) return TSS2_TCTI_RC_BAD_REFERENCE;
  if (self->dropped) return TSS2_TCTI_RC_IO_ERROR;
  if (self->synthetic) {
    if (response != nullptr) {
      if (*size < kHeaderSize) return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
      std::memcpy(response, self->answer, kHeaderSize);
      self->synthetic = false;
    }
    *size = kHeaderSize;
    return TSS2_RC_SUCCESS;
  }
  if (response != nullptr && self->spec.delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(self->spec.delay_ms));
  }
  TSS2_RC rc = Tss2_Tcti_Receive(self->inner, size, response, timeout);
  if (rc == TSS2_RC_SUCCESS && response != nullptr && ++self->responses == self->spec.corrupt) {
    Corrupt(response, *size);
  }
  return rc;
}

void Finalize(TSS2_TCTI_CONTEXT* tcti) {
  FaultContext* self = Self(tcti);
  if (self == nullptr) return;
  if (self->inner != nullptr) Tss2_TctiLdr_Finalize(&self->inner);
  self->common.v1.magic = 0;
}

TSS2_RC Cancel(TSS2_TCTI_CONTEXT* tcti) {
  FaultContext* self = Self(tcti);
  if (self == nullptr) return TSS2_TCTI_RC_BAD_REFERENCE;
  return self->dropped ? TSS2_TCTI_RC_IO_ERROR : Tss2_Tcti_Cancel(self->inner);
}

TSS2_RC GetPollHandles(TSS2_TCTI_CONTEXT* tcti, TSS2_TCTI_POLL_HANDLE* handles, size_t* count) {
  FaultContext* self = Self(tcti);
  if (self == nullptr) return TSS2_TCTI_RC_BAD_REFERENCE;
  return self->dropped ? TSS2_TCTI_RC_IO_ERROR : Tss2_Tcti_GetPollHandles(self->inner, handles, count);
}

TSS2_RC SetLocality(TSS2_TCTI_CONTEXT* tcti, uint8_t locality) {
  FaultContext* self = Self(tcti);
  if (self == nullptr) return TSS2_TCTI_RC_BAD_REFERENCE;
  return self->dropped ? TSS2_TCTI_RC_IO_ERROR : Tss2_Tcti_SetLocality(self->inner, locality);
}

TSS2_RC MakeSticky(TSS2_TCTI_CONTEXT* tcti, TPM2_HANDLE* handle, uint8_t sticky) {
  FaultContext* self = Self(tcti);
  if (self == nullptr) return TSS2_TCTI_RC_BAD_REFERENCE;
  return self->dropped ? TSS2_TCTI_RC_IO_ERROR : Tss2_Tcti_MakeSticky(self->inner, handle, sticky);
}

TSS2_RC Init(TSS2_TCTI_CONTEXT* tcti, size_t* size, const char* config) {
  if (tcti == nullptr) {
    if (size == nullptr) return TSS2_TCTI_RC_BAD_VALUE;
    *size = sizeof(FaultContext);
    return TSS2_RC_SUCCESS;
  }
  if (config == nullptr) return TSS2_TCTI_RC_BAD_VALUE;
  auto parsed = ParseFaultTctiConfig(config);
  if (!parsed) return TSS2_TCTI_RC_BAD_VALUE;
  auto* self = new (tcti) FaultContext{};  // in the memory tctildr sized with the first call
  TSS2_RC rc = Tss2_TctiLdr_Initialize(parsed->second.c_str(), &self->inner);
  if (rc != TSS2_RC_SUCCESS) return rc;
  self->spec = parsed->first;
  self->common.v1.magic = kMagic;
  self->common.v1.version = 2;
  self->common.v1.transmit = Transmit;
  self->common.v1.receive = Receive;
  self->common.v1.finalize = Finalize;
  self->common.v1.cancel = Cancel;
  self->common.v1.getPollHandles = GetPollHandles;
  self->common.v1.setLocality = SetLocality;
  self->common.makeSticky = MakeSticky;
  return TSS2_RC_SUCCESS;
}

const TSS2_TCTI_INFO kInfo = {
    .version = 2,
    .name = "idevid-fault",
    .description = "Fault-injecting TCTI in front of another TCTI (idevid-harness)",
    .config_help = "FAULTS@TCTI, FAULTS = retry=N,yielded=N,delay-ms=D,drop-after=N,drop-on=CC,corrupt=K",
    .init = Init,
};

}  // namespace
}  // namespace idevid

// The entry point tctildr looks up in a TCTI module (TCG TSS 2.0 TCTI API specification); tpm2-tss
// declares only its type (TSS2_TCTI_INFO_FUNC).
extern "C" __attribute__((visibility("default"))) const TSS2_TCTI_INFO* Tss2_Tcti_Info(void);

extern "C" const TSS2_TCTI_INFO* Tss2_Tcti_Info(void) { return &idevid::kInfo; }
