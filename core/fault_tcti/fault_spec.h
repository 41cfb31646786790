// The faults the fault-injecting TCTI adds in front of a real TCTI, and its configuration
// string: "FAULTS@INNER", e.g. "retry=3,delay-ms=5,drop-on=sign@swtpm:host=127.0.0.1,port=2321".
//
//   retry=N       the first N commands are answered TPM_RC_RETRY without reaching the TPM
//   yielded=N     the first N commands are answered TPM_RC_YIELDED
//   delay-ms=D    every response reaches the client D ms late
//   drop-after=N  after N commands the connection is dropped: every later command fails with
//                 TSS2_TCTI_RC_IO_ERROR, as when the TPM's cable or daemon goes away
//   drop-on=CC    the connection is dropped at the first command CC (sign, nv-read, read-public,
//                 get-capability, or a hex command code such as 0x15d)
//   corrupt=K     the K-th response from the TPM (1-based; the RETRY/YIELDED answers made here
//                 do not count) arrives corrupted: parameters bit-flipped, size field one short
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace idevid {

struct FaultSpec {
  int retry = 0;
  int yielded = 0;
  int delay_ms = 0;
  int drop_after = -1;        // -1: never
  std::uint32_t drop_on = 0;  // 0: never
  int corrupt = 0;            // 0: never
};

// Parses the FAULTS part; an unknown key or a bad number is a kUsage kInvalidArgument error
// naming it and the keys there are.
Result<FaultSpec> ParseFaultSpec(std::string_view faults);

// Splits "FAULTS@INNER"; no '@' or an empty INNER is a kUsage kInvalidArgument error.
Result<std::pair<FaultSpec, std::string>> ParseFaultTctiConfig(std::string_view config);

// The TCTI string that puts the fault TCTI module at `library` with `faults` in front of
// `inner` (both checked first: a kUsage error when the faults do not parse, kMissingArgument when
// `inner` is empty).
Result<std::string> FaultTctiString(const std::string& library, const std::string& faults,
                                    const std::string& inner);

}  // namespace idevid
