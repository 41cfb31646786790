#include "core/event_log.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <tss2/tss2_tpm2_types.h>

#include "core/display_text.h"
#include "core/tpm_sign.h"

namespace idevid {
namespace {

// PFP §10.2.1: the SHA-1 digest of a TCG_PCClientPCREvent.
constexpr std::size_t kSha1DigestSize = 20;
constexpr std::size_t kSha256DigestSize = 32;
// PFP §10.4.5.1: TCG_EfiSpecIDEvent.signature of the crypto-agile format, NUL included.
constexpr std::string_view kSpecIdSignature{"Spec ID Event03\0", 16};
// The highest PCR index of a PC Client TPM (PTP §4.7: 24 PCRs).
constexpr std::uint32_t kMaxPcrIndex = 23;

// A bank the Spec ID event declares (TCG_EfiSpecIdEventAlgorithmSize).
struct Bank {
  std::uint16_t algorithm = 0;
  std::uint16_t digest_size = 0;
};

// A cursor over hostile bytes: every read compares the length it needs with the bytes left (no
// length is added to another), and every error names the event being read and where it starts.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  void StartEvent(std::size_t index) {
    index_ = index;
    event_start_ = base_ + offset_;
  }
  std::size_t index() const { return index_; }
  bool AtEnd() const { return offset_ == bytes_.size(); }
  std::size_t Left() const { return bytes_.size() - offset_; }

  // The next `size` bytes; fails naming `what` when fewer are left.
  Result<std::span<const std::uint8_t>> Take(std::size_t size, std::string_view what) {
    if (size > Left()) return Bad(fmt::format("{} needs {} bytes, {} are left", what, size, Left()));
    auto out = bytes_.subspan(offset_, size);
    offset_ += size;
    return out;
  }
  // A reader over the next `size` bytes whose errors name the same event.
  Result<Reader> Sub(std::size_t size, std::string_view what) {
    std::size_t start = base_ + offset_;
    IDEVID_ASSIGN_OR_RETURN(auto bytes, Take(size, what));
    Reader sub(bytes);
    sub.base_ = start;
    sub.index_ = index_;
    sub.event_start_ = event_start_;
    return sub;
  }
  // Little-endian integers (PFP §10.2: the log is in the platform's byte order, little-endian).
  Result<std::uint32_t> U32(std::string_view what) { return Integer<std::uint32_t>(what); }
  Result<std::uint16_t> U16(std::string_view what) { return Integer<std::uint16_t>(what); }
  Result<std::uint8_t> U8(std::string_view what) { return Integer<std::uint8_t>(what); }

  // kConfig/kSyntax: "event N at byte M: <message>".
  tl::unexpected<Error> Bad(std::string_view message) const {
    return ConfigError(ConfigCode::kSyntax,
                       fmt::format("event {} at byte {}: {}", index_, event_start_, message));
  }

 private:
  template <typename T>
  Result<T> Integer(std::string_view what) {
    IDEVID_ASSIGN_OR_RETURN(auto bytes, Take(sizeof(T), what));
    T value = 0;
    for (std::size_t i = sizeof(T); i-- > 0;) value = static_cast<T>((value << 8) | bytes[i]);
    return value;
  }

  std::span<const std::uint8_t> bytes_;
  std::size_t offset_ = 0;
  std::size_t base_ = 0;  // where bytes_ starts in the whole log
  std::size_t index_ = 0;
  std::size_t event_start_ = 0;
};

// The digest size a TPM algorithm has, 0 for one the harness does not know (its size then comes
// from the Spec ID event alone).
std::size_t KnownDigestSize(std::uint16_t algorithm) {
  switch (algorithm) {
    case TPM2_ALG_SHA1: return 20;
    case TPM2_ALG_SHA256:
    case TPM2_ALG_SM3_256: return 32;
    case TPM2_ALG_SHA384: return 48;
    case TPM2_ALG_SHA512: return 64;
    default: return 0;
  }
}

