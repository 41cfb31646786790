// A scripted TCTI for unit tests of error paths a real TPM cannot be made to produce: it answers
// each command with the next scripted response code, and with a canned success after the script.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include <tss2/tss2_tcti.h>
#include <tss2/tss2_tpm2_types.h>

#include "core/tpm_context.h"

namespace idevid::testing {

class FakeTcti {
 public:
  // Response codes returned, in order, before the success answers start.
  explicit FakeTcti(std::deque<TSS2_RC> script) : script_(std::move(script)) {}

  // A TCTI handle for TpmContext::FromTcti; this object must outlive the context.
  TctiOwner Handle();

  // Commands received so far, by command code.
  const std::vector<TPM2_CC>& commands() const { return commands_; }

 private:
  struct Context {
    TSS2_TCTI_CONTEXT_COMMON_V2 common;  // first: the TSS sees a TSS2_TCTI_CONTEXT*
    FakeTcti* self;
  };
  static TSS2_RC Transmit(TSS2_TCTI_CONTEXT* tcti, size_t size, const uint8_t* command);
  static TSS2_RC Receive(TSS2_TCTI_CONTEXT* tcti, size_t* size, uint8_t* response, int32_t timeout);
  static FakeTcti& Self(TSS2_TCTI_CONTEXT* tcti);
  // The answer to the last command: the next scripted rc, or success with a command-specific body.
  std::vector<std::uint8_t> NextResponse();

  Context context_{};
  std::deque<TSS2_RC> script_;
  std::vector<TPM2_CC> commands_;
  std::vector<std::uint8_t> pending_;
};

}  // namespace idevid::testing
