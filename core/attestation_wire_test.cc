#include "core/attestation_wire.h"

#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/byte_text.h"
#include "core/event_log.h"
#include "core/testing/result_matchers.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;
using testing::ResultIs;
using ::testing::StartsWith;
using Json = nlohmann::json;

PcrSelection Selection(std::vector<std::uint32_t> pcrs) {
  return PcrSelection{TPM2_ALG_SHA256, std::move(pcrs)};
}

AttestationChallenge SomeChallenge() {
  return AttestationChallenge{Bytes(kAttestationNonceBytes, 0x5a), Selection({0, 4, 7})};
}

AttestationEvidence SomeEvidence() {
  AttestationEvidence evidence;
  evidence.quote = Bytes{0xff, 0x54, 0x43, 0x47, 0x80, 0x18};
  evidence.signature = Bytes{0x00, 0x18, 0x00, 0x0b};
  evidence.pcrs = Selection({0, 4, 7});
  evidence.pcr_values = {{0, Bytes(32, 0x00)}, {4, Bytes(32, 0x44)}, {7, Bytes(32, 0xa7)}};
  evidence.event_log = Bytes{1, 2, 3, 4, 5};
  evidence.iak_certificate = Bytes{0x30, 0x03, 0x02, 0x01, 0x00};
  return evidence;
}

// The evidence's JSON with `edit` applied.
std::string EditedEvidence(const std::function<void(Json&)>& edit) {
  Json doc = Json::parse(EvidenceJson(SomeEvidence()));
  edit(doc);
  return doc.dump();
}

std::string EditedChallenge(const std::function<void(Json&)>& edit) {
  Json doc = Json::parse(ChallengeJson(SomeChallenge()));
  edit(doc);
  return doc.dump();
}

TEST(AttestationWire, ChallengeRoundTrips) {
  auto parsed = ParseChallenge(ChallengeJson(SomeChallenge()));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->nonce, SomeChallenge().nonce);
  EXPECT_EQ(parsed->pcrs, SomeChallenge().pcrs);
  Json doc = Json::parse(ChallengeJson(SomeChallenge()));
  EXPECT_EQ(doc["version"], 1);
  EXPECT_EQ(doc["type"], "attestation-challenge");
  EXPECT_EQ(doc["pcrs"], "sha256:0,4,7");
  EXPECT_EQ(doc["exporter"]["label"], "EXPORTER-idevid-attestation");
  EXPECT_EQ(doc["exporter"]["length"], 32);
}

TEST(AttestationWire, EvidenceRoundTrips) {
  const AttestationEvidence evidence = SomeEvidence();
  auto parsed = ParseEvidence(EvidenceJson(evidence));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->quote, evidence.quote);
  EXPECT_EQ(parsed->signature, evidence.signature);
  EXPECT_EQ(parsed->pcrs, evidence.pcrs);
  EXPECT_EQ(parsed->pcr_values, evidence.pcr_values);
  EXPECT_EQ(parsed->event_log, evidence.event_log);
  EXPECT_EQ(parsed->iak_certificate, evidence.iak_certificate);
  Json doc = Json::parse(EvidenceJson(evidence));
  EXPECT_EQ(doc["type"], "attestation-evidence");
  EXPECT_EQ(doc["pcr_values"]["4"], std::string(64, '4'));
}

TEST(AttestationWire, UnknownMembersAreIgnored) {
  EXPECT_THAT(ParseEvidence(EditedEvidence([](Json& doc) { doc["firmware_vendor"] = {{"x", 1}}; })), IsOk());
  EXPECT_THAT(ParseChallenge(EditedChallenge([](Json& doc) { doc["hint"] = 7; })), IsOk());
}

