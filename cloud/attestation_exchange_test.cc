// The HTTP side of the cloud's attestation exchange: the challenge's response, the checks of the
// evidence request's head, the verdict's response and what goes to the connection log.
#include "cloud/attestation_exchange.h"

#include <string>
#include <variant>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

AttestPolicy Policy() {
  AttestPolicy policy;
  policy.name = "golden";
  policy.pcrs = *ParsePcrSelection("sha256:0,1,2,3,4,5,6,7,8,9");
  return policy;
}

TEST(AttestationChallengeTest, EachChallengeHasAFreshNonceAndThePolicysPcrs) {
  auto first = NewChallenge(Policy());
  auto second = NewChallenge(Policy());
  ASSERT_THAT(first, testing::IsOk());
  ASSERT_THAT(second, testing::IsOk());
  EXPECT_EQ(first->nonce.size(), kAttestationNonceBytes);
  EXPECT_NE(first->nonce, second->nonce);
  EXPECT_EQ(first->pcrs.ToString(), "sha256:0,1,2,3,4,5,6,7,8,9");
}

TEST(AttestationChallengeTest, TheChallengeIsA401ThatKeepsTheConnectionOpen) {
  AttestationChallenge challenge = *NewChallenge(Policy());
  std::string bytes = FormatResponse(ChallengeResponse(challenge, /*close=*/false));
  EXPECT_THAT(bytes, StartsWith("HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"));
  EXPECT_THAT(bytes, HasSubstr("\r\nWWW-Authenticate: IDevID-Attestation version=\"1\"\r\n"));
  EXPECT_THAT(bytes, Not(HasSubstr("Connection:")));
  std::string body = bytes.substr(bytes.find("\r\n\r\n") + 4);
  EXPECT_THAT(bytes, HasSubstr(fmt::format("Content-Length: {}\r\n", body.size())));
  auto parsed = ParseChallenge(body);
  ASSERT_THAT(parsed, testing::IsOk());
  EXPECT_EQ(parsed->nonce, challenge.nonce);
  EXPECT_EQ(parsed->pcrs, challenge.pcrs);
}

TEST(AttestationChallengeTest, AClientThatAskedToCloseGetsTheChallengeAndTheClose) {
  std::string bytes = FormatResponse(ChallengeResponse(*NewChallenge(Policy()), /*close=*/true));
  EXPECT_THAT(bytes, HasSubstr("\r\nConnection: close\r\n\r\n"));
}

// Without keep_open a response is framed as the cloud always framed it (byte for byte).
TEST(AttestationChallengeTest, OtherResponsesStillClose) {
  HttpResponse r;
  r.status = 200;
  r.body = "{}";
  EXPECT_EQ(FormatResponse(r),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: "
            "close\r\n\r\n{}");
}

struct CloseCase {
  const char* name;
  std::string head;
  bool close;
};

class AsksToCloseTest : public ::testing::TestWithParam<CloseCase> {};

TEST_P(AsksToCloseTest, FollowsTheConnectionOptions) {
  EXPECT_EQ(AsksToClose(GetParam().head), GetParam().close);
}

INSTANTIATE_TEST_SUITE_P(
    Heads, AsksToCloseTest,
    ::testing::Values(CloseCase{"None", "GET /v1/identity HTTP/1.1\r\nHost: a\r\n\r\n", false},
                      CloseCase{"Close", "GET /v1/identity HTTP/1.1\r\nConnection: close\r\n\r\n", true},
                      CloseCase{"InAList", "GET / HTTP/1.1\r\nconnection: keep-alive , Close\r\n\r\n", true},
                      CloseCase{"KeepAlive", "GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", false},
                      CloseCase{"OtherHeader", "GET / HTTP/1.1\r\nX-Connection: close\r\n\r\n", false}),
    [](const auto& test) { return std::string(test.param.name); });

struct HeadCase {
  const char* name;
  std::string head;
  int status;  // 0: accepted
  std::string reason;
};

class EvidenceHeadTest : public ::testing::TestWithParam<HeadCase> {};

TEST_P(EvidenceHeadTest, AnnouncesTheBodyOrIsRefused) {
  auto length = EvidenceBodyLength(GetParam().head);
  if (GetParam().status == 0) {
    ASSERT_TRUE(std::holds_alternative<std::size_t>(length)) << std::get<HttpResponse>(length).reason;
    EXPECT_EQ(std::get<std::size_t>(length), std::stoul(GetParam().reason));
    return;
  }
  ASSERT_TRUE(std::holds_alternative<HttpResponse>(length));
  const HttpResponse& refusal = std::get<HttpResponse>(length);
  EXPECT_EQ(refusal.status, GetParam().status);
  EXPECT_EQ(refusal.reason, GetParam().reason);
}

