// The fault-injecting TCTI in front of a real swtpm (behind tpm2-abrmd): each fault does what it
// says, a client sees the error it must see, and a fresh connection without faults works.
#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/fault_tcti/fault_spec.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_capability.h"
#include "core/tpm_key_signer.h"
#include "core/tpm_keys.h"
#include "engine/swtpm_instance.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using idevid::testing::IsOk;
using idevid::testing::ResultInDomain;
using idevid::testing::ResultIs;
using ::testing::_;

// An IDevID-template ECC key persisted at 0x81020000, for the signers below.
Result<void> PersistSigningKey(const TpmContext& tpm) {
  IDEVID_ASSIGN_OR_RETURN(
      PrimaryKey key, CreatePrimary(tpm, ESYS_TR_RH_ENDORSEMENT, IdevidKeyTemplate(KeyAlgorithm::kEccP256)));
  return PersistKey(tpm, key.object, 0x81020000);
}

// A signer on the key PersistSigningKey puts into `swtpm`'s TPM, after one good signature.
Result<std::shared_ptr<TpmKeySigner>> SignerThatHasSigned(const SwtpmInstance& swtpm) {
  {
    IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(swtpm.tcti()));
    IDEVID_TRY(PersistSigningKey(tpm), "persisting the signing key");
  }
  IDEVID_ASSIGN_OR_RETURN(auto signer, TpmKeySigner::Open(swtpm.tcti(), 0x81020000));
  IDEVID_TRY(signer->Sign(SignScheme::kEcdsa, "SHA256", Bytes(32, 0x42)), "the first signature");
  return signer;
}

class FaultTctiTest : public testing::TpmTestBase, public ::testing::Test {
 protected:
  void SetUp() override { StartTpm(testing::TpmAccess::kAbrmd); }
  void TearDown() override { StopTpm(); }
  std::string Faulty(const std::string& faults) {
    return *FaultTctiString(IDEVID_FAULT_TCTI, faults, swtpm().tcti());
  }
  Result<std::vector<std::uint8_t>> Random(const std::string& faults) {
    IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(Faulty(faults)));
    return GetRandom(tpm, 16);
  }
};

TEST_F(FaultTctiTest, RetryAndYieldedAnswersAreRetriedUntilTheCommandSucceeds) {
  auto random = Random("retry=4,yielded=3");
  ASSERT_THAT(random, IsOk());
  EXPECT_EQ(random->size(), 16u);
}

TEST_F(FaultTctiTest, ATpmThatKeepsAnsweringRetryFailsWithRetryAfterBoundedAttempts) {
  EXPECT_THAT(Random("retry=100000"), ResultIs(ErrorDomain::kTss, TPM2_RC_RETRY, _));
}

TEST_F(FaultTctiTest, ADroppedConnectionFailsEveryLaterCommandWithAnIoError) {
  auto tpm = TpmContext::Open(Faulty("drop-after=2"));
  ASSERT_THAT(tpm, IsOk());
  EXPECT_TRUE(GetRandom(*tpm, 8));
  EXPECT_TRUE(GetRandom(*tpm, 8));
  EXPECT_THAT(GetRandom(*tpm, 8), ResultIs(ErrorDomain::kTss, TSS2_TCTI_RC_IO_ERROR, _));
  EXPECT_THAT(GetRandom(*tpm, 8), ResultInDomain(ErrorDomain::kTss, _)) << "the connection stays dropped";
  EXPECT_TRUE(Random("")) << "a new connection works";
}

TEST_F(FaultTctiTest, DroppedAtTheFirstSignTheSignatureFailsAndTheNextConnectionSigns) {
  auto persisted = PersistSigningKey(tpm());
  ASSERT_THAT(persisted, IsOk());
  Bytes digest(32, 0x42);
  auto faulty = TpmKeySigner::Open(Faulty("drop-on=sign"), 0x81020000);
  ASSERT_TRUE(faulty) << "the key is read before the first sign: " << faulty.error().message();
  EXPECT_THAT((*faulty)->Sign(SignScheme::kEcdsa, "SHA256", digest),
              ResultIs(ErrorDomain::kTss, TSS2_TCTI_RC_IO_ERROR, _));
  auto healthy = TpmKeySigner::Open(swtpm().tcti(), 0x81020000);
  ASSERT_TRUE(healthy);
  EXPECT_TRUE((*healthy)->Sign(SignScheme::kEcdsa, "SHA256", digest));
  ASSERT_TRUE(UnpersistKey(tpm(), 0x81020000));
}

