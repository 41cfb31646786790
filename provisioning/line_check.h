// The manufacturing-line identity check of one unit: every check runs and becomes a named
// measurement, so the operator sees all that is wrong, not only the first thing.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/tpm_capability.h"
#include "core/tpm_context.h"
#include "core/tpm_types.h"
#include "provisioning/factory.h"
#include "provisioning/provisioner.h"

namespace idevid {

struct Measurement {
  std::string name;  // stable identifier, e.g. "chain_to_factory_ca"
  bool passed = false;
  std::string value;     // what was found
  std::string expected;  // what the check wanted
};

struct CheckRequest {
  TpmHandle key_handle = kDefaultIdevidKeyHandle;
  TpmHandle nv_index = kDefaultIdevidNvIndex;
  std::optional<std::string> expect_serial;
  std::optional<std::string> expect_model;
  // The TCG enrolment part (line_check_iak.h): the IAK, its certificate and a fresh certify.
  bool check_iak = false;
  TpmHandle iak_handle = 0x81020001;
  TpmHandle iak_nv_index = 0x01C90100;
  // TPM vendor CAs the EK certificate must chain to; no such measurement when empty.
  std::vector<TrustBundle> vendor_cas;
};

// What the unit turned out to be; empty strings where it could not be read.
struct IdentityFacts {
  std::string serial;
  std::string model;
  std::string manufacturer;
  std::string subject;
  std::string issuer;
  std::string fingerprint;
  std::string ek_certificate_fingerprint;
  std::string key_algorithm;
};

struct CheckReport {
  std::vector<Measurement> measurements;
  IdentityFacts identity;
  TpmInfo tpm;
  std::map<std::string, double> timings_ms;
  bool passed() const;
  // The names of the failed measurements.
  std::vector<std::string> failures() const;
};

// Runs every check against the TPM behind `tpm`. A failed check is a measurement, not an error:
// the result is an error only for infrastructure failures (TPM unreachable, OpenSSL broken).
Result<CheckReport> CheckUnit(const TpmContext& tpm, const TrustBundle& factory_ca,
                              const CheckRequest& request);

}  // namespace idevid