INSTANTIATE_TEST_SUITE_P(
    Heads, EvidenceHeadTest,
    ::testing::Values(
        HeadCase{"Post", "POST /v1/attestation HTTP/1.1\r\nContent-Length: 1234\r\n\r\n", 0, "1234"},
        HeadCase{"CaseOfTheName", "POST /v1/attestation HTTP/1.1\r\ncontent-length:  7 \r\n\r\n", 0, "7"},
        HeadCase{
            "AtTheLimit",
            fmt::format("POST /v1/attestation HTTP/1.1\r\nContent-Length: {}\r\n\r\n", kMaxEvidenceBytes), 0,
            std::to_string(kMaxEvidenceBytes)},
        HeadCase{
            "OverTheLimit",
            fmt::format("POST /v1/attestation HTTP/1.1\r\nContent-Length: {}\r\n\r\n", kMaxEvidenceBytes + 1),
            413,
            fmt::format("the evidence of \"{}\" is larger than {} bytes", kMaxEvidenceBytes + 1,
                        kMaxEvidenceBytes)},
        HeadCase{"Huge", "POST /v1/attestation HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                 413,
                 fmt::format("the evidence of \"99999999999999999999999\" is larger than {} bytes",
                             kMaxEvidenceBytes)},
        HeadCase{"NoLength", "POST /v1/attestation HTTP/1.1\r\nHost: a\r\n\r\n", 411,
                 "the evidence request has no Content-Length"},
        HeadCase{"NotANumber", "POST /v1/attestation HTTP/1.1\r\nContent-Length: 12a\r\n\r\n", 400,
                 "the evidence request's Content-Length \"12a\" is not one number"},
        HeadCase{"TwoThatDiffer",
                 "POST /v1/attestation HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
                 "the evidence request's Content-Length \"5\" is not one number"},
        HeadCase{"Get", "GET /v1/attestation HTTP/1.1\r\n\r\n", 405,
                 "method \"GET\" is not allowed on /v1/attestation; only POST is"},
        HeadCase{"OtherResource", "POST /v1/identity HTTP/1.1\r\nContent-Length: 2\r\n\r\n", 404,
                 "no resource \"/v1/identity\" after a challenge; only POST /v1/attestation is served"},
        HeadCase{"NotHttp", "hello\r\n\r\n", 400,
                 "the request line \"hello\" is not METHOD TARGET HTTP/1.x"}),
    [](const auto& test) { return std::string(test.param.name); });

TEST(EvidenceHeadTest, A405NamesPost) {
  auto length = EvidenceBodyLength("PUT /v1/attestation HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(std::holds_alternative<HttpResponse>(length));
  EXPECT_THAT(FormatResponse(std::get<HttpResponse>(length)), HasSubstr("\r\nAllow: POST\r\n"));
}

TEST(AttestationVerdictResponseTest, MalformedEvidenceIsRefusedWithTheParsersMessage) {
  AttestPolicy policy = Policy();
  BootCounters counters;
  AttestationContext context{"CW1", Bytes(32, 1), Bytes(32, 2), nullptr, &policy, &counters};
  AttestationVerdict verdict = JudgeEvidence("{\"version\": 1", context);
  EXPECT_FALSE(verdict.attested);
  ASSERT_NE(verdict.findings.first_failure(), nullptr);
  EXPECT_EQ(verdict.findings.first_failure()->id, "evidence-malformed");
  EXPECT_EQ(verdict.findings.first_failure()->evidence, ParseEvidence("{\"version\": 1").error().message());
  EXPECT_THAT(verdict.reason, StartsWith("evidence-malformed: "));
}

TEST(AttestationVerdictResponseTest, TheAnswerCarriesTheVerdictAndTheIdentity) {
  IdentityVerdict identity;
  identity.accepted = true;
  identity.serial = "CW1";
  identity.model = "SRX4300";
  AttestationVerdict refused = RefusedEvidence(Policy(), "evidence-too-large", "the evidence is too large");
  HttpResponse r = AttestationResponse(refused, identity, 413);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.outcome, "refused");
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["verdict"], "refused");
  EXPECT_EQ(body["policy"], "golden");
  EXPECT_EQ(body["reason"], "evidence-too-large: the evidence is too large");
  EXPECT_EQ(body["serial"], "CW1");
  EXPECT_EQ(body["findings"][0]["id"], "evidence-too-large");
  EXPECT_EQ(AttestationResponse(refused, identity).status, 403);

  AttestationVerdict attested;
  attested.attested = true;
  attested.policy = "golden";
  attested.reason = "ok";
  HttpResponse ok = AttestationResponse(attested, identity);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(nlohmann::json::parse(ok.body)["verdict"], "attested");
}

TEST(AttestationVerdictResponseTest, TheLogRecordGetsTheVerdictAndEveryFinding) {
  AttestationVerdict verdict = RefusedEvidence(Policy(), "evidence-missing", "the client closed");
  verdict.findings.Add("reboot", "resetCount 1 -> 2", Severity::kWarning);
  ConnectionRecord record;
  RecordAttestation(verdict, record);
  nlohmann::json line = record.ToJson();
  EXPECT_EQ(line["attestation"], "refused");
  EXPECT_EQ(line["attestation_policy"], "golden");
  ASSERT_EQ(line["attestation_findings"].size(), 2u);
  EXPECT_EQ(line["attestation_findings"][1]["id"], "reboot");
  EXPECT_EQ(line["reason"], "evidence-missing: the client closed");
  EXPECT_FALSE(ConnectionRecord{}.ToJson().contains("attestation")) << "not challenged, not in the line";
}

}  // namespace
}  // namespace idevid
