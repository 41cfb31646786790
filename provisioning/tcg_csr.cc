#include "provisioning/tcg_csr.h"

#include <endian.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "core/tpm_sign.h"

namespace idevid {
namespace {

using ByteSpan = std::span<const std::uint8_t>;

constexpr std::size_t kWordBytes = 4;
constexpr std::size_t kOuterHeaderBytes = 3 * kWordBytes;     // structVer, contentSz, sigSz
constexpr std::size_t kContentHeaderBytes = 16 * kWordBytes;  // structVer .. padSz
constexpr std::size_t kContentAlignment = 16;

// A variable-length field of TCG_CSR_IDEVID_CONTENT: its name in §13.1, the name of its length.
struct FieldSpec {
  std::string_view name;
  std::string_view size_name;
  bool required;
};

// §13.1 TCG_CSR_IDEVID_CONTENT: the fields in the order of their lengths and of their bytes.
constexpr std::array<FieldSpec, 12> kFields{{
    {"prodModel", "prodModelSz", true},
    {"prodSerial", "prodSerialSz", true},
    {"prodCaData", "prodCaDataSz", false},
    {"bootEvntLog", "bootEvntLogSz", false},
    {"ekCert", "ekCertSz", true},
    {"attestPub", "attestPubSz", true},
    {"atCreateTkt", "atCreateTktSz", false},
    {"atCertifyInfo", "atCertifyInfoSz", false},
    {"atCertifyInfoSignature", "atCertifyInfoSignatureSz", false},
    {"signingPub", "signingPubSz", true},
    {"sgnCertifyInfo", "sgnCertifyInfoSz", true},
    {"sgnCertifyInfoSignature", "sgnCertifyInfoSignatureSz", true},
}};

using FieldBytes = std::array<ByteSpan, kFields.size()>;

ByteSpan AsBytes(const std::string& text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

std::string AsString(ByteSpan bytes) { return {bytes.begin(), bytes.end()}; }

// The fields of `c` in the order of kFields.
FieldBytes FieldsOf(const TcgCsrContent& c) {
  return {AsBytes(c.product_model), AsBytes(c.product_serial), c.product_ca_data,
          c.boot_event_log,         c.ek_certificate,          c.iak_public,
          c.iak_creation_ticket,    c.iak_certify_info,        c.iak_certify_signature,
          c.idevid_public,          c.idevid_certify_info,     c.idevid_certify_signature};
}

// The content made of `fields` in the order of kFields.
TcgCsrContent ContentFrom(std::uint32_t hash_algorithm, const FieldBytes& f) {
  auto bytes = [](ByteSpan field) { return Bytes(field.begin(), field.end()); };
  return {.hash_algorithm = hash_algorithm,
          .product_model = AsString(f[0]),
          .product_serial = AsString(f[1]),
          .product_ca_data = bytes(f[2]),
          .boot_event_log = bytes(f[3]),
          .ek_certificate = bytes(f[4]),
          .iak_public = bytes(f[5]),
          .iak_creation_ticket = bytes(f[6]),
          .iak_certify_info = bytes(f[7]),
          .iak_certify_signature = bytes(f[8]),
          .idevid_public = bytes(f[9]),
          .idevid_certify_info = bytes(f[10]),
          .idevid_certify_signature = bytes(f[11])};
}

// The digest size of a TPM_ALG_ID that names SHA-256, SHA-384 or SHA-512; 0 for any other value.
std::size_t HashSize(std::uint32_t hash_algorithm) {
  if (hash_algorithm > 0xFFFF) return 0;  // a TPM_ALG_ID is 16 bits (TPM 2.0 Part 2 §6.3)
  return DigestSize(static_cast<TPMI_ALG_HASH>(hash_algorithm));
}

// The number of zero bytes that make `length` a multiple of 16 (§13.1 padSz).
std::size_t PadSize(std::size_t length) {
  return (kContentAlignment - length % kContentAlignment) % kContentAlignment;
}

void PutWord(Bytes& out, std::uint32_t value) {
  std::uint32_t big_endian = htobe32(value);
  const auto* p = reinterpret_cast<const std::uint8_t*>(&big_endian);
  out.insert(out.end(), p, p + kWordBytes);
}

template <typename... Args>
tl::unexpected<Error> SyntaxError(fmt::format_string<Args...> format, Args&&... args) {
  return ConfigError(ConfigCode::kSyntax,
                     "TCG-CSR-IDEVID: " + fmt::format(format, std::forward<Args>(args)...));
}

// A 4-byte big-endian integer of the request: its name in §13.1, its value and its offset.
struct Word {
  std::string_view name;
  std::uint32_t value;
  std::size_t offset;
};

// Reads a container (the request or its content) front to back, never past its end. Offsets in
// errors count from the start of the request, so that they point into a dump of what was received.
class Reader {
 public:
  Reader(ByteSpan bytes, std::size_t base, std::string_view container)
      : bytes_(bytes), base_(base), container_(container) {}

  std::size_t offset() const { return base_ + position_; }
  std::size_t left() const { return bytes_.size() - position_; }

  // The next integer, called `name`.
  Result<Word> ReadWord(std::string_view name) {
    if (left() < kWordBytes)
      return SyntaxError("{} at offset {} runs past the {} ({} bytes left)", name, offset(), container_,
                         left());
    std::uint32_t big_endian = 0;
    std::memcpy(&big_endian, bytes_.data() + position_, kWordBytes);
    Word word{name, be32toh(big_endian), offset()};
    position_ += kWordBytes;
    return word;
  }

  // The next `size.value` bytes: the field whose length `size` gave.
  Result<ByteSpan> Take(const Word& size) {
    if (size.value > left()) {
      return SyntaxError("{} {} at offset {} runs past the {} ({} bytes left)", size.name, size.value,
                         size.offset, container_, left());
    }
    ByteSpan field = bytes_.subspan(position_, size.value);
    position_ += size.value;
    return field;
  }

  // Succeeds when every byte was read; `last` names what should have been the end.
  Result<void> ExpectEnd(std::string_view last) const {
    if (left() != 0)
      return SyntaxError("{} byte(s) left over after the {}, at offset {}", left(), last, offset());
    return {};
  }

 private:
  ByteSpan bytes_;
  std::size_t base_;
  std::string_view container_;
  std::size_t position_ = 0;
};

// §13.1: both structures carry structVer 1.0.
Result<void> CheckVersion(const Word& version) {
  if (version.value != kTcgCsrVersion) {
    return SyntaxError("{} {:#010x} at offset {} is not {:#010x}", version.name, version.value,
                       version.offset, kTcgCsrVersion);
  }
  return {};
}

// §13.1: hashAlgoId names the hash of the signature and hashSz is its digest size.
Result<void> CheckHash(const Word& hash, const Word& hash_size) {
  std::size_t expected = HashSize(hash.value);
  if (expected == 0) {
    return SyntaxError("hashAlgoId {:#06x} at offset {} is not SHA-256, SHA-384 or SHA-512", hash.value,
                       hash.offset);
  }
  if (hash_size.value != expected) {
    return SyntaxError("hashSz {} at offset {} is not {}, the digest size of hashAlgoId {:#06x}",
                       hash_size.value, hash_size.offset, expected, hash.value);
  }
  return {};
}

// A field the authority cannot do without must not be empty.
Result<void> CheckPresent(const Word& size, std::string_view field) {
  if (size.value == 0)
    return SyntaxError("{} at offset {} is 0, but the {} is required", size.name, size.offset, field);
  return {};
}

// The lengths of kFields, each checked for presence when the field is required.
Result<std::array<Word, kFields.size()>> ReadFieldSizes(Reader& reader) {
  std::array<Word, kFields.size()> sizes{};
  for (std::size_t i = 0; i < kFields.size(); ++i) {
    IDEVID_ASSIGN_OR_RETURN(sizes[i], reader.ReadWord(kFields[i].size_name));
    if (kFields[i].required) IDEVID_TRY(CheckPresent(sizes[i], kFields[i].name));
  }
  return sizes;
}

// §13.1: padSz is 0-15.
Result<void> CheckPadSize(const Word& pad_size) {
  if (pad_size.value >= kContentAlignment) {
    return SyntaxError("padSz {} at offset {} is not below {}", pad_size.value, pad_size.offset,
                       kContentAlignment);
  }
  return {};
}

// §13.1: the padding is zeros; `offset` is where it starts.
Result<void> CheckPadding(ByteSpan pad, std::size_t offset) {
  auto nonzero = std::find_if(pad.begin(), pad.end(), [](std::uint8_t b) { return b != 0; });
  if (nonzero != pad.end()) {
    return SyntaxError("padding byte {:#04x} at offset {} is not zero", *nonzero,
                       offset + static_cast<std::size_t>(nonzero - pad.begin()));
  }
  return {};
}

// §13.1: the content is a multiple of 16 bytes long.
Result<void> CheckContentLength(const Word& content_size) {
  if (content_size.value % kContentAlignment != 0) {
    return SyntaxError("contentSz {} at offset {} is not a multiple of {}", content_size.value,
                       content_size.offset, kContentAlignment);
  }
  return {};
}

// The bytes of kFields, each checked against what is left of the content.
Result<FieldBytes> TakeFields(Reader& reader, const std::array<Word, kFields.size()>& sizes) {
  FieldBytes fields;
  for (std::size_t i = 0; i < kFields.size(); ++i) {
    IDEVID_ASSIGN_OR_RETURN(fields[i], reader.Take(sizes[i]));
  }
  return fields;
}

// TCG_CSR_IDEVID_CONTENT, which starts at kOuterHeaderBytes in the request.
Result<TcgCsrContent> ParseContent(ByteSpan content) {
  Reader reader(content, kOuterHeaderBytes, "content");
  IDEVID_ASSIGN_OR_RETURN(Word version, reader.ReadWord("structVer"));
  IDEVID_TRY(CheckVersion(version));
  IDEVID_ASSIGN_OR_RETURN(Word hash, reader.ReadWord("hashAlgoId"));
  IDEVID_ASSIGN_OR_RETURN(Word hash_size, reader.ReadWord("hashSz"));
  IDEVID_TRY(CheckHash(hash, hash_size));
  IDEVID_ASSIGN_OR_RETURN(auto sizes, ReadFieldSizes(reader));
  IDEVID_ASSIGN_OR_RETURN(Word pad_size, reader.ReadWord("padSz"));
  IDEVID_TRY(CheckPadSize(pad_size));
  IDEVID_ASSIGN_OR_RETURN(FieldBytes fields, TakeFields(reader, sizes));
  std::size_t pad_offset = reader.offset();
  IDEVID_ASSIGN_OR_RETURN(ByteSpan pad, reader.Take(pad_size));
  IDEVID_TRY(CheckPadding(pad, pad_offset));
  IDEVID_TRY(reader.ExpectEnd("padding"));
  return ContentFrom(hash.value, fields);
}

}  // namespace

Result<Bytes> EncodeTcgCsrContent(const TcgCsrContent& content) {
  std::size_t hash_size = HashSize(content.hash_algorithm);
  if (hash_size == 0) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("TCG-CSR-IDEVID: hash algorithm {:#06x} is not SHA-256, SHA-384 or SHA-512",
                                  content.hash_algorithm));
  }
  FieldBytes fields = FieldsOf(content);
  std::size_t length = kContentHeaderBytes;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].size() > kTcgCsrMaxBytes) {
      return UsageError(UsageCode::kInvalidArgument,
                        fmt::format("TCG-CSR-IDEVID: {} of {} bytes exceeds the limit of {}", kFields[i].name,
                                    fields[i].size(), kTcgCsrMaxBytes));
    }
    length += fields[i].size();
  }
  std::size_t pad_size = PadSize(length);
  Bytes out;
  out.reserve(length + pad_size);
  PutWord(out, kTcgCsrVersion);
  PutWord(out, content.hash_algorithm);
  PutWord(out, static_cast<std::uint32_t>(hash_size));
  for (ByteSpan field : fields) PutWord(out, static_cast<std::uint32_t>(field.size()));
  PutWord(out, static_cast<std::uint32_t>(pad_size));
  for (ByteSpan field : fields) out.insert(out.end(), field.begin(), field.end());
  out.resize(out.size() + pad_size, 0);
  return out;
}

