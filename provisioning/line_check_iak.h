// The line check's part for units enrolled the TCG way (TCG "TPM 2.0 Keys for Device Identity
// and Attestation" v1.0 rev 12): the IAK with its §7.3.4 attributes, its certificate chained to
// the factory and naming the unit's serial, a fresh TPM2_Certify of the IDevID by the IAK with a
// nonce of the check's own, and the EK certificate's chain to the TPM vendor.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/tpm_context.h"
#include "provisioning/factory.h"
#include "provisioning/line_check.h"

namespace idevid {

// Appends the measurements iak_present, iak_attributes, iak_certificate_chain,
// iak_certificate_serial, iak_certificate_key (the IAK's key, policy verifiedTPMRestricted),
// iak_certifies_idevid and, when `request.vendor_cas` is not empty,
// ek_chain_to_vendor_ca. `serial` is what the IDevID certificate names (empty when unread). A TPM
// answer is a failed measurement; any other error is put into `infrastructure`.
void CheckIak(const TpmContext& tpm, const TrustBundle& factory_ca, const CheckRequest& request,
              const std::string& serial, std::vector<Measurement>& out, std::optional<Error>& infrastructure);

}  // namespace idevid
