// The attestations a cloud with a measured-boot policy must refuse, each played by a real unit
// (an attested swtpm unit, its SSL-I client in TPM mode) against a real cloud over TLS and judged:
// refused with its finding, and the cloud still attesting the genuine unit afterwards. Shared by
// the engine's tests and the `attestation` suite of `idevid run`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/verdict.h"
#include "device/ssli/ssli_client.h"
#include "engine/attested_unit.h"

namespace idevid {

// Where a forgery is played: the unit (booted with its known-good chain before and after each
// play) and the cloud whose policy was made from that chain.
struct AttestationBench {
  AttestedUnit* unit = nullptr;
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  // Another TPM (its own endorsement seed, so its own IAK), started on demand.
  std::function<Result<std::string>()> other_tcti;
};

struct AttestationForgery {
  std::string name;     // "replayed-quote", ...
  std::string finding;  // the id of the first finding the cloud must refuse it with
  // Plays the forgery: the last session's result (the one the cloud must refuse). Errors are
  // the bench failing (a TPM, a tool, the cloud gone), not a verdict. Leaves the unit booted with
  // its known-good chain.
  std::function<Result<SsliResult>(const AttestationBench&)> play;
  std::string detail_part;  // when set, the refusal must also say this
};

// Every forgery, in a stable order (those that reboot the unit last).
std::vector<AttestationForgery> AttestationForgeries();

// One session of the unit with `prove` answering the challenge (empty: the genuine evidence).
Result<SsliResult> AttestOnce(const AttestationBench& bench, AttestationHook prove = {});

// The id of the first finding of a refused attestation ("quote-signature"), from the cloud's
// verdict; empty when the session was not refused for its attestation.
std::string RefusalFinding(const SsliResult& session);

// Plays `forgery` and judges it: findings "forgery-attested" (the cloud attested it),
// "not-challenged" (the cloud never asked for an attestation), "wrong-finding", "wrong-detail"
// and "genuine-refused-after" (the genuine unit is not attested after the play).
Result<Verdict> JudgeAttestationForgery(const AttestationForgery& forgery, const AttestationBench& bench);

}  // namespace idevid