// TCG_EfiSpecIdEventAlgorithmSize[numberOfAlgorithms] (PFP §10.4.5.1).
Result<std::vector<Bank>> ParseBanks(Reader& data) {
  IDEVID_ASSIGN_OR_RETURN(std::uint32_t count, data.U32("numberOfAlgorithms"));
  if (count == 0) return data.Bad("the Spec ID event declares no digest algorithm");
  if (count > data.Left() / 4) {
    return data.Bad(
        fmt::format("{} algorithms do not fit the {} bytes left of the Spec ID event", count, data.Left()));
  }
  std::vector<Bank> banks;
  for (std::uint32_t i = 0; i < count; ++i) {
    IDEVID_ASSIGN_OR_RETURN(std::uint16_t algorithm, data.U16("algorithmId"));
    IDEVID_ASSIGN_OR_RETURN(std::uint16_t size, data.U16("digestSize"));
    std::size_t known = KnownDigestSize(algorithm);
    if (size == 0 || (known != 0 && size != known)) {
      return data.Bad(fmt::format("algorithm {:#06x} declared with a digest of {} bytes", algorithm, size));
    }
    auto same = [&](const Bank& b) { return b.algorithm == algorithm; };
    if (std::any_of(banks.begin(), banks.end(), same)) {
      return data.Bad(fmt::format("algorithm {:#06x} declared twice", algorithm));
    }
    banks.push_back({algorithm, size});
  }
  return banks;
}

// TCG_EfiSpecIDEvent (PFP §10.4.5.1), the event data of the first record.
Result<std::vector<Bank>> ParseSpecIdData(Reader& data) {
  IDEVID_ASSIGN_OR_RETURN(auto signature, data.Take(kSpecIdSignature.size(), "the Spec ID signature"));
  if (!std::equal(signature.begin(), signature.end(), kSpecIdSignature.begin())) {
    return data.Bad("the first event's signature is not \"Spec ID Event03\" (not a crypto-agile log)");
  }
  IDEVID_TRY(data.U32("platformClass"));
  IDEVID_ASSIGN_OR_RETURN(std::uint8_t minor, data.U8("specVersionMinor"));
  IDEVID_ASSIGN_OR_RETURN(std::uint8_t major, data.U8("specVersionMajor"));
  IDEVID_TRY(data.U8("specErrata"));
  IDEVID_ASSIGN_OR_RETURN(std::uint8_t uintn_size, data.U8("uintnSize"));
  if (major != 2 || minor != 0) return data.Bad(fmt::format("Spec ID version {}.{}, not 2.0", major, minor));
  if (uintn_size != 1 && uintn_size != 2) return data.Bad(fmt::format("uintnSize {} (1 or 2)", uintn_size));
  IDEVID_ASSIGN_OR_RETURN(auto banks, ParseBanks(data));
  IDEVID_ASSIGN_OR_RETURN(std::uint8_t vendor_size, data.U8("vendorInfoSize"));
  IDEVID_TRY(data.Take(vendor_size, "vendorInfo"));
  if (!data.AtEnd())
    return data.Bad(fmt::format("{} bytes after the Spec ID event's vendorInfo", data.Left()));
  return banks;
}

// The first record: a TCG_PCClientPCREvent (SHA-1 format, PFP §10.2.1) in PCR 0, EV_NO_ACTION,
// 20 zero bytes as digest, carrying the Spec ID event.
Result<std::vector<Bank>> ParseSpecIdEvent(Reader& log) {
  log.StartEvent(0);
  if (log.AtEnd()) return log.Bad("the log is empty (no Spec ID event)");
  IDEVID_ASSIGN_OR_RETURN(std::uint32_t pcr, log.U32("pcrIndex"));
  IDEVID_ASSIGN_OR_RETURN(std::uint32_t type, log.U32("eventType"));
  IDEVID_ASSIGN_OR_RETURN(auto digest, log.Take(kSha1DigestSize, "the SHA-1 digest"));
  if (pcr != 0 || type != kEvNoAction) {
    return log.Bad(
        fmt::format("the first event is {} in PCR {}, not the Spec ID event (EV_NO_ACTION in PCR 0)",
                    EventTypeName(type), pcr));
  }
  if (std::any_of(digest.begin(), digest.end(), [](std::uint8_t b) { return b != 0; })) {
    return log.Bad("the Spec ID event's digest is not 20 zero bytes");
  }
  IDEVID_ASSIGN_OR_RETURN(std::uint32_t size, log.U32("eventSize"));
  IDEVID_ASSIGN_OR_RETURN(Reader data, log.Sub(size, "the Spec ID event"));
  return ParseSpecIdData(data);
}

