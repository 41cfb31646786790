#include "core/tpm_policy.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "core/tss_error.h"

namespace idevid {
namespace {

void AppendU32(Bytes& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

Bytes Sha256(const Bytes& data) {
  Bytes digest(32);
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

TPM2B_DIGEST ToTpm2b(const Bytes& digest) {
  TPM2B_DIGEST out{};
  out.size = static_cast<UINT16>(digest.size());
  std::memcpy(out.buffer, digest.data(), digest.size());
  return out;
}

}  // namespace

Bytes PolicyCommandCodeDigest(const Bytes& previous, TPM2_CC code) {
  Bytes data = previous;
  AppendU32(data, TPM2_CC_PolicyCommandCode);
  AppendU32(data, code);
  return Sha256(data);
}

Bytes PolicyOrDigest(const std::vector<Bytes>& branches) {
  Bytes data(32, 0);  // PolicyOR resets the digest first
  AppendU32(data, TPM2_CC_PolicyOR);
  for (const Bytes& branch : branches) data.insert(data.end(), branch.begin(), branch.end());
  return Sha256(data);
}

const std::vector<Bytes>& IdentityAdminPolicyBranches() {
  static const std::vector<Bytes> branches{PolicyCommandCodeDigest(Bytes(32, 0), TPM2_CC_Certify),
                                           PolicyCommandCodeDigest(Bytes(32, 0), TPM2_CC_ActivateCredential)};
  return branches;
}

const Bytes& IdentityAdminPolicy() {
  static const Bytes policy = PolicyOrDigest(IdentityAdminPolicyBranches());
  return policy;
}

bool TakesIdentityAdminSession(const TPMT_PUBLIC& pub) {
  const Bytes& policy = IdentityAdminPolicy();
  return (pub.objectAttributes & TPMA_OBJECT_ADMINWITHPOLICY) != 0 && pub.authPolicy.size == policy.size() &&
         std::equal(policy.begin(), policy.end(), pub.authPolicy.buffer);
}

Result<TransientObject> StartPolicySession(const TpmContext& tpm, std::string_view what) {
  TPMT_SYM_DEF no_symmetric{};
  no_symmetric.algorithm = TPM2_ALG_NULL;
  ESYS_TR handle = ESYS_TR_NONE;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_StartAuthSession(tpm.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                 ESYS_TR_NONE, nullptr, TPM2_SE_POLICY, &no_symmetric, TPM2_ALG_SHA256,
                                 &handle);
  });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, fmt::format("cannot start a policy session for {}", what));
  return TransientObject(tpm, handle);
}

Result<TransientObject> IdentityAdminSession(const TpmContext& tpm, TPM2_CC command) {
  IDEVID_ASSIGN_OR_RETURN(TransientObject session, StartPolicySession(tpm, "a device-identity key"));
  TSS2_RC rc = tpm.Run([&] {
    return Esys_PolicyCommandCode(tpm.esys(), session.handle(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                  command);
  });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, "TPM2_PolicyCommandCode failed");
  TPML_DIGEST branches{};
  for (const Bytes& branch : IdentityAdminPolicyBranches()) {
    branches.digests[branches.count++] = ToTpm2b(branch);
  }
  rc = tpm.Run([&] {
    return Esys_PolicyOR(tpm.esys(), session.handle(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &branches);
  });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, "TPM2_PolicyOR failed");
  return session;
}

}  // namespace idevid
