// The crypto-agile event log: encode and parse, hostile logs, and the replay checked against
// values computed independently (python3 hashlib).
#include "core/event_log.h"

#include <string>
#include <vector>

#include <openssl/evp.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/byte_text.h"
#include "core/testing/result_matchers.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Offsets in an encoded log: the Spec ID record (32-byte header, 33 bytes of TCG_EfiSpecIDEvent),
// then the first TCG_PCR_EVENT2.
constexpr std::size_t kSpecIdEventSizeOffset = 28;
constexpr std::size_t kNumberOfAlgorithmsOffset = 56;
constexpr std::size_t kFirstEventOffset = 65;
constexpr std::size_t kDigestCountOffset = kFirstEventOffset + 8;
constexpr std::size_t kHashAlgOffset = kFirstEventOffset + 12;
constexpr std::size_t kEventSizeOffset = kFirstEventOffset + 12 + 2 + 32;

// Known answers written as hex (DecodeHex is strict: a typo fails the test).
Bytes FromHex(std::string_view hex) {
  auto bytes = DecodeHex(hex);
  EXPECT_TRUE(bytes.has_value()) << hex;
  return bytes.value_or(Bytes{});
}

Bytes Sha256(std::string_view text) {
  Bytes digest(32);
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

LogEvent Event(std::uint32_t pcr, std::uint32_t type, std::string_view measured, std::string_view data) {
  return LogEvent{pcr, type, {{kAlgSha256, Sha256(measured)}}, Bytes(data.begin(), data.end())};
}

std::vector<LogEvent> SampleEvents() {
  return {Event(0, kEvSCrtmVersion, "v1", "v1"),
          Event(0, kEvSeparator, std::string(4, '\0'), std::string(4, '\0')),
          Event(4, kEvIpl, "kernel", "vmlinuz"), LogEvent{0, kEvNoAction, {{kAlgSha256, Bytes(32, 0)}}, {}}};
}

void PutU32At(Bytes& log, std::size_t offset, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) log[offset + i] = static_cast<std::uint8_t>(value >> (8 * i));
}

TEST(EventLog, RoundTripKeepsEveryEvent) {
  std::vector<LogEvent> events = SampleEvents();
  auto parsed = ParseEventLog(EncodeEventLog(events));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->algorithms, std::vector<std::uint16_t>{kAlgSha256});
  ASSERT_EQ(parsed->events.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(parsed->events[i].pcr, events[i].pcr);
    EXPECT_EQ(parsed->events[i].type, events[i].type);
    EXPECT_EQ(parsed->events[i].digests, events[i].digests);
    EXPECT_EQ(parsed->events[i].data, events[i].data);
  }
}

TEST(EventLog, EncodesTheSpecIdEventFirst) {
  Bytes log = EncodeEventLog({});
  ASSERT_EQ(log.size(), kFirstEventOffset);
  EXPECT_EQ(Bytes(log.begin(), log.begin() + 8), FromHex("0000000003000000"));
  EXPECT_EQ(std::string(log.begin() + 32, log.begin() + 47), "Spec ID Event03");
  auto parsed = ParseEventLog(log);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_TRUE(parsed->events.empty());
}

TEST(EventLog, EveryPrefixInsideARecordIsRefused) {
  Bytes log = EncodeEventLog(SampleEvents());
  std::vector<std::size_t> boundaries = {kFirstEventOffset};
  for (const LogEvent& event : SampleEvents())
    boundaries.push_back(boundaries.back() + 50 + event.data.size());
  ASSERT_EQ(boundaries.back(), log.size());
  for (std::size_t size = 0; size < log.size(); ++size) {
    auto parsed = ParseEventLog(std::span(log).first(size));
    auto boundary = std::find(boundaries.begin(), boundaries.end(), size);
    if (boundary == boundaries.end()) {
      EXPECT_THAT(parsed, ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, StartsWith("event "))) << size;
    } else {
      ASSERT_THAT(parsed, IsOk()) << size;
      EXPECT_EQ(parsed->events.size(), static_cast<std::size_t>(boundary - boundaries.begin())) << size;
    }
  }
}

