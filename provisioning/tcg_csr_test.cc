#include "provisioning/tcg_csr.h"

#include <cstdint>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultIs;
using ::testing::StartsWith;

constexpr std::uint32_t kSha256 = 0x000B;
constexpr std::uint32_t kSha384 = 0x000C;
constexpr std::uint32_t kSha512 = 0x000D;

// Offsets in the request (§13.1): the 3-word header, then the content's 16 words.
constexpr std::size_t kStructVerAt = 0;
constexpr std::size_t kContentSzAt = 4;
constexpr std::size_t kSigSzAt = 8;
constexpr std::size_t kContentAt = 12;
constexpr std::size_t kContentStructVerAt = 12;
constexpr std::size_t kHashAlgoIdAt = 16;
constexpr std::size_t kHashSzAt = 20;
constexpr std::size_t kEkCertSzAt = 40;
constexpr std::size_t kAttestPubSzAt = 44;
constexpr std::size_t kPadSzAt = 72;

Bytes Filled(std::size_t size, std::uint8_t first) {
  Bytes bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(first + i);
  return bytes;
}

// A request with every field present and of a different length.
TcgCsrContent FullContent(std::uint32_t hash) {
  return {.hash_algorithm = hash,
          .product_model = "Acme Router 9000",
          .product_serial = "SN-0042",
          .product_ca_data = Filled(3, 0x10),
          .boot_event_log = Filled(40, 0x20),
          .ek_certificate = Filled(900, 0x30),
          .iak_public = Filled(90, 0x40),
          .iak_creation_ticket = Filled(11, 0x50),
          .iak_certify_info = Filled(120, 0x60),
          .iak_certify_signature = Filled(72, 0x70),
          .idevid_public = Filled(88, 0x80),
          .idevid_certify_info = Filled(130, 0x90),
          .idevid_certify_signature = Filled(70, 0xA0)};
}

// A request with only the required fields, each `size` bytes, and `ek_size` bytes of EK certificate.
TcgCsrContent MinimalContent(std::size_t size, std::size_t ek_size) {
  return {.product_model = std::string(size, 'M'),
          .product_serial = std::string(size, 'S'),
          .ek_certificate = Filled(ek_size, 0x30),
          .iak_public = Filled(size, 0x40),
          .idevid_public = Filled(size, 0x80),
          .idevid_certify_info = Filled(size, 0x90),
          .idevid_certify_signature = Filled(size, 0xA0)};
}

Bytes Encode(const TcgCsrContent& content, const Bytes& signature = Filled(8, 0xE0)) {
  auto encoded = EncodeTcgCsrContent(content);
  EXPECT_THAT(encoded, IsOk());
  return EncodeTcgCsr(*encoded, signature);
}

std::uint32_t WordAt(const Bytes& bytes, std::size_t offset) {
  return std::uint32_t{bytes[offset]} << 24 | std::uint32_t{bytes[offset + 1]} << 16 |
         std::uint32_t{bytes[offset + 2]} << 8 | bytes[offset + 3];
}

void SetWordAt(Bytes& bytes, std::size_t offset, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) bytes[offset + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
}

// The encoded request with `word` at `offset`.
Bytes WithWord(const TcgCsrContent& content, std::size_t offset, std::uint32_t word) {
  Bytes bytes = Encode(content);
  SetWordAt(bytes, offset, word);
  return bytes;
}

auto IsSyntaxError(const std::string& start) {
  return ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, StartsWith("TCG-CSR-IDEVID: " + start));
}

class TcgCsrRoundTripTest : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(TcgCsrRoundTripTest, KeepsEveryFieldAndTheSignedBytes) {
  TcgCsrContent content = FullContent(GetParam());
  auto encoded_content = EncodeTcgCsrContent(content);
  ASSERT_THAT(encoded_content, IsOk());
  Bytes signature = Filled(71, 0xE0);
  auto parsed = ParseTcgCsr(EncodeTcgCsr(*encoded_content, signature));
  ASSERT_THAT(parsed, IsOk());
  const TcgCsrContent& got = parsed->content;
  EXPECT_EQ(got.hash_algorithm, GetParam());
  EXPECT_EQ(got.product_model, content.product_model);
  EXPECT_EQ(got.product_serial, content.product_serial);
  EXPECT_EQ(got.product_ca_data, content.product_ca_data);
  EXPECT_EQ(got.boot_event_log, content.boot_event_log);
  EXPECT_EQ(got.ek_certificate, content.ek_certificate);
  EXPECT_EQ(got.iak_public, content.iak_public);
  EXPECT_EQ(got.iak_creation_ticket, content.iak_creation_ticket);
  EXPECT_EQ(got.iak_certify_info, content.iak_certify_info);
  EXPECT_EQ(got.iak_certify_signature, content.iak_certify_signature);
  EXPECT_EQ(got.idevid_public, content.idevid_public);
  EXPECT_EQ(got.idevid_certify_info, content.idevid_certify_info);
  EXPECT_EQ(got.idevid_certify_signature, content.idevid_certify_signature);
  EXPECT_EQ(parsed->signed_bytes, *encoded_content);
  EXPECT_EQ(parsed->signature, signature);
}

