// A measured-boot policy (YAML): which PCRs a unit must quote and, per PCR and event type, the
// digests its event log may contain; written from a known-good unit's log and checked against
// every unit's log.
//
//   version: 1
//   name: srx4300-golden
//   pcrs: sha256:0,1,2,3,4,5,6,7,8,9
//   events:
//     - pcr: 4
//       type: EV_EFI_BOOT_SERVICES_APPLICATION
//       digests: [3f1a..., 9c02...]      # SHA-256, hex
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "core/event_log.h"
#include "core/result.h"
#include "core/tpm_pcr.h"
#include "core/verdict.h"

namespace idevid {

struct AttestPolicy {
  std::string name;
  PcrSelection pcrs;  // what the cloud asks to be quoted
  // (pcr, event type) -> allowed SHA-256 digests. An event of the log in a selected PCR must have
  // its (pcr, type) listed and its digest among them; EV_NO_ACTION events are not measured.
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::set<Bytes>> allowed;
};

// Parses policy text; `name` (the file) is for errors. Bad input is a kConfig error naming the
// file, line and column: kSyntax (not YAML, not a mapping, a digest that is not 64 hex digits),
// kUnknownStatement (a key), kBadValue (a value of the wrong kind, an unknown event type or PCR
// selection), kMissing (version, name, pcrs or events), kConflict (a key given twice), kUsage/kUnsupported
// for a version other than 1.
Result<AttestPolicy> ParseAttestPolicy(const std::string& text, const std::string& name);
// Reads and parses a policy file; a file that cannot be read is a kIo error.
Result<AttestPolicy> LoadAttestPolicy(const std::filesystem::path& path);

// The policy a known-good unit's log gives: every (pcr, type, digest) of its events in `pcrs`.
AttestPolicy PolicyFromLog(const EventLog& log, std::string name, PcrSelection pcrs);
// The policy as YAML that ParseAttestPolicy reads back to an equal policy.
std::string AttestPolicyYaml(const AttestPolicy& policy);

// Checks each event of `log` in the policy's PCRs: one finding "event-not-allowed" per event
// whose (pcr, type) or digest the policy does not list, naming the event (index, PCR, type,
// digest).
Verdict CheckEventsAgainstPolicy(const EventLog& log, const AttestPolicy& policy);

}  // namespace idevid