Bytes EncodeTcgCsr(std::span<const std::uint8_t> content, std::span<const std::uint8_t> signature) {
  Bytes out;
  out.reserve(kOuterHeaderBytes + content.size() + signature.size());
  PutWord(out, kTcgCsrVersion);
  PutWord(out, static_cast<std::uint32_t>(content.size()));
  PutWord(out, static_cast<std::uint32_t>(signature.size()));
  out.insert(out.end(), content.begin(), content.end());
  out.insert(out.end(), signature.begin(), signature.end());
  return out;
}

Result<TcgCsr> ParseTcgCsr(std::span<const std::uint8_t> bytes) {
  if (bytes.size() > kTcgCsrMaxBytes) {
    return ConfigError(ConfigCode::kLimit, fmt::format("TCG-CSR-IDEVID: {} bytes exceed the limit of {}",
                                                       bytes.size(), kTcgCsrMaxBytes));
  }
  Reader reader(bytes, 0, "request");
  IDEVID_ASSIGN_OR_RETURN(Word version, reader.ReadWord("structVer"));
  IDEVID_TRY(CheckVersion(version));
  IDEVID_ASSIGN_OR_RETURN(Word content_size, reader.ReadWord("contentSz"));
  IDEVID_ASSIGN_OR_RETURN(Word signature_size, reader.ReadWord("sigSz"));
  // §13.1: contentSz and sigSz account for every byte after the header, no more, no less.
  IDEVID_ASSIGN_OR_RETURN(ByteSpan content, reader.Take(content_size));
  IDEVID_ASSIGN_OR_RETURN(ByteSpan signature, reader.Take(signature_size));
  IDEVID_TRY(reader.ExpectEnd("signature"));
  IDEVID_TRY(CheckContentLength(content_size));
  IDEVID_TRY(CheckPresent(signature_size, "signature"));
  IDEVID_ASSIGN_OR_RETURN(TcgCsrContent parsed, ParseContent(content));
  return TcgCsr{.content = std::move(parsed),
                .signed_bytes = Bytes(content.begin(), content.end()),
                .signature = Bytes(signature.begin(), signature.end())};
}

}  // namespace idevid
