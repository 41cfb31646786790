// libFuzzer target: the attestation challenge and evidence as a peer sends them (hostile JSON).
// Parsing must never crash, throw or read out of bounds, and a message that parses must encode
// into one that parses to the same message (nothing accepted is lost or reinterpreted).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/attestation_wire.h"

namespace {

bool SameEvidence(const idevid::AttestationEvidence& a, const idevid::AttestationEvidence& b) {
  return a.quote == b.quote && a.signature == b.signature && a.pcrs == b.pcrs &&
         a.pcr_values == b.pcr_values && a.event_log == b.event_log && a.iak_certificate == b.iak_certificate;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto challenge = idevid::ParseChallenge(input)) {
    auto again = idevid::ParseChallenge(idevid::ChallengeJson(*challenge));
    if (!again || again->nonce != challenge->nonce || again->pcrs != challenge->pcrs) __builtin_trap();
  }
  if (auto evidence = idevid::ParseEvidence(input)) {
    auto again = idevid::ParseEvidence(idevid::EvidenceJson(*evidence));
    if (!again || !SameEvidence(*evidence, *again)) __builtin_trap();
  }
  return 0;
}
