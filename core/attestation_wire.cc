#include "core/attestation_wire.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/byte_text.h"
#include "core/display_text.h"
#include "core/event_log.h"

namespace idevid {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kChallengeType = "attestation-challenge";
constexpr std::string_view kEvidenceType = "attestation-evidence";
constexpr std::string_view kBindingLabel = "idevid-attestation-v1";
// An IAK certificate is 1-2 KiB; anything near this is not one.
constexpr std::size_t kMaxIakCertificateBytes = 16 * 1024;
constexpr std::size_t kPcrValueBytes = 32;

tl::unexpected<Error> Malformed(std::string message) {
  return ConfigError(ConfigCode::kSyntax, std::move(message));
}

// The message with our version and type stamped in; strings that are not UTF-8 become U+FFFD.
std::string Dump(Json fields, std::string_view type) {
  fields["version"] = kAttestationVersion;
  fields["type"] = type;
  return fields.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<void> CheckSize(std::string_view json) {
  if (json.size() > kMaxEvidenceBytes) {
    return ConfigError(ConfigCode::kLimit, fmt::format("the message is {} bytes, more than the {} accepted",
                                                       json.size(), kMaxEvidenceBytes));
  }
  return {};
}

// A JSON object of our version and of `type`.
Result<Json> ParseMessage(std::string_view json, std::string_view type) {
  IDEVID_TRY(CheckSize(json));
  Json doc;
  try {
    doc = Json::parse(json);
  } catch (const Json::exception& e) {
    // parse_error (byte offset) or, for invalid UTF-8 in a string, also parse_error.
    return Malformed(fmt::format("the message is not JSON (RFC 8259): {}", DisplayText(e.what())));
  }
  if (!doc.is_object()) return Malformed("the message is not a JSON object");
  auto version = doc.find("version");
  if (version == doc.end()) return Malformed("the member \"version\" is missing");
  if (!version->is_number_integer()) return Malformed("the member \"version\" is not an integer");
  if (*version != kAttestationVersion) {
    return UsageError(UsageCode::kUnsupported,
                      fmt::format("version {} is not spoken here (version {} is)",
                                  DisplayText(version->dump()), kAttestationVersion));
  }
  auto found_type = doc.find("type");
  if (found_type == doc.end()) return Malformed("the member \"type\" is missing");
  if (!found_type->is_string()) return Malformed("the member \"type\" is not a string");
  if (found_type->get_ref<const std::string&>() != type) {
    return UsageError(UsageCode::kUnsupported,
                      fmt::format("the message is of type {}, not \"{}\"",
                                  QuotedDisplayText(found_type->get_ref<const std::string&>()), type));
  }
  return doc;
}

Result<const Json*> Member(const Json& doc, std::string_view name) {
  auto it = doc.find(name);
  if (it == doc.end()) return Malformed(fmt::format("the member \"{}\" is missing", name));
  return &*it;
}

Result<std::string> StringMember(const Json& doc, std::string_view name) {
  IDEVID_ASSIGN_OR_RETURN(const Json* member, Member(doc, name));
  if (!member->is_string()) return Malformed(fmt::format("the member \"{}\" is not a string", name));
  return member->get<std::string>();
}

// A base64 member of at most `max_bytes` decoded bytes (checked before decoding).
Result<Bytes> Base64Member(const Json& doc, std::string_view name, std::size_t max_bytes) {
  IDEVID_ASSIGN_OR_RETURN(std::string text, StringMember(doc, name));
  if (text.size() / 4 * 3 > max_bytes + 2) {
    return ConfigError(ConfigCode::kLimit,
                       fmt::format("the member \"{}\" holds about {} bytes, more than the {} accepted", name,
                                   text.size() / 4 * 3, max_bytes));
  }
  IDEVID_ASSIGN_OR_RETURN(Bytes bytes, DecodeBase64(text), "the member \"{}\"", name);
  if (bytes.size() > max_bytes) {
    return ConfigError(ConfigCode::kLimit,
                       fmt::format("the member \"{}\" holds {} bytes, more than the {} accepted", name,
                                   bytes.size(), max_bytes));
  }
  return bytes;
}

Result<PcrSelection> SelectionMember(const Json& doc) {
  IDEVID_ASSIGN_OR_RETURN(std::string text, StringMember(doc, "pcrs"));
  IDEVID_ASSIGN_OR_RETURN(PcrSelection selection, ParsePcrSelection(text), "the member \"pcrs\"");
  return selection;
}

Result<std::uint32_t> PcrIndex(const std::string& key) {
  std::uint32_t pcr = 0;
  auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), pcr);
  bool canonical = !key.empty() && (key == "0" || key[0] != '0');
  if (ec != std::errc() || end != key.data() + key.size() || !canonical) {
    return Malformed(
        fmt::format("the member \"pcr_values\" has the key {}, not a PCR number", QuotedDisplayText(key)));
  }
  return pcr;
}

