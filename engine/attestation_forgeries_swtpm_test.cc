// The attestation forgeries played on a real attested swtpm unit against a real cloud with a
// policy: each refused with its finding, the genuine unit attested before and after, and the
// judge itself catching a forgery that is attested or refused for another finding.
#include "engine/attestation_forgeries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "cloud/attest_policy.h"
#include "cloud/cloud_server.h"
#include "core/event_log.h"
#include "core/file_io.h"
#include "core/testing/result_matchers.h"
#include "engine/tested_unit.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using testing::IsOk;

// One unit, one other TPM and one cloud for every test of this file: each forgery leaves the unit
// booted with its known-good chain, as the suite relies on.
class AttestationForgeryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = new testing::TempDir();
    auto tested = TestedUnit::Prepare({.work_dir = temp_->path() / "bench"});
    ASSERT_TRUE(tested) << tested.error().message();
    tested_ = tested->release();
    auto unit = AttestedUnit::Create({.stock = temp_->path() / "stock",
                                      .dir = temp_->path() / "unit",
                                      .factory_dir = tested_->issuer().dir,
                                      .serial = "CW-ATTEST-1"});
    ASSERT_TRUE(unit) << unit.error().message();
    unit_ = unit->release();
    auto log = ReadFileBytes(unit_->event_log()).and_then([](const Bytes& b) { return ParseEventLog(b); });
    ASSERT_TRUE(log) << log.error().message();
    auto pcrs = ParsePcrSelection(unit_->options().pcrs);
    ASSERT_TRUE(pcrs);
    auto policy = temp_->path() / "policy.yaml";
    ASSERT_TRUE(WriteFileAtomic(policy, AttestPolicyYaml(PolicyFromLog(*log, "golden", *pcrs))));
    auto d = tested_->dir();
    auto cloud = CloudServer::Start({.certificate = d / "cloud.pem",
                                     .private_key = d / "cloud.key",
                                     .factory_ca = FactoryFiles::Chain(tested_->issuer().dir),
                                     .log = temp_->path() / "cloud.jsonl",
                                     .attest_policy = policy});
    ASSERT_TRUE(cloud) << cloud.error().message();
    cloud_ = cloud->release();
  }
  static void TearDownTestSuite() {
    delete cloud_;
    other_.reset();
    delete unit_;
    delete tested_;
    delete temp_;
  }

  static AttestationBench Bench() {
    return {.unit = unit_, .port = cloud_->port(), .other_tcti = []() -> Result<std::string> {
              if (!other_) {
                IDEVID_ASSIGN_OR_RETURN(other_, SwtpmInstance::Start({.state_dir = temp_->path() / "other"}));
              }
              return other_->swtpm_tcti();
            }};
  }

  static AttestationForgery Named(const std::string& name) {
    auto all = AttestationForgeries();
    auto it =
        std::find_if(all.begin(), all.end(), [&](const AttestationForgery& f) { return f.name == name; });
    if (it == all.end()) throw std::runtime_error("no forgery " + name);
    return *it;
  }

  static inline testing::TempDir* temp_ = nullptr;
  static inline TestedUnit* tested_ = nullptr;
  static inline AttestedUnit* unit_ = nullptr;
  static inline CloudServer* cloud_ = nullptr;
  static inline std::optional<SwtpmInstance> other_;
};

TEST_F(AttestationForgeryTest, TheGenuineUnitIsAttestedNamingThePolicy) {
  auto session = AttestOnce(Bench());
  ASSERT_THAT(session, IsOk());
  ASSERT_TRUE(session->challenge.has_value()) << session->body;
  EXPECT_TRUE(session->attested()) << session->body;
  EXPECT_EQ(session->verdict.value("policy", std::string()), "golden") << session->body;
}

// What each forgery must be refused with: the catalogue may not drift from this table.
const std::map<std::string, std::string>& ExpectedFindings() {
  static const std::map<std::string, std::string> expected{{"event-digest-changed", "event-log-replay"},
                                                           {"replayed-quote", "qualifying-data"},
                                                           {"relayed-quote", "qualifying-data"},
                                                           {"quote-by-idevid", "quote-signature"},
                                                           {"idevid-certificate-as-iak", "iak-certificate"},
                                                           {"iak-of-another-tpm", "quote-signature"},
                                                           {"narrower-pcr-selection", "pcr-selection"},
                                                           {"truncated-event-log", "event-log"},
                                                           {"oversize-event-log", "evidence-malformed"},
                                                           {"kernel-not-allowed", "event-not-allowed"},
                                                           {"pcr-extended-after-boot", "event-log-replay"},
                                                           {"reset-count-rollback", "counter-rollback"}};
  return expected;
}

TEST_F(AttestationForgeryTest, EveryForgeryIsRefusedWithItsFinding) {
  auto forgeries = AttestationForgeries();
  ASSERT_EQ(forgeries.size(), ExpectedFindings().size());
  for (const AttestationForgery& forgery : forgeries) {
    SCOPED_TRACE(forgery.name);
    ASSERT_TRUE(ExpectedFindings().count(forgery.name));
    EXPECT_EQ(forgery.finding, ExpectedFindings().at(forgery.name));
    auto verdict = JudgeAttestationForgery(forgery, Bench());
    ASSERT_THAT(verdict, IsOk());
    EXPECT_TRUE(verdict->passed()) << verdict->FailureText();
  }
}

TEST_F(AttestationForgeryTest, TheJudgeCatchesARefusalForAnotherFinding) {
  AttestationForgery wrong = Named("quote-by-idevid");
  wrong.finding = "qualifying-data";
  auto verdict = JudgeAttestationForgery(wrong, Bench());
  ASSERT_THAT(verdict, IsOk());
  ASSERT_NE(verdict->first_failure(), nullptr);
  EXPECT_EQ(verdict->first_failure()->id, "wrong-finding");
  EXPECT_THAT(verdict->first_failure()->evidence, ::testing::HasSubstr("\"quote-signature\""));
}

TEST_F(AttestationForgeryTest, TheJudgeCatchesAForgeryTheCloudAttests) {
  AttestationForgery genuine{"genuine", "qualifying-data",
                             [](const AttestationBench& bench) { return AttestOnce(bench); }};
  auto verdict = JudgeAttestationForgery(genuine, Bench());
  ASSERT_THAT(verdict, IsOk());
  ASSERT_NE(verdict->first_failure(), nullptr);
  EXPECT_EQ(verdict->first_failure()->id, "forgery-attested");
}

TEST_F(AttestationForgeryTest, TheKernelRefusalNamesTheEvent) {
  auto session = Named("kernel-not-allowed").play(Bench());
  ASSERT_THAT(session, IsOk());
  EXPECT_EQ(RefusalFinding(*session), "event-not-allowed");
  EXPECT_THAT(session->verdict.value("reason", std::string()),
              ::testing::HasSubstr("PCR 4, EV_EFI_BOOT_SERVICES_APPLICATION"));
}

}  // namespace
}  // namespace idevid
