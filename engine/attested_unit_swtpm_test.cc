// The attested unit on swtpm with the verifier in-process: enrolled and booted so that its own
// IAK quote is attested against a policy from its own log; another kernel is refused naming the
// event; a TPM state saved and restored after resets is a counter rollback; and tpm2_checkquote
// verifies its quote with the IAK's public key as an independent oracle.
#include "engine/attested_unit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "cloud/attest_policy.h"
#include "cloud/attestation_verifier.h"
#include "core/attestation_wire.h"
#include "core/event_log.h"
#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_keys.h"
#include "core/tpm_nv.h"
#include "core/tpm_pcr.h"
#include "core/x509.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/enrolment_station.h"
#include "provisioning/factory.h"

namespace idevid {
namespace {

using testing::IsOk;

class AttestedUnitTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = new testing::TempDir();
    ASSERT_TRUE(InitFactory({.dir = temp_->path() / "factory"}));
    auto unit = AttestedUnit::Create({.stock = temp_->path() / "stock",
                                      .dir = temp_->path() / "unit",
                                      .factory_dir = temp_->path() / "factory",
                                      .serial = "CW-UNIT-1"});
    ASSERT_TRUE(unit) << unit.error().message();
    unit_ = unit->release();
    auto log = ReadFileBytes(unit_->event_log()).and_then([](const Bytes& b) { return ParseEventLog(b); });
    ASSERT_TRUE(log) << log.error().message();
    policy_ = new AttestPolicy(PolicyFromLog(*log, "golden", *ParsePcrSelection(unit_->options().pcrs)));
    store_ = X509_STORE_new();
    auto certs = LoadCertificateBundle(FactoryFiles::Chain(temp_->path() / "factory"));
    ASSERT_TRUE(certs);
    for (const auto& c : *certs) X509_STORE_add_cert(store_, c.get());
  }
  static void TearDownTestSuite() {
    X509_STORE_free(store_);
    delete policy_;
    delete unit_;
    delete temp_;
  }

  // The unit's evidence for a fresh challenge in a session with a fresh exporter, verified.
  static Result<AttestationVerdict> AttestNow() {
    Bytes nonce(kAttestationNonceBytes, 0x11), exporter(kAttestationExporterBytes, 0x22);
    IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(unit_->tcti()));
    IDEVID_ASSIGN_OR_RETURN(EsysReference iak, ReferencePersistentKey(tpm, kDefaultIakKeyHandle));
    IDEVID_ASSIGN_OR_RETURN(Attestation quote,
                            Quote(tpm, iak.handle(), policy_->pcrs, SessionBinding(nonce, exporter)));
    AttestationEvidence evidence{.quote = quote.attest, .signature = quote.signature, .pcrs = policy_->pcrs};
    IDEVID_ASSIGN_OR_RETURN(evidence.pcr_values, ReadPcrs(tpm, policy_->pcrs));
    IDEVID_ASSIGN_OR_RETURN(evidence.event_log, ReadFileBytes(unit_->event_log()));
    IDEVID_ASSIGN_OR_RETURN(evidence.iak_certificate, NvRead(tpm, kDefaultIakNvIndex));
    return VerifyAttestation(evidence, {.serial = "CW-UNIT-1",
                                        .nonce = nonce,
                                        .exporter = exporter,
                                        .factory_ca = store_,
                                        .policy = policy_,
                                        .counters = &counters_});
  }

  static inline testing::TempDir* temp_ = nullptr;
  static inline AttestedUnit* unit_ = nullptr;
  static inline AttestPolicy* policy_ = nullptr;
  static inline X509_STORE* store_ = nullptr;
  static inline BootCounters counters_;
};

TEST_F(AttestedUnitTest, ItsOwnQuoteIsAttestedAgainstItsOwnLog) {
  auto verdict = AttestNow();
  ASSERT_THAT(verdict, IsOk());
  EXPECT_TRUE(verdict->attested) << verdict->reason;
  EXPECT_EQ(verdict->policy, "golden");
}