TEST(EventLog, TruncationNamesTheEventAndItsOffset) {
  Bytes log = EncodeEventLog(SampleEvents());
  log.pop_back();
  std::size_t last = log.size() + 1 - 50 - SampleEvents().back().data.size();
  EXPECT_THAT(ParseEventLog(log),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                       StartsWith(fmt::format("event 4 at byte {}: eventSize needs", last))));
  EXPECT_THAT(ParseEventLog({}), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                                          StartsWith("event 0 at byte 0: the log is empty")));
}

TEST(EventLog, LengthsThatWrapAreRefused) {
  Bytes log = EncodeEventLog(SampleEvents());
  Bytes event_size = log;
  PutU32At(event_size, kEventSizeOffset, 0xFFFFFFFF);
  EXPECT_THAT(ParseEventLog(event_size),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                       StartsWith(fmt::format("event 1 at byte {}: the event data needs 4294967295 bytes",
                                              kFirstEventOffset))));
  Bytes spec_size = log;
  PutU32At(spec_size, kSpecIdEventSizeOffset, 0xFFFFFFF0);
  EXPECT_THAT(ParseEventLog(spec_size),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                       StartsWith("event 0 at byte 0: the Spec ID event needs 4294967280")));
  Bytes algorithms = log;
  PutU32At(algorithms, kNumberOfAlgorithmsOffset, 0x40000001);
  EXPECT_THAT(ParseEventLog(algorithms), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                                                  HasSubstr("1073741825 algorithms do not fit")));
  Bytes digests = log;
  PutU32At(digests, kDigestCountOffset, 0xFFFFFFFF);
  EXPECT_THAT(ParseEventLog(digests),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                       HasSubstr("digest count 4294967295, but the Spec ID event declares 1")));
}

TEST(EventLog, UnknownDigestAlgorithmIsRefused) {
  Bytes log = EncodeEventLog(SampleEvents());
  log[kHashAlgOffset] = 0x04;  // TPM_ALG_SHA1, not declared by the Spec ID event
  log[kHashAlgOffset + 1] = 0x00;
  EXPECT_THAT(
      ParseEventLog(log),
      ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
               StartsWith(fmt::format("event 1 at byte {}: a digest of algorithm 0x0004, which the Spec ID",
                                      kFirstEventOffset))));
}

TEST(EventLog, DigestCountMismatchIsRefused) {
  Bytes log = EncodeEventLog(SampleEvents());
  PutU32At(log, kDigestCountOffset, 2);
  EXPECT_THAT(ParseEventLog(log),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                       HasSubstr("digest count 2, but the Spec ID event declares 1 bank(s)")));
  PutU32At(log, kDigestCountOffset, 0);
  EXPECT_THAT(ParseEventLog(log),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("digest count 0")));
}

TEST(EventLog, ALogWithoutTheSpecIdEventIsRefused) {
  Bytes log = EncodeEventLog(SampleEvents());
  Bytes signature = log;
  signature[32 + 14] = '2';  // "Spec ID Event02": the SHA-1 format
  EXPECT_THAT(ParseEventLog(signature), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                                                 HasSubstr("signature is not \"Spec ID Event03\"")));
  Bytes type = log;
  type[4] = 0x08;
  EXPECT_THAT(ParseEventLog(type), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                                            HasSubstr("the first event is EV_S_CRTM_VERSION in PCR 0")));
  Bytes digest = log;
  digest[9] = 1;
  EXPECT_THAT(ParseEventLog(digest),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("digest is not 20 zero bytes")));
  Bytes bank_size = log;
  bank_size[62] = 20;  // SHA-256 declared with 20-byte digests
  EXPECT_THAT(ParseEventLog(bank_size),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                       HasSubstr("algorithm 0x000b declared with a digest of 20 bytes")));
}