TEST(AttestationWire, AnotherVersionOrTypeIsUnsupported) {
  EXPECT_THAT(
      ParseEvidence(EditedEvidence([](Json& doc) { doc["version"] = 2; })),
      ResultIs(ErrorDomain::kUsage, UsageCode::kUnsupported, "version 2 is not spoken here (version 1 is)"));
  EXPECT_THAT(ParseEvidence(ChallengeJson(SomeChallenge())),
              ResultIs(ErrorDomain::kUsage, UsageCode::kUnsupported,
                       "the message is of type \"attestation-challenge\", not \"attestation-evidence\""));
  EXPECT_THAT(ParseChallenge(EvidenceJson(SomeEvidence())),
              ResultIs(ErrorDomain::kUsage, UsageCode::kUnsupported, StartsWith("the message is of type")));
  EXPECT_THAT(ParseChallenge(EditedChallenge([](Json& doc) { doc["exporter"]["label"] = "EXPORTER-other"; })),
              ResultIs(ErrorDomain::kUsage, UsageCode::kUnsupported,
                       StartsWith("the exporter \"EXPORTER-other\" of 32 bytes is not spoken here")));
}

TEST(AttestationWire, MalformedMessagesNameTheMember) {
  struct Case {
    std::string json;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"quote=1", "the message is not JSON (RFC 8259)"},
      {"[1]", "the message is not a JSON object"},
      {EditedEvidence([](Json& doc) { doc.erase("version"); }), "the member \"version\" is missing"},
      {EditedEvidence([](Json& doc) { doc["version"] = "1"; }), "the member \"version\" is not an integer"},
      {EditedEvidence([](Json& doc) { doc.erase("type"); }), "the member \"type\" is missing"},
      {EditedEvidence([](Json& doc) { doc["type"] = 3; }), "the member \"type\" is not a string"},
      {EditedEvidence([](Json& doc) { doc.erase("quote"); }), "the member \"quote\" is missing"},
      {EditedEvidence([](Json& doc) { doc["signature"] = 5; }), "the member \"signature\" is not a string"},
      {EditedEvidence([](Json& doc) {
         doc["event_log"] =
             "AQID"
             "\x1b"
             "===";
       }),
       "the member \"event_log\": is not base64 (RFC 4648 §4): character 4 is \"\\x1b\""},
      {EditedEvidence([](Json& doc) { doc["iak_certificate"] = "abc"; }),
       "the member \"iak_certificate\": is not padded base64"},
      {EditedEvidence([](Json& doc) { doc["pcrs"] = "sha1:0"; }), "the member \"pcrs\": "},
      {EditedEvidence([](Json& doc) { doc["pcrs"] = 4; }), "the member \"pcrs\" is not a string"},
      {EditedEvidence([](Json& doc) { doc["pcr_values"] = Json::array(); }),
       "the member \"pcr_values\" is not an object"},
      {EditedEvidence([](Json& doc) { doc["pcr_values"].erase("4"); }),
       "the member \"pcr_values\" lacks PCR 4 of \"pcrs\" (sha256:0,4,7)"},
      {EditedEvidence([](Json& doc) { doc["pcr_values"]["5"] = std::string(64, '0'); }),
       "the member \"pcr_values\" has PCR 5, which \"pcrs\" (sha256:0,4,7) does not select"},
      {EditedEvidence([](Json& doc) { doc["pcr_values"]["04"] = std::string(64, '0'); }),
       "the member \"pcr_values\" has the key \"04\", not a PCR number"},
      {EditedEvidence([](Json& doc) { doc["pcr_values"]["x"] = std::string(64, '0'); }),
       "the member \"pcr_values\" has the key \"x\", not a PCR number"},
      {EditedEvidence([](Json& doc) { doc["pcr_values"]["4"] = std::string(40, '0'); }),
       "the member \"pcr_values\": PCR 4 is 20 bytes, not the 32 of SHA-256"},
      {EditedEvidence([](Json& doc) { doc["pcr_values"]["4"] = std::string(63, '0') + "z"; }),
       "the member \"pcr_values\": PCR 4: is not hex: character 63 is \"z\""},
      {EditedEvidence([](Json& doc) { doc["pcr_values"]["4"] = 4; }),
       "the member \"pcr_values\": PCR 4 is not a string"},
      {EditedChallenge([](Json& doc) { doc["nonce"] = EncodeBase64(Bytes(31, 1)); }),
       "the member \"nonce\" is 31 bytes, not 32"},
      {EditedChallenge([](Json& doc) { doc.erase("exporter"); }), "the member \"exporter\" is missing"},
      {EditedChallenge([](Json& doc) { doc["exporter"]["length"] = "32"; }),
       "the member \"exporter\": the member \"length\" is not an integer"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    bool challenge = c.json.find("attestation-challenge") != std::string::npos;
    auto error = challenge ? ParseChallenge(c.json).error() : ParseEvidence(c.json).error();
    EXPECT_THAT(error, testing::ErrorIs(ErrorDomain::kConfig, ConfigCode::kSyntax, StartsWith(c.message)));
  }
}

