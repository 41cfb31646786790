// The forged enrolments an enrolment authority must refuse (TCG "TPM 2.0 Keys for Device Identity
// and Attestation" v1.0 rev 12 §6.2, §13), each played on real TPMs against a real authority and
// judged: refused for its reason, nothing issued, the refusal in the authority's log. Shared by
// the provisioning tests and the `enrolment` suite of `idevid run`.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/tpm_keys.h"
#include "core/verdict.h"
#include "provisioning/enrolment_channel.h"

namespace idevid {

// Where a forgery is played. Nobody else holds a connection to the unit's TPM during a play (a
// direct swtpm serves one client at a time, and some forgeries run tpm2-tools on it).
struct ForgeryBench {
  std::string unit_tcti;                            // a manufactured TPM with no identity yet
  std::function<Result<std::string>()> other_tcti;  // another manufactured TPM, started on demand
  std::filesystem::path factory_dir;                // the factory that issues
  std::filesystem::path vendor_ca;                  // the TPM vendor CA of both TPMs
  std::filesystem::path work_dir;                   // for the files a forgery writes
  KeyAlgorithm algorithm = KeyAlgorithm::kEccP256;
  std::string serial;  // what the station was ordered to make
  std::string model;
};

// The ledger a forgery's authority records in: one per bench (its work_dir), because the units of
// a bench may be copies of one stock TPM, which share an EK and would be clones in one ledger.
std::string BenchLedger(const ForgeryBench& bench);

struct Forgery {
  std::string name;                   // "ek-of-another-tpm", ...
  std::string reason;                 // the refusal reason the authority must give
  bool serial_issued_before = false;  // the forgery issues the serial to another unit first
  // Plays the forgery: the refusal the unit got, nullopt when it was enrolled; the authority's log
  // lines go to `log`. Errors are the bench failing (a TPM or a tool), not a verdict.
  std::function<Result<std::optional<EnrolmentRefusal>>(const ForgeryBench&, std::vector<std::string>& log)>
      play;
  std::string detail_part;  // when set, the refusal's detail must say this
};

// Every forgery, in a stable order.
std::vector<Forgery> EnrolmentForgeries();

// Plays `forgery` and judges it: findings "forgery-accepted", "wrong-reason", "wrong-detail",
// "refusal-not-logged", "identity-left-behind" (a key or certificate in the unit's TPM afterwards) and
// "serial-recorded".
Result<Verdict> JudgeForgery(const Forgery& forgery, const ForgeryBench& bench);

}  // namespace idevid