// TPML_DIGEST_VALUES of a TCG_PCR_EVENT2: one digest for each bank the Spec ID event declares.
Result<std::map<std::uint16_t, Bytes>> ParseDigests(Reader& log, const std::vector<Bank>& banks) {
  IDEVID_ASSIGN_OR_RETURN(std::uint32_t count, log.U32("the digest count"));
  if (count != banks.size()) {
    return log.Bad(
        fmt::format("digest count {}, but the Spec ID event declares {} bank(s)", count, banks.size()));
  }
  std::map<std::uint16_t, Bytes> digests;
  for (std::uint32_t i = 0; i < count; ++i) {
    IDEVID_ASSIGN_OR_RETURN(std::uint16_t algorithm, log.U16("hashAlg"));
    auto bank =
        std::find_if(banks.begin(), banks.end(), [&](const Bank& b) { return b.algorithm == algorithm; });
    if (bank == banks.end()) {
      return log.Bad(
          fmt::format("a digest of algorithm {:#06x}, which the Spec ID event does not declare", algorithm));
    }
    if (digests.count(algorithm) != 0)
      return log.Bad(fmt::format("two digests of algorithm {:#06x}", algorithm));
    IDEVID_ASSIGN_OR_RETURN(auto digest, log.Take(bank->digest_size, "the digest"));
    digests.emplace(algorithm, Bytes(digest.begin(), digest.end()));
  }
  return digests;
}

// A TCG_PCR_EVENT2 (PFP §10.2.2).
Result<LogEvent> ParseEvent2(Reader& log, const std::vector<Bank>& banks) {
  LogEvent event;
  IDEVID_ASSIGN_OR_RETURN(event.pcr, log.U32("pcrIndex"));
  IDEVID_ASSIGN_OR_RETURN(event.type, log.U32("eventType"));
  IDEVID_ASSIGN_OR_RETURN(event.digests, ParseDigests(log, banks));
  IDEVID_ASSIGN_OR_RETURN(std::uint32_t size, log.U32("eventSize"));
  IDEVID_ASSIGN_OR_RETURN(auto data, log.Take(size, "the event data"));
  event.data.assign(data.begin(), data.end());
  return event;
}