INSTANTIATE_TEST_SUITE_P(Hashes, TcgCsrRoundTripTest, ::testing::Values(kSha256, kSha384, kSha512));

TEST(TcgCsrTest, HashSizeIsTheDigestSizeOfTheHash) {
  EXPECT_EQ(WordAt(Encode(FullContent(kSha256)), kHashSzAt), 32u);
  EXPECT_EQ(WordAt(Encode(FullContent(kSha384)), kHashSzAt), 48u);
  EXPECT_EQ(WordAt(Encode(FullContent(kSha512)), kHashSzAt), 64u);
}

TEST(TcgCsrTest, EncodesASmallRequestByteForByte) {
  TcgCsrContent content{.hash_algorithm = kSha256,
                        .product_model = "M1",
                        .product_serial = "S-7",
                        .ek_certificate = {0x30, 0x01},
                        .iak_public = {0xA1},
                        .idevid_public = {0xB1, 0xB2},
                        .idevid_certify_info = {0xC1},
                        .idevid_certify_signature = {0xD1, 0xD2, 0xD3}};
  // §13.1, every integer 4 bytes big-endian. Fields: 2+3+2+1+2+1+3 = 14 bytes; 64 + 14 = 78, so 2
  // bytes of padding make the content 80 bytes.
  const Bytes expected = {
      0x00, 0x00, 0x01, 0x00,  // TCG_CSR_IDEVID.structVer
      0x00, 0x00, 0x00, 0x50,  // contentSz 80
      0x00, 0x00, 0x00, 0x02,  // sigSz 2
      0x00, 0x00, 0x01, 0x00,  // TCG_CSR_IDEVID_CONTENT.structVer
      0x00, 0x00, 0x00, 0x0B,  // hashAlgoId TPM_ALG_SHA256
      0x00, 0x00, 0x00, 0x20,  // hashSz 32
      0x00, 0x00, 0x00, 0x02,  // prodModelSz
      0x00, 0x00, 0x00, 0x03,  // prodSerialSz
      0x00, 0x00, 0x00, 0x00,  // prodCaDataSz
      0x00, 0x00, 0x00, 0x00,  // bootEvntLogSz
      0x00, 0x00, 0x00, 0x02,  // ekCertSz
      0x00, 0x00, 0x00, 0x01,  // attestPubSz
      0x00, 0x00, 0x00, 0x00,  // atCreateTktSz
      0x00, 0x00, 0x00, 0x00,  // atCertifyInfoSz
      0x00, 0x00, 0x00, 0x00,  // atCertifyInfoSignatureSz
      0x00, 0x00, 0x00, 0x02,  // signingPubSz
      0x00, 0x00, 0x00, 0x01,  // sgnCertifyInfoSz
      0x00, 0x00, 0x00, 0x03,  // sgnCertifyInfoSignatureSz
      0x00, 0x00, 0x00, 0x02,  // padSz
      'M',  '1',               // prodModel
      'S',  '-',  '7',         // prodSerial
      0x30, 0x01,              // ekCert
      0xA1,                    // attestPub
      0xB1, 0xB2,              // signingPub
      0xC1,                    // sgnCertifyInfo
      0xD1, 0xD2, 0xD3,        // sgnCertifyInfoSignature
      0x00, 0x00,              // padding
      0xEE, 0xFF,              // signature
  };
  EXPECT_EQ(Encode(content, {0xEE, 0xFF}), expected);
  auto parsed = ParseTcgCsr(expected);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->content.product_serial, "S-7");
  EXPECT_EQ(parsed->signed_bytes, Bytes(expected.begin() + kContentAt, expected.end() - 2));
}

