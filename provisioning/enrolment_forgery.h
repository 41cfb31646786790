// Forged enrolments, for the scenarios and tests that show the authority refuses them: a channel
// that alters what passes between station and authority, and re-signing an altered request with
// the key in the TPM (so that only the alteration, not a broken signature, is judged).
#pragma once

#include <functional>

#include "core/tpm_context.h"
#include "core/tpm_types.h"
#include "provisioning/enrolment_channel.h"
#include "provisioning/tcg_csr.h"

namespace idevid {

// Forwards to `inner`, letting each hook change the message on its way; keeps what passed.
class TamperingChannel : public EnrolmentChannel {
 public:
  explicit TamperingChannel(EnrolmentChannel& inner) : inner_(inner) {}

  std::function<void(EnrolmentOrder&)> on_begin;
  std::function<void(Bytes& csr)> on_submit;
  std::function<void(Bytes& secret)> on_activate;
  Bytes last_nonce;   // the nonce of the last session the authority opened
  Bytes last_secret;  // the last answer the station gave (before on_activate)

  Result<EnrolmentAnswer<EnrolmentSession>> Begin(const EnrolmentOrder& order) override;
  Result<EnrolmentAnswer<Credential>> Submit(const std::string& session,
                                             std::span<const std::uint8_t> csr) override;
  Result<EnrolmentAnswer<EnrolmentCertificates>> Activate(const std::string& session,
                                                          std::span<const std::uint8_t> secret) override;
  Result<EnrolmentAnswer<EnrolmentCommitted>> Commit(const std::string& session,
                                                     const EnrolmentCommit& commit) override;

 private:
  EnrolmentChannel& inner_;
};

// Parses `csr`, lets `change` alter its content and signs it again with the key at `signer`.
Result<Bytes> AlterRequest(const TpmContext& tpm, TpmHandle signer, std::span<const std::uint8_t> csr,
                           const std::function<void(TcgCsrContent&)>& change);

}  // namespace idevid
