#include "core/tpm_pcr.h"

#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/display_text.h"
#include "core/tpm_sign.h"
#include "core/tpm_types.h"
#include "core/tss_error.h"

namespace idevid {
namespace {

// A PC Client TPM has 24 PCRs (PTP §4.7); their bitmap is 3 bytes (Part 2 §10.6.2).
constexpr std::uint32_t kPcrCount = 24;
constexpr std::uint8_t kSizeofSelect = 3;
constexpr std::size_t kSha256Size = 32;

std::string BankName(std::uint16_t hash) {
  return hash == TPM2_ALG_SHA256 ? std::string("sha256") : fmt::format("{:#06x}", hash);
}

// "7" as a PCR index (0-23); nullopt for anything else.
std::optional<std::uint32_t> ParsePcrIndex(std::string_view text) {
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value >= kPcrCount)
    return std::nullopt;
  return value;
}

tl::unexpected<Error> BadSelection(std::string_view text, std::string_view why) {
  return ConfigError(ConfigCode::kSyntax, fmt::format("PCR selection {}: {}", QuotedDisplayText(text), why));
}

// Every PCR whose bit is set in `bitmap` (Part 2 §10.6.2: bit n of byte n/8 is PCR n).
std::vector<std::uint32_t> PcrsOf(const TPMS_PCR_SELECTION& bank) {
  std::vector<std::uint32_t> pcrs;
  for (std::uint32_t pcr = 0; pcr < 8u * bank.sizeofSelect; ++pcr) {
    if (bank.pcrSelect[pcr / 8] & (1u << (pcr % 8))) pcrs.push_back(pcr);
  }
  return pcrs;
}

// One TPM2_PCR_Read of what is left of `wanted`: adds the values it returns and takes their PCRs
// out of `wanted`. Fails when the TPM returns none of them.
Result<void> ReadSomePcrs(const TpmContext& tpm, PcrSelection& wanted, PcrValues& values) {
  TPML_PCR_SELECTION in = wanted.ToTpml();
  EsysBuffer<TPML_PCR_SELECTION> out;
  EsysBuffer<TPML_DIGEST> digests;
  UINT32 update_counter = 0;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_PCR_Read(tpm.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in, &update_counter,
                         out.out(), digests.out());
  });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, fmt::format("TPM2_PCR_Read of {} failed", wanted.ToString()));
  std::vector<std::uint32_t> read;
  if (out->count == 1 && out->pcrSelections[0].hash == wanted.hash) read = PcrsOf(out->pcrSelections[0]);
  if (read.size() != digests->count) {
    return Fail(
        ErrorDomain::kTss, TSS2_ESYS_RC_MALFORMED_RESPONSE,
        fmt::format("TPM2_PCR_Read returned {} values for {} selected PCRs", digests->count, read.size()));
  }
  std::size_t before = values.size();
  for (std::size_t i = 0; i < read.size(); ++i) {
    if (!std::binary_search(wanted.pcrs.begin(), wanted.pcrs.end(), read[i])) continue;
    values[read[i]] =
        Bytes(digests->digests[i].buffer, digests->digests[i].buffer + digests->digests[i].size);
  }
  if (values.size() == before) {
    return Fail(ErrorDomain::kTss, TSS2_ESYS_RC_MALFORMED_RESPONSE,
                fmt::format("TPM2_PCR_Read left out every PCR of {}", wanted.ToString()));
  }
  std::erase_if(wanted.pcrs, [&](std::uint32_t pcr) { return values.count(pcr) != 0; });
  return {};
}

}  // namespace

std::string PcrSelection::ToString() const {
  return fmt::format("{}:{}", BankName(hash), fmt::join(pcrs, ","));
}

TPML_PCR_SELECTION PcrSelection::ToTpml() const {
  TPML_PCR_SELECTION tpml{};
  tpml.count = 1;
  tpml.pcrSelections[0].hash = hash;
  tpml.pcrSelections[0].sizeofSelect = kSizeofSelect;
  for (std::uint32_t pcr : pcrs) {
    if (pcr < kPcrCount) tpml.pcrSelections[0].pcrSelect[pcr / 8] |= static_cast<BYTE>(1u << (pcr % 8));
  }
  return tpml;
}

bool PcrSelection::Covers(const PcrSelection& other) const {
  if (other.hash != hash) return false;
  return std::includes(pcrs.begin(), pcrs.end(), other.pcrs.begin(), other.pcrs.end());
}