TEST(TcgCsrTest, ContentWhoseLengthIsAMultipleOf16HasNoPadding) {
  // 64 + 6 * 1 + 10 = 80.
  Bytes bytes = Encode(MinimalContent(1, 10));
  EXPECT_EQ(WordAt(bytes, kContentSzAt), 80u);
  EXPECT_EQ(WordAt(bytes, kPadSzAt), 0u);
  EXPECT_THAT(ParseTcgCsr(bytes), IsOk());
}

TEST(TcgCsrTest, ContentOneByteOverAMultipleOf16Has15BytesOfPadding) {
  // 64 + 6 * 1 + 11 = 81, padded to 96.
  Bytes bytes = Encode(MinimalContent(1, 11));
  EXPECT_EQ(WordAt(bytes, kContentSzAt), 96u);
  EXPECT_EQ(WordAt(bytes, kPadSzAt), 15u);
  EXPECT_EQ(Bytes(bytes.begin() + kContentAt + 81, bytes.begin() + kContentAt + 96), Bytes(15, 0));
  auto parsed = ParseTcgCsr(bytes);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->content.ek_certificate.size(), 11u);
}

TEST(TcgCsrTest, OptionalFieldsMayBeEmpty) {
  auto parsed = ParseTcgCsr(Encode(MinimalContent(5, 20)));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_TRUE(parsed->content.product_ca_data.empty());
  EXPECT_TRUE(parsed->content.boot_event_log.empty());
  EXPECT_TRUE(parsed->content.iak_creation_ticket.empty());
  EXPECT_TRUE(parsed->content.iak_certify_info.empty());
  EXPECT_TRUE(parsed->content.iak_certify_signature.empty());
}

TEST(TcgCsrTest, EncoderRefusesAnUnknownHash) {
  EXPECT_THAT(EncodeTcgCsrContent(FullContent(0x0004)),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                       StartsWith("TCG-CSR-IDEVID: hash algorithm 0x0004 is not SHA-256")));
}

TEST(TcgCsrTest, EncoderRefusesAFieldOverTheLimit) {
  TcgCsrContent content = FullContent(kSha256);
  content.boot_event_log = Bytes(kTcgCsrMaxBytes + 1, 0);
  EXPECT_THAT(EncodeTcgCsrContent(content),
              ResultIs(ErrorDomain::kUsage, UsageCode::kInvalidArgument,
                       StartsWith("TCG-CSR-IDEVID: bootEvntLog of 65537 bytes exceeds the limit")));
}

TEST(TcgCsrTest, EveryPrefixOfARequestIsRefused) {
  Bytes bytes = Encode(FullContent(kSha256));
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    EXPECT_THAT(ParseTcgCsr(std::span(bytes).first(length)), IsSyntaxError("")) << "length " << length;
  }
  EXPECT_THAT(ParseTcgCsr(std::span(bytes).first(0)),
              IsSyntaxError("structVer at offset 0 runs past the request (0 bytes left)"));
  EXPECT_THAT(ParseTcgCsr(std::span(bytes).first(6)),
              IsSyntaxError("contentSz at offset 4 runs past the request (2 bytes left)"));
  EXPECT_THAT(ParseTcgCsr(std::span(bytes).first(12)),
              IsSyntaxError("contentSz 1616 at offset 4 runs past the request (0 bytes left)"));
  EXPECT_THAT(ParseTcgCsr(std::span(bytes).first(bytes.size() - 1)),
              IsSyntaxError("sigSz 8 at offset 8 runs past the request (7 bytes left)"));
}

TEST(TcgCsrTest, ContentCutShortWithConsistentOuterLengthsIsRefused) {
  Bytes bytes = Encode(FullContent(kSha256));
  Bytes signature(bytes.end() - 8, bytes.end());
  // The content's header cut after 8 of its 16 words.
  Bytes header_cut = EncodeTcgCsr(std::span(bytes).subspan(kContentAt, 32), signature);
  EXPECT_THAT(ParseTcgCsr(header_cut),
              IsSyntaxError("attestPubSz at offset 44 runs past the content (0 bytes left)"));
  // The whole header and 80 bytes of fields, 16 + 7 + 3 + 40 of them before ekCert.
  Bytes fields_cut = EncodeTcgCsr(std::span(bytes).subspan(kContentAt, 144), signature);
  EXPECT_THAT(ParseTcgCsr(fields_cut),
              IsSyntaxError("ekCertSz 900 at offset 40 runs past the content (14 bytes left)"));
}

TEST(TcgCsrTest, OneTrailingByteIsRefused) {
  Bytes bytes = Encode(FullContent(kSha256));
  std::size_t size = bytes.size();
  bytes.push_back(0);
  EXPECT_THAT(ParseTcgCsr(bytes),
              IsSyntaxError(fmt::format("1 byte(s) left over after the signature, at offset {}", size)));
}

