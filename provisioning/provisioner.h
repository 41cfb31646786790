// Unit provisioning at the factory: the IDevID key into the TPM, the idev-id certificate into NV.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/tpm_capability.h"
#include "core/tpm_context.h"
#include "core/tpm_keys.h"
#include "core/tpm_types.h"
#include "provisioning/factory.h"

namespace idevid {

inline constexpr TpmHandle kDefaultIdevidKeyHandle = 0x81020000;
inline constexpr TpmHandle kDefaultIdevidNvIndex = 0x01C90000;

struct ProvisionRequest {
  std::string serial;
  std::string model;
  KeyAlgorithm algorithm = KeyAlgorithm::kEccP256;
  TpmHandle key_handle = kDefaultIdevidKeyHandle;
  TpmHandle nv_index = kDefaultIdevidNvIndex;
  bool force = false;  // replace an identity the TPM already holds
  // What the refusal of a TPM that already holds an identity tells the user to do (the command
  // that provisions names its own options).
  std::string when_held = "pass --force to replace it";
  std::string station;  // who provisions, for the ledger
};

struct ProvisionResult {
  ossl::Cert certificate;
  std::string certificate_fingerprint;     // SHA-256 of the DER
  std::string ek_certificate_fingerprint;  // SHA-256 of the EK certificate's DER
  TpmHandle ek_certificate_index = 0;
  TpmInfo tpm;
  std::vector<std::string> replaced;         // what --force removed, one line each
  std::map<std::string, double> timings_ms;  // per step
  // With a ledger: the unit's EK hash, whether an earlier attempt was resumed (and its recorded
  // certificate used again), and the ledger's refusal (then nothing else is set).
  std::string ek_sha256;
  bool resumed = false;
  bool certificate_reused = false;
  std::optional<LedgerRefusal> refusal;
};

// Provisions one unit: validates serial and model, refuses a TPM that already holds a key at
// the handle or a certificate at the NV index (unless force, and then says what it replaced),
// creates the TCG IDevID primary key in the endorsement hierarchy, persists it, has the TPM
// sign a certification request (proof of possession), issues the 802.1AR certificate from the
// factory's issuing CA, writes it into NV and write-locks the index.
// With `ledger` (may be null: no record) the unit is reserved before anything is signed and its
// certificate recorded before it is written to NV (core/ledger.h); the caller commits it after
// the line check. An earlier attempt of this serial on this TPM that did not commit is resumed:
// the identity it left in the TPM is replaced without force, and a certificate it recorded for
// the same IDevID key is written again instead of a new one. A refusal of the ledger is a result
// (refusal set, the TPM untouched); a failure before the certificate is recorded releases the
// reservation. Passes the station fault points (provisioning/station_fault.h).
// Errors: kUsage for bad input or an existing identity, kConfig when the TPM has no EK
// certificate, kTss for TPM failures, kVerify when the TPM's signature does not verify,
// kDatabase when the ledger fails.
Result<ProvisionResult> ProvisionUnit(const TpmContext& tpm, const Factory& factory,
                                      const ProvisionRequest& request, Ledger* ledger = nullptr);

}  // namespace idevid