TEST_F(FaultTctiTest, ACorruptedResponseIsAnErrorNotACrash) {
  auto tpm = TpmContext::Open(Faulty("corrupt=1"));
  ASSERT_TRUE(tpm);
  auto corrupted = GetRandom(*tpm, 16);
  ASSERT_THAT(corrupted, ResultInDomain(ErrorDomain::kTss, _));
  EXPECT_EQ(corrupted.error().code() & TSS2_RC_LAYER_MASK, TSS2_MU_RC_LAYER)
      << "the response does not unmarshal: " << corrupted.error().message();
  EXPECT_TRUE(Random("corrupt=2")) << "the first response of a new connection is whole";
}

TEST_F(FaultTctiTest, DelayedResponsesArriveAtLeastThatLate) {
  auto tpm = TpmContext::Open(Faulty("delay-ms=40"));
  ASSERT_TRUE(tpm);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(GetRandom(*tpm, 8));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(120));
}

TEST_F(FaultTctiTest, TpmToolsWorkThroughItToo) {
  auto env = swtpm().ClientEnvironment();
  env["TPM2TOOLS_TCTI"] = Faulty("retry=2");
  auto ok = RunCommand({"tpm2_getrandom", "--hex", "8"}, env);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->exit_status, 0) << ok->err;
  EXPECT_EQ(ok->out.size(), 16u);
  env["TPM2TOOLS_TCTI"] = Faulty("drop-after=0");
  auto dropped = RunCommand({"tpm2_getrandom", "--hex", "8"}, env);
  ASSERT_TRUE(dropped);
  EXPECT_NE(dropped->exit_status, 0);
}

// A process fault rather than an injected one: the swtpm under a long-lived signer stops and
// comes back at the same address. The signature while it is away fails naming the TCTI layer;
// the next one after it is back reconnects and succeeds.
TEST(TpmKeySignerReconnectTest, ASignerOutlivesItsTpmGoingAwayAndComingBack) {
  testing::TempDir dir;
  auto swtpm = SwtpmInstance::Start({.state_dir = dir.path() / "tpm"});
  ASSERT_THAT(swtpm, IsOk());
  auto signer = SignerThatHasSigned(*swtpm);
  ASSERT_THAT(signer, IsOk());
  Bytes digest(32, 0x42);
  std::uint16_t port = swtpm->port();
  swtpm->Stop();
  auto away = (*signer)->Sign(SignScheme::kEcdsa, "SHA256", digest);
  ASSERT_THAT(away, ResultInDomain(ErrorDomain::kTss, _));
  EXPECT_NE(away.error().code() & TSS2_RC_LAYER_MASK, TSS2_TPM_RC_LAYER) << away.error().message();
  auto back = SwtpmInstance::Start({.state_dir = dir.path() / "tpm", .port = port});
  ASSERT_THAT(back, IsOk());
  auto again = (*signer)->Sign(SignScheme::kEcdsa, "SHA256", digest);
  EXPECT_THAT(again, IsOk());
  EXPECT_EQ((*signer)->signatures(), 2u);
}

// tpm2-abrmd restarted under a long-lived signer: the signature on the broken connection fails
// as a TSS (not TPM) error, and the signer reconnects to the new resource manager by itself.
TEST(TpmKeySignerReconnectTest, ASignerOutlivesARestartOfTpm2Abrmd) {
  testing::TempDir dir;
  auto swtpm = SwtpmInstance::Start({.state_dir = dir.path() / "tpm", .with_abrmd = true});
  ASSERT_THAT(swtpm, IsOk());
  auto signer = SignerThatHasSigned(*swtpm);
  ASSERT_THAT(signer, IsOk());
  Bytes digest(32, 0x42);
  auto restarted = swtpm->abrmd()->RestartDaemon();
  ASSERT_THAT(restarted, IsOk());
  int signed_after = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto sig = (*signer)->Sign(SignScheme::kEcdsa, "SHA256", digest);
    if (sig) {
      ++signed_after;
      continue;
    }
    EXPECT_THAT(sig, ResultInDomain(ErrorDomain::kTss, _));
    EXPECT_NE(sig.error().code() & TSS2_RC_LAYER_MASK, TSS2_TPM_RC_LAYER) << sig.error().message();
  }
  EXPECT_GE(signed_after, 1) << "the signer did not reconnect to the new tpm2-abrmd";
}

}  // namespace
}  // namespace idevid