TEST(TcgCsrTest, RequestOverTheLimitIsRefusedBeforeItIsRead) {
  Bytes bytes = Encode(FullContent(kSha256));
  bytes.resize(kTcgCsrMaxBytes + 1);
  EXPECT_THAT(ParseTcgCsr(bytes),
              ResultIs(ErrorDomain::kConfig, ConfigCode::kLimit,
                       StartsWith("TCG-CSR-IDEVID: 65537 bytes exceed the limit of 65536")));
  bytes.resize(kTcgCsrMaxBytes);  // at the limit: read, and refused for its leftover bytes
  EXPECT_THAT(ParseTcgCsr(bytes),
              IsSyntaxError("63900 byte(s) left over after the signature, at offset 1636"));
}

TEST(TcgCsrTest, LengthOfAllOnesIsRefused) {
  TcgCsrContent content = FullContent(kSha256);
  EXPECT_THAT(ParseTcgCsr(WithWord(content, kSigSzAt, 0xFFFFFFFF)),
              IsSyntaxError("sigSz 4294967295 at offset 8 runs past the request (8 bytes left)"));
  EXPECT_THAT(ParseTcgCsr(WithWord(content, kContentSzAt, 0xFFFFFFFF)),
              IsSyntaxError("contentSz 4294967295 at offset 4 runs past the request"));
  EXPECT_THAT(ParseTcgCsr(WithWord(content, kEkCertSzAt, 0xFFFFFFFF)),
              IsSyntaxError("ekCertSz 4294967295 at offset 40 runs past the content"));
}

TEST(TcgCsrTest, LengthsWhose32BitSumWrapsAreRefused) {
  Bytes bytes = Encode(FullContent(kSha256));
  // contentSz + sigSz + 12 == the request's size in 32-bit arithmetic.
  std::uint32_t content_size = 0xFFFFFFF0;
  std::uint32_t signature_size = static_cast<std::uint32_t>(bytes.size() - 12 - content_size);
  ASSERT_EQ(static_cast<std::uint32_t>(content_size + signature_size + 12), bytes.size());
  SetWordAt(bytes, kContentSzAt, content_size);
  SetWordAt(bytes, kSigSzAt, signature_size);
  EXPECT_THAT(ParseTcgCsr(bytes), IsSyntaxError("contentSz 4294967280 at offset 4 runs past the request"));

  // Two field lengths whose 32-bit sum is that of the real ones.
  Bytes fields = Encode(FullContent(kSha256));
  SetWordAt(fields, kEkCertSzAt, WordAt(fields, kEkCertSzAt) + 0x80000000);
  SetWordAt(fields, kAttestPubSzAt, WordAt(fields, kAttestPubSzAt) + 0x80000000);
  EXPECT_THAT(ParseTcgCsr(fields), IsSyntaxError("ekCertSz 2147484548 at offset 40 runs past the content"));
}

TEST(TcgCsrTest, WrongVersionsAreRefused) {
  TcgCsrContent content = FullContent(kSha256);
  EXPECT_THAT(ParseTcgCsr(WithWord(content, kStructVerAt, 0x00000200)),
              IsSyntaxError("structVer 0x00000200 at offset 0 is not 0x00000100"));
  EXPECT_THAT(ParseTcgCsr(WithWord(content, kContentStructVerAt, 0x00010000)),
              IsSyntaxError("structVer 0x00010000 at offset 12 is not 0x00000100"));
}

TEST(TcgCsrTest, UnknownHashIsRefused) {
  TcgCsrContent content = FullContent(kSha256);
  EXPECT_THAT(ParseTcgCsr(WithWord(content, kHashAlgoIdAt, 0x0004)),
              IsSyntaxError("hashAlgoId 0x0004 at offset 16 is not SHA-256, SHA-384 or SHA-512"));
  // A TPM_ALG_ID is 16 bits: SHA-256 in the low half does not make it SHA-256.
  EXPECT_THAT(ParseTcgCsr(WithWord(content, kHashAlgoIdAt, 0x0001000B)),
              IsSyntaxError("hashAlgoId 0x1000b at offset 16 is not SHA-256"));
}