TEST(AttestationWire, SizesAreBounded) {
  EXPECT_THAT(ParseEvidence(std::string(kMaxEvidenceBytes + 1, ' ')),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kLimit, StartsWith("the message is 1572865 bytes")));
  EXPECT_THAT(
      ParseEvidence(EditedEvidence(
          [](Json& doc) { doc["event_log"] = EncodeBase64(Bytes(kMaxEventLogBytes + 3, 0)); })),
      ResultIs(ErrorDomain::kConfig, ConfigCode::kLimit, StartsWith("the member \"event_log\" holds")));
  EXPECT_THAT(ParseEvidence(EditedEvidence(
                  [](Json& doc) { doc["event_log"] = EncodeBase64(Bytes(kMaxEventLogBytes + 1, 0)); })),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kLimit,
                       "the member \"event_log\" holds 1048577 bytes, more than the 1048576 accepted"));
  EXPECT_THAT(ParseEvidence(EditedEvidence(
                  [](Json& doc) { doc["event_log"] = EncodeBase64(Bytes(kMaxEventLogBytes, 0)); })),
              IsOk());
  EXPECT_THAT(
      ParseEvidence(
          EditedEvidence([](Json& doc) { doc["iak_certificate"] = EncodeBase64(Bytes(16 * 1024 + 1, 0)); })),
      ResultIs(ErrorDomain::kConfig, ConfigCode::kLimit, StartsWith("the member \"iak_certificate\" holds")));
  EXPECT_THAT(ParseEvidence(EditedEvidence(
                  [](Json& doc) { doc["quote"] = EncodeBase64(Bytes(sizeof(TPMS_ATTEST) + 1, 0)); })),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kLimit, StartsWith("the member \"quote\" holds")));
  EXPECT_THAT(
      ParseChallenge(EditedChallenge([](Json& doc) { doc["nonce"] = EncodeBase64(Bytes(33, 1)); })),
      ResultIs(ErrorDomain::kConfig, ConfigCode::kLimit, StartsWith("the member \"nonce\" holds 33 bytes")));
}

TEST(AttestationWire, SessionBindingDependsOnNonceAndExporter) {
  const Bytes nonce(32, 1), exporter(32, 2);
  Bytes binding = SessionBinding(nonce, exporter);
  EXPECT_EQ(binding.size(), 32u);
  // SHA-256("idevid-attestation-v1" || nonce || exporter), computed independently with
  // python3 -c 'import
  // hashlib;print(hashlib.sha256(b"idevid-attestation-v1"+bytes([1]*32)+bytes([2]*32)).hexdigest())'
  EXPECT_EQ(Hex(binding), "637664947f5c3499e1b106104b76cddf6935a4dcc924f775d04a7d21e7b4c2ce");
  EXPECT_NE(SessionBinding(Bytes(32, 3), exporter), binding);
  EXPECT_NE(SessionBinding(nonce, Bytes(32, 3)), binding);
}

}  // namespace
}  // namespace idevid
