// Our device-identity admin policy: digests as TPM 2.0 Part 3 §23 defines them, computed apart
// (Python hashlib) for the values below.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/tpm_keys.h"
#include "core/tpm_policy.h"
#include "core/x509.h"

namespace idevid {
namespace {

TEST(TpmPolicy, BranchesAndOrAreTheDigestsOfPart3) {
  ASSERT_EQ(IdentityAdminPolicyBranches().size(), 2u);
  EXPECT_EQ(Hex(IdentityAdminPolicyBranches()[0]),
            "048e9a3ace08583f79f344ff785bbea9f07ac7fa3325b3d49a21dd5194c65850");
  EXPECT_EQ(Hex(IdentityAdminPolicyBranches()[1]),
            "e587c11ab50f9d8730f721e3fea42b46c0455b246f96aee85d18eb3be64d666a");
  EXPECT_EQ(Hex(IdentityAdminPolicy()), "beca03ea8b9ed2abddcfd231d039e20df78246ebe68397cbc42e62990e8dfc39");
}

TEST(TpmPolicy, BothTemplatesCarryItWithAdminWithPolicy) {
  for (KeyAlgorithm alg : {KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048}) {
    EXPECT_TRUE(TakesIdentityAdminSession(IdevidKeyTemplate(alg).publicArea));
    EXPECT_TRUE(TakesIdentityAdminSession(IakKeyTemplate(alg).publicArea));
  }
  TPMT_PUBLIC without = IdevidKeyTemplate(KeyAlgorithm::kEccP256).publicArea;
  without.objectAttributes &= ~TPMA_OBJECT_ADMINWITHPOLICY;
  EXPECT_FALSE(TakesIdentityAdminSession(without));
}

}  // namespace
}  // namespace idevid
