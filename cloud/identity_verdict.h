// The cloud's decision about who is talking: the device certificate presented in the TLS
// handshake (already chained to the factory CA by the handshake) against the 802.1AR profile
// and the inventory. Every rule the certificate breaks is a finding of its own.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cloud/inventory.h"
#include "core/openssl_ptr.h"
#include "core/verdict.h"

namespace idevid {

// The longest hwSerialNum the cloud takes for a unit's hardware serial: a SHA-512 digest. The
// TCG profile derives it from the EK (a SHA-256 digest, 32 bytes); RFC 4108 sets no bound.
inline constexpr std::size_t kMaxHwSerialBytes = 64;

struct IdentityVerdict {
  bool accepted = false;
  std::string serial;
  std::string model;
  std::string reason;  // the first finding's evidence when refused; "ok" when accepted
  Verdict findings;    // every rule broken, in the order the rules are checked; empty when accepted
  // The cloud could not decide (a source of the unit's standing could not be asked): neither
  // accepted nor a refusal of the unit; answered 503 and worth asking again.
  bool unavailable = false;

  // A refusal for a single reason (no certificate, a resumed session past its validity).
  static IdentityVerdict Refused(std::string id, std::string evidence);
  // Adds a failure found after the certificate's own rules (revoked, a clone): the verdict is then
  // a refusal whose reason is its first failure.
  void Refuse(std::string id, std::string evidence);
  // Adds the failure that kept the cloud from deciding (its ledger is down): not accepted, and
  // unavailable rather than refused.
  void CannotDecide(std::string id, std::string evidence);
  // "accepted", "unavailable" or "rejected".
  std::string_view Name() const;
  // {"verdict" (Name()), "serial", "model", "reason", "findings": [{"id", "severity", "evidence"}...]}.
  nlohmann::json ToJson() const;
};

// Every finding as [{"id", "severity" ("failure"/"warning"), "evidence"}], for answers and logs.
nlohmann::json FindingsJson(const Verdict& verdict);

// Checks a device certificate: not a CA, KeyUsage digitalSignature, subject serialNumber and
// CN present, exactly one hardwareModuleName (or copies of one) with the TPM 2.0 hwType and a
// hwSerialNum of 1 to kMaxHwSerialBytes bytes; with an inventory, the serial must be listed
// with this model. Never fails: a refusal is a verdict listing every rule broken, with ids
// such as "subject-serial-missing", "not-a-device-certificate", "hw-serial-empty",
// "serial-not-in-inventory".
IdentityVerdict JudgeDeviceCertificate(const X509& cert, const std::optional<Inventory>& inventory);

}  // namespace idevid