// {"0": hex, ...}: exactly the selection's PCRs, each a 32-byte SHA-256 value.
Result<PcrValues> PcrValuesMember(const Json& doc, const PcrSelection& selection) {
  IDEVID_ASSIGN_OR_RETURN(const Json* member, Member(doc, "pcr_values"));
  if (!member->is_object()) return Malformed("the member \"pcr_values\" is not an object");
  PcrValues values;
  for (const auto& [key, value] : member->items()) {
    IDEVID_ASSIGN_OR_RETURN(std::uint32_t pcr, PcrIndex(key));
    if (std::find(selection.pcrs.begin(), selection.pcrs.end(), pcr) == selection.pcrs.end()) {
      return Malformed(
          fmt::format("the member \"pcr_values\" has PCR {}, which \"pcrs\" ({}) does not select", pcr,
                      selection.ToString()));
    }
    if (!value.is_string())
      return Malformed(fmt::format("the member \"pcr_values\": PCR {} is not a string", pcr));
    IDEVID_ASSIGN_OR_RETURN(Bytes bytes, DecodeHex(value.get_ref<const std::string&>()),
                            "the member \"pcr_values\": PCR {}", pcr);
    if (bytes.size() != kPcrValueBytes) {
      return Malformed(fmt::format("the member \"pcr_values\": PCR {} is {} bytes, not the {} of SHA-256",
                                   pcr, bytes.size(), kPcrValueBytes));
    }
    values[pcr] = std::move(bytes);
  }
  for (std::uint32_t pcr : selection.pcrs) {
    if (!values.contains(pcr)) {
      return Malformed(
          fmt::format("the member \"pcr_values\" lacks PCR {} of \"pcrs\" ({})", pcr, selection.ToString()));
    }
  }
  return values;
}

// {"label": kAttestationExporterLabel, "length": kAttestationExporterBytes}: the one exporter
// this version binds to.
Result<void> CheckExporterMember(const Json& doc) {
  IDEVID_ASSIGN_OR_RETURN(const Json* member, Member(doc, "exporter"));
  if (!member->is_object()) return Malformed("the member \"exporter\" is not an object");
  IDEVID_ASSIGN_OR_RETURN(std::string label, StringMember(*member, "label"), "the member \"exporter\"");
  IDEVID_ASSIGN_OR_RETURN(const Json* length, Member(*member, "length"), "the member \"exporter\"");
  if (!length->is_number_integer())
    return Malformed("the member \"exporter\": the member \"length\" is not an integer");
  if (label != kAttestationExporterLabel || *length != kAttestationExporterBytes) {
    return UsageError(UsageCode::kUnsupported,
                      fmt::format("the exporter {} of {} bytes is not spoken here ({} of {} bytes is)",
                                  QuotedDisplayText(label), DisplayText(length->dump()),
                                  kAttestationExporterLabel, kAttestationExporterBytes));
  }
  return {};
}

}  // namespace

std::string ChallengeJson(const AttestationChallenge& challenge) {
  return Dump({{"nonce", EncodeBase64(challenge.nonce)},
               {"pcrs", challenge.pcrs.ToString()},
               {"exporter", {{"label", kAttestationExporterLabel}, {"length", kAttestationExporterBytes}}}},
              kChallengeType);
}

std::string EvidenceJson(const AttestationEvidence& evidence) {
  Json values = Json::object();
  for (const auto& [pcr, value] : evidence.pcr_values) values[std::to_string(pcr)] = Hex(value);
  return Dump({{"quote", EncodeBase64(evidence.quote)},
               {"signature", EncodeBase64(evidence.signature)},
               {"pcrs", evidence.pcrs.ToString()},
               {"pcr_values", std::move(values)},
               {"event_log", EncodeBase64(evidence.event_log)},
               {"iak_certificate", EncodeBase64(evidence.iak_certificate)}},
              kEvidenceType);
}

Result<AttestationChallenge> ParseChallenge(std::string_view json) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseMessage(json, kChallengeType));
  AttestationChallenge challenge;
  IDEVID_ASSIGN_OR_RETURN(challenge.nonce, Base64Member(doc, "nonce", kAttestationNonceBytes));
  if (challenge.nonce.size() != kAttestationNonceBytes) {
    return Malformed(fmt::format("the member \"nonce\" is {} bytes, not {}", challenge.nonce.size(),
                                 kAttestationNonceBytes));
  }
  IDEVID_ASSIGN_OR_RETURN(challenge.pcrs, SelectionMember(doc));
  IDEVID_TRY(CheckExporterMember(doc));
  return challenge;
}

Result<AttestationEvidence> ParseEvidence(std::string_view json) {
  IDEVID_ASSIGN_OR_RETURN(Json doc, ParseMessage(json, kEvidenceType));
  AttestationEvidence evidence;
  // The TPM's own structures bound what they can marshal to.
  IDEVID_ASSIGN_OR_RETURN(evidence.quote, Base64Member(doc, "quote", sizeof(TPMS_ATTEST)));
  IDEVID_ASSIGN_OR_RETURN(evidence.signature, Base64Member(doc, "signature", sizeof(TPMT_SIGNATURE)));
  IDEVID_ASSIGN_OR_RETURN(evidence.pcrs, SelectionMember(doc));
  IDEVID_ASSIGN_OR_RETURN(evidence.pcr_values, PcrValuesMember(doc, evidence.pcrs));
  IDEVID_ASSIGN_OR_RETURN(evidence.event_log, Base64Member(doc, "event_log", kMaxEventLogBytes));
  IDEVID_ASSIGN_OR_RETURN(evidence.iak_certificate,
                          Base64Member(doc, "iak_certificate", kMaxIakCertificateBytes));
  return evidence;
}

Bytes SessionBinding(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> exporter) {
  Bytes input(kBindingLabel.begin(), kBindingLabel.end());
  input.insert(input.end(), nonce.begin(), nonce.end());
  input.insert(input.end(), exporter.begin(), exporter.end());
  Bytes digest(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  // SHA-256 of a buffer in memory cannot fail short of memory exhaustion; an empty result would
  // match no quote.
  if (EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) return {};
  digest.resize(length);
  return digest;
}

}  // namespace idevid
