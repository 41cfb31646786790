// The line station's half of TCG enrolment (TCG "TPM 2.0 Keys for Device Identity and
// Attestation" v1.0 rev 12 §6.2): the IAK and IDevID created in the unit's TPM from the spec's
// templates and persisted, the TPM2_Certify of the IDevID by the IAK with the authority's nonce,
// the TCG-CSR-IDEVID signed by the IDevID, the answer to the authority's credential through
// TPM2_ActivateCredential with the EK, and both certificates written once into NV.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/tpm_context.h"
#include "core/tpm_keys.h"
#include "core/tpm_types.h"
#include "provisioning/enrolment_channel.h"
#include "provisioning/tcg_csr.h"

namespace idevid {

inline constexpr TpmHandle kDefaultIakKeyHandle = 0x81020001;
inline constexpr TpmHandle kDefaultIakNvIndex = 0x01C90100;
// Where newer `swtpm_setup --idevid/--iak` writes the IDevID certificate (its IAK certificate
// index is ours, 0x01C90100).
inline constexpr TpmHandle kSwtpmIdevidNvIndex = 0x01C90200;

struct EnrolRequest {
  std::string serial;
  std::string model;
  KeyAlgorithm algorithm = KeyAlgorithm::kEccP256;
  TpmHandle idevid_handle = 0x81020000;
  TpmHandle iak_handle = kDefaultIakKeyHandle;
  TpmHandle idevid_nv_index = 0x01C90000;
  TpmHandle iak_nv_index = kDefaultIakNvIndex;
  bool force = false;   // replace an identity the TPM already holds
  std::string station;  // what the station calls itself (a service may take it from its certificate)
};

struct EnrolResult {
  std::optional<EnrolmentRefusal> refusal;  // set when the authority refused the unit
  std::string session;                      // the enrolment session, for CommitEnrolment
  ossl::Cert idevid_certificate;
  ossl::Cert iak_certificate;
  std::vector<std::string> replaced;         // what force removed
  std::map<std::string, double> timings_ms;  // per step
};

// The steps of EnrolUnit on their own, for stations that drive them one by one.
// Creates the IAK and the IDevID from the §7.3.4 templates and persists them at the request's
// handles. Fails with the TPM's error (TPM_RC_NV_DEFINED when a handle is taken).
Result<void> CreateUnitKeys(const TpmContext& tpm, const EnrolRequest& request);
// The TCG-CSR-IDEVID of the keys at the request's handles: TPM2_Certify of the IDevID by the IAK
// with `nonce`, the request signed by the IDevID. Fails with the TPM's error.
Result<Bytes> MakeEnrolmentRequest(const TpmContext& tpm, const EnrolRequest& request, const Bytes& ek_der,
                                   std::span<const std::uint8_t> nonce);
// The encoded request with `content`, signed (SHA-256; ECDSA or RSASSA by key type) by the key
// at `signer`. Fails with the TPM's error.
Result<Bytes> SignRequest(const TpmContext& tpm, TpmHandle signer, const TcgCsrContent& content);
// TPM2_ActivateCredential of `credential` for the IAK at `iak_handle` with the TPM's RSA EK.
// Fails with the TPM's TPM_RC_INTEGRITY when the credential is not for this EK and IAK.
Result<Bytes> AnswerCredential(const TpmContext& tpm, TpmHandle iak_handle, const Credential& credential);

// Enrols one unit through `authority`. A refusal is a result (refusal set, nothing written to NV
// and the keys removed again), not an error. Fails with kUsage when the TPM already holds an
// identity (unless force), kConfig when it has no EK certificate, the TPM's error, or the
// channel's error (the authority unreachable).
// Passes the station fault points issued (certificates received) and written
// (provisioning/station_fault.h).
Result<EnrolResult> EnrolUnit(const TpmContext& tpm, EnrolmentChannel& authority,
                              const EnrolRequest& request);

// The last step, once the certificates are in NV and the line check ran: the authority commits the
// unit in its ledger with the line check's outcome ("PASS"/"FAIL") and the per-unit record. A
// refusal is the answer; fails with the channel's error.
Result<EnrolmentAnswer<EnrolmentCommitted>> CommitEnrolment(EnrolmentChannel& authority,
                                                            const EnrolRequest& request,
                                                            const EnrolResult& result,
                                                            const std::string& line_check,
                                                            const nlohmann::json& record);

}  // namespace idevid
