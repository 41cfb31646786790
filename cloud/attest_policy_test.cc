#include "cloud/attest_policy.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "core/work_dir.h"
#include "core/x509.h"

namespace idevid {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::IsOk;
using testing::ResultIs;
using ::testing::StartsWith;

LogEvent Event(std::uint32_t pcr, std::uint32_t type, std::uint8_t fill, std::string data = "") {
  return LogEvent{pcr, type, {{kAlgSha256, Bytes(32, fill)}}, Bytes(data.begin(), data.end())};
}

// A known-good boot: events 1.. as the log numbers them (the Spec ID event is event 0).
EventLog GoldenLog() {
  EventLog log;
  log.algorithms = {kAlgSha256};
  log.events = {
      Event(0, kEvSCrtmVersion, 0x01, "firmware 1.2"),               // event 1
      Event(0, kEvNoAction, 0x00),                                   // event 2: not measured
      Event(4, kEvEfiBootServicesApplication, 0x04, "grubx64.efi"),  // event 3
      Event(4, kEvEfiBootServicesApplication, 0x05, "vmlinuz-6.1"),  // event 4
      Event(4, kEvSeparator, 0x06),                                  // event 5
      Event(12, kEvIpl, 0x0c, "not selected"),                       // event 6
  };
  return log;
}

PcrSelection Selection(std::vector<std::uint32_t> pcrs) {
  return PcrSelection{TPM2_ALG_SHA256, std::move(pcrs)};
}

std::string Digest(char c) { return std::string(64, c); }

// A valid policy with `lines` appended (YAML lines, each ending in \n).
std::string PolicyText(const std::string& lines = "") {
  return "version: 1\n"
         "name: golden\n"
         "pcrs: sha256:0,4\n"
         "events:\n"
         "  - pcr: 4\n"
         "    type: EV_SEPARATOR\n"
         "    digests: [" +
         Digest('0') + "]\n" + lines;
}

TEST(AttestPolicy, PolicyFromLogRoundTripsThroughYaml) {
  const AttestPolicy policy = PolicyFromLog(GoldenLog(), "srx4300-golden: \"v2\" #1", Selection({0, 4, 7}));
  EXPECT_EQ(policy.allowed.size(), 3u);  // no EV_NO_ACTION, nothing of PCR 12
  EXPECT_EQ(policy.allowed.at({4, kEvEfiBootServicesApplication}),
            (std::set<Bytes>{Bytes(32, 4), Bytes(32, 5)}));
  const std::string yaml = AttestPolicyYaml(policy);
  EXPECT_THAT(yaml, HasSubstr("type: EV_EFI_BOOT_SERVICES_APPLICATION"));
  auto parsed = ParseAttestPolicy(yaml, "golden.yaml");
  ASSERT_THAT(parsed, IsOk()) << yaml;
  EXPECT_EQ(parsed->name, policy.name);
  EXPECT_EQ(parsed->pcrs, policy.pcrs);
  EXPECT_EQ(parsed->allowed, policy.allowed);
}

TEST(AttestPolicy, LoadReadsAFileAndNamesOneItCannotRead) {
  auto dir = WorkDir::Create("attest-policy");
  ASSERT_THAT(dir, IsOk());
  EXPECT_THAT(LoadAttestPolicy(dir->path() / "absent.yaml"),
              ResultIs(ErrorDomain::kIo, ENOENT, StartsWith("reading the attestation policy")));
}

TEST(AttestPolicy, EachErrorNamesFileLineColumnAndItsCode) {
  struct Case {
    std::string text;
    ErrorDomain domain;
    std::uint64_t code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"version: [1\n", ErrorDomain::kConfig, 1, "p.yaml:2:1: not YAML: "},
      {"- 1\n", ErrorDomain::kConfig, 1, "p.yaml:1:1: the policy must be a mapping of keys to values"},
      {"", ErrorDomain::kConfig, 1, "p.yaml:1:1: the policy must be a mapping"},
      {PolicyText("  - pcr: 0\n    type: EV_S_CRTM_VERSION\n    digests: [abc]\n"), ErrorDomain::kConfig, 1,
       "p.yaml:10:15: a digest must be 64 hex digits (SHA-256)"},
      {PolicyText("colour: red\n"), ErrorDomain::kConfig, 2,
       "p.yaml:8:1: unknown key 'colour'; the keys are: version, name, pcrs, events"},
      {PolicyText("  - pcr: 0\n    kind: x\n"), ErrorDomain::kConfig, 2,
       "p.yaml:9:5: unknown key 'events.kind'; the keys are: pcr, type, digests"},
      {"version: 1\nname: g\npcrs: sha1:0\nevents: []\n", ErrorDomain::kConfig, 3, "p.yaml:3:7: 'pcrs': "},
      {PolicyText("  - pcr: 0\n    type: EV_BOGUS\n    digests: [" + Digest('1') + "]\n"),
       ErrorDomain::kConfig, 3, "p.yaml:9:11: 'type': "},
      {PolicyText("  - pcr: 24\n"), ErrorDomain::kConfig, 3,
       "p.yaml:8:10: 'pcr' must be a PCR number from 0 to 23"},
      {PolicyText("  - pcr: 7\n    type: EV_SEPARATOR\n    digests: [" + Digest('1') + "]\n"),
       ErrorDomain::kConfig, 3, "p.yaml:8:10: pcr 7 is not in 'pcrs' (sha256:0,4)"},
      {"version: 1\nname: g\npcrs: sha256:0\n", ErrorDomain::kConfig, 4,
       "p.yaml:1:1: the policy lacks 'events'"},
      {PolicyText("  - pcr: 0\n    type: EV_SEPARATOR\n"), ErrorDomain::kConfig, 4,
       "p.yaml:8:5: the entry lacks 'digests'"},
      {PolicyText("name: again\n"), ErrorDomain::kConfig, 5, "p.yaml:8:1: 'name' is given twice; keep one"},
      {PolicyText("  - pcr: 4\n    type: EV_SEPARATOR\n    digests: [" + Digest('1') + "]\n"),
       ErrorDomain::kConfig, 5, "p.yaml:8:5: pcr 4 type EV_SEPARATOR is listed twice; keep one entry"},
      {"version: 2\n", ErrorDomain::kUsage, 4,
       "p.yaml:1:10: policy version 2 is not spoken here (version 1 is)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_THAT(ParseAttestPolicy(c.text, "p.yaml"), ResultIs(c.domain, c.code, StartsWith(c.message)));
  }
  EXPECT_THAT(ParseAttestPolicy(PolicyText(), "p.yaml"), IsOk());
}

TEST(AttestPolicy, TheGoldenLogSatisfiesItsOwnPolicy) {
  const AttestPolicy policy = PolicyFromLog(GoldenLog(), "srx4300-golden", Selection({0, 4}));
  EXPECT_THAT(CheckEventsAgainstPolicy(GoldenLog(), policy).findings(), IsEmpty());
}

TEST(AttestPolicy, AnEventWhoseDigestChangedIsNamed) {
  const AttestPolicy policy = PolicyFromLog(GoldenLog(), "srx4300-golden", Selection({0, 4}));
  EventLog log = GoldenLog();
  log.events[3].digests[kAlgSha256] = Bytes(32, 0x12);
  Verdict verdict = CheckEventsAgainstPolicy(log, policy);
  EXPECT_FALSE(verdict.passed());
  EXPECT_THAT(verdict.findings(),
              ElementsAre(AllOf(Field(&Finding::id, "event-not-allowed"),
                                Field(&Finding::evidence,
                                      "event 4 (PCR 4, EV_EFI_BOOT_SERVICES_APPLICATION "
                                      "\"vmlinuz-6.1\") digest " +
                                          Hex(Bytes(32, 0x12)) + " is not in policy \"srx4300-golden\""))));
}

TEST(AttestPolicy, AnEventTypeNotListedIsNamed) {
  const AttestPolicy policy = PolicyFromLog(GoldenLog(), "srx4300-golden", Selection({0, 4}));
  EventLog log = GoldenLog();
  log.events.push_back(Event(4, kEvAction, 0x07, "Calling EFI Application"));
  log.events.push_back(Event(9, kEvAction, 0x07, "PCR 9 is not in the policy"));
  Verdict verdict = CheckEventsAgainstPolicy(log, policy);
  EXPECT_THAT(verdict.findings(),
              ElementsAre(AllOf(Field(&Finding::id, "event-not-allowed"),
                                Field(&Finding::evidence,
                                      "event 7 (PCR 4, EV_ACTION \"Calling EFI Application\"): "
                                      "policy \"srx4300-golden\" lists no EV_ACTION event for "
                                      "PCR 4"))));
}

TEST(AttestPolicy, EventDataThatIsNotTextIsNotQuoted) {
  const AttestPolicy policy = PolicyFromLog(GoldenLog(), "g", Selection({0}));
  EventLog log = GoldenLog();
  log.events[0].data = Bytes{0x01, 0x1b, 0x41};
  log.events[0].digests[kAlgSha256] = Bytes(32, 0xee);
  Verdict verdict = CheckEventsAgainstPolicy(log, policy);
  ASSERT_EQ(verdict.findings().size(), 1u);
  EXPECT_THAT(verdict.findings()[0].evidence, StartsWith("event 1 (PCR 0, EV_S_CRTM_VERSION) digest eeee"));
}

}  // namespace
}  // namespace idevid