TEST_F(AttestedUnitTest, AnotherKernelIsRefusedNamingTheEvent) {
  auto profile = unit_->OtherKernelProfile();
  ASSERT_THAT(profile, IsOk());
  ASSERT_THAT(unit_->Reboot(*profile), IsOk());
  auto verdict = AttestNow();
  ASSERT_THAT(unit_->Reboot(), IsOk());
  ASSERT_THAT(verdict, IsOk());
  EXPECT_FALSE(verdict->attested);
  EXPECT_THAT(verdict->reason, ::testing::StartsWith("event-not-allowed: "));
  EXPECT_THAT(verdict->reason, ::testing::HasSubstr("PCR 4, EV_EFI_BOOT_SERVICES_APPLICATION"));
  auto after = AttestNow();
  ASSERT_THAT(after, IsOk());
  EXPECT_TRUE(after->attested) << after->reason;
}

TEST_F(AttestedUnitTest, ARestoredTpmStateIsACounterRollback) {
  ASSERT_THAT(AttestNow(), IsOk());
  auto saved = temp_->path() / "saved";
  auto copy = [](const std::filesystem::path& from, const std::filesystem::path& to) -> Result<void> {
    std::error_code ec;
    std::filesystem::remove_all(to, ec);
    std::filesystem::copy(from, to, std::filesystem::copy_options::recursive, ec);
    if (ec) return ErrnoError(ec.value(), "copy");
    return {};
  };
  ASSERT_THAT(unit_->Reboot({}, [&](const std::filesystem::path& state) { return copy(state, saved); }),
              IsOk());
  ASSERT_THAT(unit_->Reboot(), IsOk());
  auto rebooted = AttestNow();
  ASSERT_THAT(rebooted, IsOk());
  EXPECT_TRUE(rebooted->attested) << rebooted->reason;
  ASSERT_THAT(unit_->Reboot({}, [&](const std::filesystem::path& state) { return copy(saved, state); }),
              IsOk());
  auto rolled_back = AttestNow();
  ASSERT_THAT(rolled_back, IsOk());
  EXPECT_THAT(rolled_back->reason, ::testing::StartsWith("counter-rollback: "));
}

TEST_F(AttestedUnitTest, Tpm2CheckquoteVerifiesItsQuoteWithTheIakPublicKey) {
  auto dir = temp_->path() / "checkquote";
  std::filesystem::create_directories(dir);
  auto at = [&](const char* name) { return (dir / name).string(); };
  auto env = unit_->ToolEnvironment();
  // Our quote, through core, checked by tpm2-tools with nothing but the IAK certificate's key (its
  // signature and nonce; core/tpm_pcr_swtpm_test.cc checks the PCR digest with -f).
  auto tpm = TpmContext::Open(unit_->tcti());
  ASSERT_THAT(tpm, IsOk());
  auto iak = ReferencePersistentKey(*tpm, kDefaultIakKeyHandle);
  ASSERT_THAT(iak, IsOk());
  Bytes nonce(32, 0x5a);
  auto quote = Quote(*tpm, iak->handle(), policy_->pcrs, nonce);
  ASSERT_THAT(quote, IsOk());
  auto cert_der = NvRead(*tpm, kDefaultIakNvIndex);
  ASSERT_THAT(cert_der, IsOk());
  auto cert = ParseCertificate(*cert_der);
  ASSERT_THAT(cert, IsOk());
  ossl::UniquePtr<BIO> bio(BIO_new_file(at("iak.pem").c_str(), "w"));
  ASSERT_TRUE(bio && PEM_write_bio_PUBKEY(bio.get(), X509_get0_pubkey(cert->get())) == 1);
  bio.reset();
  ASSERT_THAT(WriteFileAtomic(at("quote.msg"), quote->attest), IsOk());
  // TPMT_SIGNATURE as TPM2_Quote returned it: what tpm2_checkquote -s reads.
  ASSERT_THAT(WriteFileAtomic(at("quote.sig"), quote->signature), IsOk());
  auto check = RunCommand({"tpm2_checkquote", "-u", at("iak.pem"), "-m", at("quote.msg"), "-s",
                           at("quote.sig"), "-g", "sha256", "-q", Hex(nonce)},
                          env);
  ASSERT_THAT(check, IsOk());
  EXPECT_EQ(check->exit_status, 0) << check->err << check->out;
  // And a nonce it was not made for is refused by the oracle too.
  auto wrong = RunCommand({"tpm2_checkquote", "-u", at("iak.pem"), "-m", at("quote.msg"), "-s",
                           at("quote.sig"), "-g", "sha256", "-q", Hex(Bytes(32, 0x5b))},
                          env);
  ASSERT_THAT(wrong, IsOk());
  EXPECT_NE(wrong->exit_status, 0);
}

}  // namespace
}  // namespace idevid