TEST(TcgCsrTest, HashSizeThatIsNotTheDigestSizeIsRefused) {
  EXPECT_THAT(ParseTcgCsr(WithWord(FullContent(kSha256), kHashSzAt, 48)),
              IsSyntaxError("hashSz 48 at offset 20 is not 32, the digest size of hashAlgoId 0x000b"));
  EXPECT_THAT(ParseTcgCsr(WithWord(FullContent(kSha384), kHashSzAt, 32)),
              IsSyntaxError("hashSz 32 at offset 20 is not 48, the digest size of hashAlgoId 0x000c"));
}

TEST(TcgCsrTest, NonZeroPaddingIsRefused) {
  Bytes bytes = Encode(MinimalContent(1, 11), {0xEE});  // 15 bytes of padding, then 1 of signature
  std::size_t last_pad = bytes.size() - 2;
  bytes[last_pad] = 0x01;
  EXPECT_THAT(ParseTcgCsr(bytes),
              IsSyntaxError(fmt::format("padding byte 0x01 at offset {} is not zero", last_pad)));
}

TEST(TcgCsrTest, PadSizeOf16OrMoreIsRefused) {
  EXPECT_THAT(ParseTcgCsr(WithWord(MinimalContent(1, 11), kPadSzAt, 16)),
              IsSyntaxError("padSz 16 at offset 72 is not below 16"));
  EXPECT_THAT(ParseTcgCsr(WithWord(MinimalContent(1, 10), kPadSzAt, 0xFFFFFFFF)),
              IsSyntaxError("padSz 4294967295 at offset 72 is not below 16"));
}

TEST(TcgCsrTest, PadSizeThatDoesNotFitTheContentIsRefused) {
  TcgCsrContent content = MinimalContent(1, 11);  // 15 bytes of padding
  EXPECT_THAT(ParseTcgCsr(WithWord(content, kPadSzAt, 14)),
              IsSyntaxError("1 byte(s) left over after the padding, at offset 107"));
  EXPECT_THAT(ParseTcgCsr(WithWord(MinimalContent(1, 10), kPadSzAt, 1)),
              IsSyntaxError("padSz 1 at offset 72 runs past the content (0 bytes left)"));
}

TEST(TcgCsrTest, ContentWhoseLengthIsNotAMultipleOf16IsRefused) {
  // 15 bytes of padding declared as 14 and one pad byte dropped: consistent, but 95 bytes long.
  Bytes bytes = Encode(MinimalContent(1, 11), {0xEE});
  SetWordAt(bytes, kPadSzAt, 14);
  bytes.erase(bytes.end() - 2);
  SetWordAt(bytes, kContentSzAt, 95);
  EXPECT_THAT(ParseTcgCsr(bytes), IsSyntaxError("contentSz 95 at offset 4 is not a multiple of 16"));
}

TEST(TcgCsrTest, EmptySignatureIsRefused) {
  EXPECT_THAT(ParseTcgCsr(Encode(FullContent(kSha256), {})),
              IsSyntaxError("sigSz at offset 8 is 0, but the signature is required"));
}

struct RequiredField {
  std::string name;
  std::size_t size_offset;
  void (*clear)(TcgCsrContent&);
};

class TcgCsrRequiredFieldTest : public ::testing::TestWithParam<RequiredField> {};

TEST_P(TcgCsrRequiredFieldTest, EmptyIsRefused) {
  TcgCsrContent content = FullContent(kSha256);
  GetParam().clear(content);
  EXPECT_THAT(ParseTcgCsr(Encode(content)),
              IsSyntaxError(fmt::format("{}Sz at offset {} is 0, but the {} is required", GetParam().name,
                                        GetParam().size_offset, GetParam().name)));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, TcgCsrRequiredFieldTest,
    ::testing::Values(RequiredField{"prodModel", 24, [](TcgCsrContent& c) { c.product_model.clear(); }},
                      RequiredField{"prodSerial", 28, [](TcgCsrContent& c) { c.product_serial.clear(); }},
                      RequiredField{"ekCert", 40, [](TcgCsrContent& c) { c.ek_certificate.clear(); }},
                      RequiredField{"attestPub", 44, [](TcgCsrContent& c) { c.iak_public.clear(); }},
                      RequiredField{"signingPub", 60, [](TcgCsrContent& c) { c.idevid_public.clear(); }},
                      RequiredField{"sgnCertifyInfo", 64,
                                    [](TcgCsrContent& c) { c.idevid_certify_info.clear(); }},
                      RequiredField{"sgnCertifyInfoSignature", 68,
                                    [](TcgCsrContent& c) { c.idevid_certify_signature.clear(); }}),
    [](const ::testing::TestParamInfo<RequiredField>& param) { return param.param.name; });

}  // namespace
}  // namespace idevid
