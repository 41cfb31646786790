#include "provisioning/enrolment_forgery.h"

#include "provisioning/enrolment_station.h"

namespace idevid {

Result<EnrolmentAnswer<EnrolmentSession>> TamperingChannel::Begin(const EnrolmentOrder& order) {
  EnrolmentOrder sent = order;
  if (on_begin) on_begin(sent);
  IDEVID_ASSIGN_OR_RETURN(auto answer, inner_.Begin(sent));
  if (auto* session = std::get_if<EnrolmentSession>(&answer)) last_nonce = session->nonce;
  return answer;
}

Result<EnrolmentAnswer<Credential>> TamperingChannel::Submit(const std::string& session,
                                                             std::span<const std::uint8_t> csr) {
  Bytes sent(csr.begin(), csr.end());
  if (on_submit) on_submit(sent);
  return inner_.Submit(session, sent);
}

Result<EnrolmentAnswer<EnrolmentCertificates>> TamperingChannel::Activate(
    const std::string& session, std::span<const std::uint8_t> secret) {
  last_secret.assign(secret.begin(), secret.end());
  Bytes sent = last_secret;
  if (on_activate) on_activate(sent);
  return inner_.Activate(session, sent);
}

Result<EnrolmentAnswer<EnrolmentCommitted>> TamperingChannel::Commit(const std::string& session,
                                                                     const EnrolmentCommit& commit) {
  return inner_.Commit(session, commit);
}

Result<Bytes> AlterRequest(const TpmContext& tpm, TpmHandle signer, std::span<const std::uint8_t> csr,
                           const std::function<void(TcgCsrContent&)>& change) {
  IDEVID_ASSIGN_OR_RETURN(TcgCsr parsed, ParseTcgCsr(csr));
  change(parsed.content);
  return SignRequest(tpm, signer, parsed.content);
}

}  // namespace idevid