TEST(EventLog, OverTheSizeLimitIsRefused) {
  Bytes log = EncodeEventLog({Event(8, kEvIpl, "x", std::string(kMaxEventLogBytes, 'a'))});
  EXPECT_THAT(ParseEventLog(log),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kLimit, HasSubstr("over the limit")));
  log.resize(kMaxEventLogBytes);
  EXPECT_THAT(ParseEventLog(log),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("event data needs")));
}

// Expected values from python3: h = sha256; p0 = h(h(0^32 || h(b"v1")) || h(b"\0" * 4));
// p4 = h(0^32 || h(b"kernel")).
TEST(EventLog, ReplayMatchesValuesComputedIndependently) {
  auto parsed = ParseEventLog(EncodeEventLog(SampleEvents()));
  ASSERT_THAT(parsed, IsOk());
  auto pcrs = ReplayEventLog(*parsed);
  ASSERT_THAT(pcrs, IsOk());
  ASSERT_EQ(pcrs->size(), 2u);
  EXPECT_EQ(pcrs->at(0), FromHex("16a075f85d69024e29a0c2865928bfadf14fb6ebd4e6955d74e9aec6ee0baec9"));
  EXPECT_EQ(pcrs->at(4), FromHex("457040d352c9be3893642229b99cb41ab79c24f00c00bfc2dbfbac0f8cf207fe"));
}

// PFP §10.4.5.3; expected from python3: h(0^31 || 0x03 || 0x11^32).
TEST(EventLog, AStartupLocalityEventSetsPcr0sStartingValue) {
  std::string signature("StartupLocality\0\x03", 17);
  std::vector<LogEvent> events{
      {0, kEvNoAction, {{kAlgSha256, Bytes(32, 0)}}, Bytes(signature.begin(), signature.end())},
      {0, kEvSCrtmVersion, {{kAlgSha256, Bytes(32, 0x11)}}, Bytes{0}}};
  auto parsed = ParseEventLog(EncodeEventLog(events));
  ASSERT_THAT(parsed, IsOk());
  auto pcrs = ReplayEventLog(*parsed);
  ASSERT_THAT(pcrs, IsOk());
  EXPECT_EQ(pcrs->at(0), FromHex("b8e8cc97156c2b3142cb8e876236fd4729748153743b480af0949565f227d2eb"));
}

TEST(EventLog, ReplayRefusesEventsItCannotExtend) {
  EventLog log{{kAlgSha256}, {Event(24, kEvIpl, "x", "")}};
  EXPECT_THAT(ReplayEventLog(log), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                                            StartsWith("event 1 (EV_IPL) names PCR 24")));
  log.events = {Event(1, kEvIpl, "x", ""), LogEvent{2, kEvSeparator, {}, {}}};
  EXPECT_THAT(ReplayEventLog(log),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                       StartsWith("event 2 (EV_SEPARATOR, PCR 2) has no SHA-256 digest")));
}

TEST(EventLog, EventTypeNamesRoundTrip) {
  EXPECT_EQ(EventTypeName(kEvEfiBootServicesApplication), "EV_EFI_BOOT_SERVICES_APPLICATION");
  EXPECT_EQ(EventTypeName(kEvSeparator), "EV_SEPARATOR");
  EXPECT_EQ(EventTypeName(0x1234), "0x00001234");
  EXPECT_THAT(EventTypeFromName("EV_IPL"), ::testing::Optional(kEvIpl));
  EXPECT_THAT(EventTypeFromName("0x00001234"), ::testing::Optional(0x1234u));
  EXPECT_THAT(EventTypeFromName(EventTypeName(kEvEfiGptEvent)), ::testing::Optional(kEvEfiGptEvent));
  EXPECT_THAT(EventTypeFromName("EV_KERNEL\n"),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax,
                       StartsWith("\"EV_KERNEL\\n\" is not an event type")));
  EXPECT_THAT(EventTypeFromName("0x1FFFFFFFF"),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("not")));
}

}  // namespace
}  // namespace idevid