void PutU32(Bytes& out, std::uint32_t value) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}
void PutU16(Bytes& out, std::uint16_t value) {
  out.push_back(static_cast<std::uint8_t>(value));
  out.push_back(static_cast<std::uint8_t>(value >> 8));
}
void PutBytes(Bytes& out, std::span<const std::uint8_t> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// The Spec ID event of a log with the SHA-256 bank alone.
void PutSpecIdEvent(Bytes& out) {
  Bytes data(kSpecIdSignature.begin(), kSpecIdSignature.end());
  PutU32(data, 0);                        // platformClass: client
  data.insert(data.end(), {0, 2, 0, 2});  // specVersionMinor, Major, specErrata, uintnSize (UINT64)
  PutU32(data, 1);                        // numberOfAlgorithms
  PutU16(data, kAlgSha256);
  PutU16(data, kSha256DigestSize);
  data.push_back(0);  // vendorInfoSize
  PutU32(out, 0);
  PutU32(out, kEvNoAction);
  out.insert(out.end(), kSha1DigestSize, 0);
  PutU32(out, static_cast<std::uint32_t>(data.size()));
  PutBytes(out, data);
}

void PutEvent2(Bytes& out, const LogEvent& event) {
  PutU32(out, event.pcr);
  PutU32(out, event.type);
  PutU32(out, 1);
  PutU16(out, kAlgSha256);
  auto digest = event.digests.find(kAlgSha256);
  Bytes value(kSha256DigestSize, 0);
  if (digest != event.digests.end() && digest->second.size() == kSha256DigestSize) value = digest->second;
  PutBytes(out, value);
  PutU32(out, static_cast<std::uint32_t>(event.data.size()));
  PutBytes(out, event.data);
}

// PFP §10.4.1 Table 9 (and the EFI event types of §10.4.4).
constexpr std::array<std::pair<std::uint32_t, std::string_view>, 37> kEventTypeNames = {{
    {0x00000000, "EV_PREBOOT_CERT"},
    {0x00000001, "EV_POST_CODE"},
    {0x00000002, "EV_UNUSED"},
    {0x00000003, "EV_NO_ACTION"},
    {0x00000004, "EV_SEPARATOR"},
    {0x00000005, "EV_ACTION"},
    {0x00000006, "EV_EVENT_TAG"},
    {0x00000007, "EV_S_CRTM_CONTENTS"},
    {0x00000008, "EV_S_CRTM_VERSION"},
    {0x00000009, "EV_CPU_MICROCODE"},
    {0x0000000A, "EV_PLATFORM_CONFIG_FLAGS"},
    {0x0000000B, "EV_TABLE_OF_DEVICES"},
    {0x0000000C, "EV_COMPACT_HASH"},
    {0x0000000D, "EV_IPL"},
    {0x0000000E, "EV_IPL_PARTITION_DATA"},
    {0x0000000F, "EV_NONHOST_CODE"},
    {0x00000010, "EV_NONHOST_CONFIG"},
    {0x00000011, "EV_NONHOST_INFO"},
    {0x00000012, "EV_OMIT_BOOT_DEVICE_EVENTS"},
    {0x80000000, "EV_EFI_EVENT_BASE"},
    {0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG"},
    {0x80000002, "EV_EFI_VARIABLE_BOOT"},
    {0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION"},
    {0x80000004, "EV_EFI_BOOT_SERVICES_DRIVER"},
    {0x80000005, "EV_EFI_RUNTIME_SERVICES_DRIVER"},
    {0x80000006, "EV_EFI_GPT_EVENT"},
    {0x80000007, "EV_EFI_ACTION"},
    {0x80000008, "EV_EFI_PLATFORM_FIRMWARE_BLOB"},
    {0x80000009, "EV_EFI_HANDOFF_TABLES"},
    {0x8000000A, "EV_EFI_PLATFORM_FIRMWARE_BLOB2"},
    {0x8000000B, "EV_EFI_HANDOFF_TABLES2"},
    {0x8000000C, "EV_EFI_VARIABLE_BOOT2"},
    {0x80000010, "EV_EFI_HCRTM_EVENT"},
    {0x800000E0, "EV_EFI_VARIABLE_AUTHORITY"},
    {0x800000E1, "EV_EFI_SPDM_FIRMWARE_BLOB"},
    {0x800000E2, "EV_EFI_SPDM_FIRMWARE_CONFIG"},
    {0x800000E3, "EV_EFI_SPDM_DEVICE_POLICY"},
}};

// "0x1234abcd" as a 32-bit number; nullopt for anything else.
std::optional<std::uint32_t> ParseHex32(std::string_view text) {
  if (text.size() < 3 || text.size() > 10 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X'))
    return std::nullopt;
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data() + 2, text.data() + text.size(), value, 16);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::string EventTypeName(std::uint32_t type) {
  for (const auto& [value, name] : kEventTypeNames) {
    if (value == type) return std::string(name);
  }
  return fmt::format("{:#010x}", type);
}

Result<std::uint32_t> EventTypeFromName(std::string_view name) {
  for (const auto& [value, known] : kEventTypeNames) {
    if (known == name) return value;
  }
  if (auto value = ParseHex32(name)) return *value;
  return ConfigError(ConfigCode::kSyntax,
                     fmt::format("{} is not an event type (a PFP name such as EV_IPL, or 0x followed by hex)",
                                 QuotedDisplayText(name)));
}

Result<EventLog> ParseEventLog(std::span<const std::uint8_t> bytes) {
  if (bytes.size() > kMaxEventLogBytes) {
    return ConfigError(ConfigCode::kLimit, fmt::format("an event log of {} bytes is over the limit of {}",
                                                       bytes.size(), kMaxEventLogBytes));
  }
  Reader log(bytes);
  IDEVID_ASSIGN_OR_RETURN(auto banks, ParseSpecIdEvent(log));
  EventLog parsed;
  for (const Bank& bank : banks) parsed.algorithms.push_back(bank.algorithm);
  for (std::size_t index = 1; !log.AtEnd(); ++index) {
    log.StartEvent(index);
    IDEVID_ASSIGN_OR_RETURN(LogEvent event, ParseEvent2(log, banks));
    parsed.events.push_back(std::move(event));
  }
  return parsed;
}

Bytes EncodeEventLog(const std::vector<LogEvent>& events) {
  Bytes out;
  PutSpecIdEvent(out);
  for (const LogEvent& event : events) PutEvent2(out, event);
  return out;
}

namespace {

// PFP §10.4.5.3: an EV_NO_ACTION event in PCR 0 with the signature "StartupLocality\0" and one byte
// of locality says that the platform started the TPM from that locality (3 or 4 for an H-CRTM):
// PCR 0 then starts as 31 zero bytes and the locality, not 32 zeros.
std::optional<std::uint8_t> StartupLocality(const LogEvent& event) {
  static constexpr std::string_view kSignature("StartupLocality\0", 16);
  if (event.type != kEvNoAction || event.pcr != 0 || event.data.size() != kSignature.size() + 1) return {};
  if (!std::equal(kSignature.begin(), kSignature.end(), event.data.begin())) return {};
  return event.data.back();
}

}  // namespace

Result<std::map<std::uint32_t, Bytes>> ReplayEventLog(const EventLog& log) {
  std::map<std::uint32_t, Bytes> pcrs;
  for (std::size_t i = 0; i < log.events.size(); ++i) {
    const LogEvent& event = log.events[i];
    if (auto locality = StartupLocality(event); locality && !pcrs.contains(0)) {
      pcrs[0] = Bytes(kSha256DigestSize, 0);
      pcrs[0].back() = *locality;
    }
    if (event.type == kEvNoAction) continue;  // PFP §10.4.1: EV_NO_ACTION is not extended
    auto digest = event.digests.find(kAlgSha256);
    if (event.pcr > kMaxPcrIndex) {
      return ConfigError(ConfigCode::kSyntax,
                         fmt::format("event {} ({}) names PCR {}, above {}", i + 1, EventTypeName(event.type),
                                     event.pcr, kMaxPcrIndex));
    }
    if (digest == event.digests.end() || digest->second.size() != kSha256DigestSize) {
      return ConfigError(ConfigCode::kSyntax, fmt::format("event {} ({}, PCR {}) has no SHA-256 digest",
                                                          i + 1, EventTypeName(event.type), event.pcr));
    }
    auto [pcr, inserted] = pcrs.try_emplace(event.pcr, Bytes(kSha256DigestSize, 0));
    Bytes message = pcr->second;
    PutBytes(message, digest->second);
    IDEVID_ASSIGN_OR_RETURN(pcr->second, HashMessage(TPM2_ALG_SHA256, message), "replaying event {}", i + 1);
  }
  return pcrs;
}

}  // namespace idevid
