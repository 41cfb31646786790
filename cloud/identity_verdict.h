// The cloud's decision about who is talking: the device certificate presented in the TLS
// handshake (already chained to the factory CA by the handshake) against the 802.1AR profile
// and the inventory.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cloud/inventory.h"
#include "core/openssl_ptr.h"

namespace idevid {

struct IdentityVerdict {
  bool accepted = false;
  std::string serial;
  std::string model;
  std::string reason;  // why it was refused; "ok" when accepted
  nlohmann::json ToJson() const;
};

// Checks a device certificate: not a CA, KeyUsage digitalSignature, subject serialNumber and
// CN present, hardwareModuleName with the TPM 2.0 hwType; with an inventory, the serial must be
// listed with this model.
IdentityVerdict JudgeDeviceCertificate(const X509& cert, const std::optional<Inventory>& inventory);

}  // namespace idevid