Result<PcrSelection> ParsePcrSelection(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos)
    return BadSelection(text, "not BANK:PCR,PCR,... (e.g. sha256:0,1,2,7)");
  if (text.substr(0, colon) != "sha256") return BadSelection(text, "the bank must be sha256");
  PcrSelection selection;
  std::string_view list = text.substr(colon + 1);
  while (true) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    auto pcr = ParsePcrIndex(item);
    if (!pcr) return BadSelection(text, fmt::format("{} is not a PCR from 0 to 23", QuotedDisplayText(item)));
    if (std::find(selection.pcrs.begin(), selection.pcrs.end(), *pcr) != selection.pcrs.end()) {
      return BadSelection(text, fmt::format("PCR {} is named twice", *pcr));
    }
    selection.pcrs.push_back(*pcr);
    if (comma == std::string_view::npos) break;
    list = list.substr(comma + 1);
  }
  std::sort(selection.pcrs.begin(), selection.pcrs.end());
  return selection;
}

Result<PcrSelection> PcrSelectionFromTpml(const TPML_PCR_SELECTION& tpml) {
  if (tpml.count != 1) {
    return ConfigError(ConfigCode::kSyntax,
                       fmt::format("a PCR selection of {} banks: one (sha256) is expected", tpml.count));
  }
  const TPMS_PCR_SELECTION& bank = tpml.pcrSelections[0];
  if (bank.hash != TPM2_ALG_SHA256) {
    return ConfigError(ConfigCode::kSyntax,
                       fmt::format("a PCR selection of bank {:#06x}, not sha256", bank.hash));
  }
  if (bank.sizeofSelect > kSizeofSelect) {
    return ConfigError(ConfigCode::kSyntax,
                       fmt::format("a PCR bitmap of {} bytes: a PC Client TPM has {} ({} PCRs)",
                                   bank.sizeofSelect, kSizeofSelect, kPcrCount));
  }
  return PcrSelection{bank.hash, PcrsOf(bank)};
}

Result<Bytes> PcrCompositeDigest(const PcrSelection& selection, const PcrValues& values) {
  Bytes composite;
  for (std::uint32_t pcr : selection.pcrs) {
    auto value = values.find(pcr);
    if (value == values.end()) {
      return ConfigError(ConfigCode::kSyntax, fmt::format("PCR {} is selected but has no value", pcr));
    }
    if (value->second.size() != kSha256Size) {
      return ConfigError(ConfigCode::kSyntax, fmt::format("PCR {} has a value of {} bytes, not {}", pcr,
                                                          value->second.size(), kSha256Size));
    }
    composite.insert(composite.end(), value->second.begin(), value->second.end());
  }
  return HashMessage(TPM2_ALG_SHA256, composite);
}

Result<void> ExtendPcr(const TpmContext& tpm, std::uint32_t pcr, std::span<const std::uint8_t> digest) {
  if (digest.size() != kSha256Size || pcr >= kPcrCount) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("cannot extend PCR {} with {} bytes: a SHA-256 digest into PCR 0-23", pcr,
                                  digest.size()));
  }
  TPML_DIGEST_VALUES digests{};
  digests.count = 1;
  digests.digests[0].hashAlg = TPM2_ALG_SHA256;
  std::copy(digest.begin(), digest.end(), digests.digests[0].digest.sha256);
  TSS2_RC rc = tpm.Run([&] {
    return Esys_PCR_Extend(tpm.esys(), ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           &digests);
  });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, fmt::format("TPM2_PCR_Extend of PCR {} failed", pcr));
  return {};
}

Result<PcrValues> ReadPcrs(const TpmContext& tpm, const PcrSelection& selection) {
  PcrSelection wanted = selection;
  PcrValues values;
  while (!wanted.pcrs.empty()) IDEVID_TRY(ReadSomePcrs(tpm, wanted, values));
  return values;
}

Result<Attestation> Quote(const TpmContext& tpm, ESYS_TR signer, const PcrSelection& selection,
                          std::span<const std::uint8_t> qualifying_data) {
  IDEVID_ASSIGN_OR_RETURN(TPM2B_DATA extra, QualifyingData(qualifying_data, "TPM2_Quote"));
  IDEVID_ASSIGN_OR_RETURN(TPM2B_PUBLIC signer_public, ReadPublic(tpm, signer),
                          "cannot learn the quoting key's scheme");
  TPMT_SIG_SCHEME scheme = SigningScheme(signer_public.publicArea);
  TPML_PCR_SELECTION pcrs = selection.ToTpml();
  EsysBuffer<TPM2B_ATTEST> attest;
  EsysBuffer<TPMT_SIGNATURE> signature;
  TSS2_RC rc = tpm.Run([&] {
    return Esys_Quote(tpm.esys(), signer, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &extra, &scheme,
                      &pcrs, attest.out(), signature.out());
  });
  if (rc != TSS2_RC_SUCCESS) return FailTss(rc, fmt::format("TPM2_Quote of {} failed", selection.ToString()));
  return AttestationOf(*attest, *signature);
}

}  // namespace idevid
