#include "cloud/attest_policy.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "core/byte_text.h"
#include "core/display_text.h"
#include "core/file_io.h"

namespace idevid {
namespace {

constexpr int kPolicyVersion = 1;
constexpr std::size_t kSha256Bytes = 32;
// The highest PCR index of a PC Client TPM (PTP §4.7: 24 PCRs).
constexpr std::uint32_t kMaxPcr = 23;
// How much of an event's data a finding quotes.
constexpr std::size_t kEventLabelBytes = 48;

// "line:column" of a mark, counting from 1 (a node without a place, such as an empty document,
// is at 1:1).
std::string Where(const YAML::Mark& mark) {
  return fmt::format("{}:{}", std::max(mark.line, 0) + 1, std::max(mark.column, 0) + 1);
}

class PolicyParser {
 public:
  explicit PolicyParser(std::string name) : name_(std::move(name)) {}

  Result<AttestPolicy> Parse(const YAML::Node& root) {
    if (!root.IsMap()) return At(root, ConfigCode::kSyntax, "the policy must be a mapping of keys to values");
    std::set<std::string> seen;
    for (const auto& entry : root) {
      auto key = entry.first.as<std::string>();
      if (!seen.insert(key).second) return Twice(entry.first, key);
      IDEVID_TRY(Field(entry.first, entry.second));
    }
    for (std::string_view required : {"version", "name", "pcrs", "events"}) {
      if (!seen.contains(std::string(required))) {
        return At(root, ConfigCode::kMissing, fmt::format("the policy lacks '{}'", required));
      }
    }
    // Every listed PCR must be one the policy asks to be quoted: a digest of another PCR would
    // never be checked.
    for (const auto& [pcr, mark] : event_pcrs_) {
      if (!policy_.pcrs.Covers(PcrSelection{policy_.pcrs.hash, {pcr}})) {
        return At(mark, ConfigCode::kBadValue,
                  fmt::format("pcr {} is not in 'pcrs' ({})", pcr, policy_.pcrs.ToString()));
      }
    }
    return policy_;
  }

 private:
  Result<void> Field(const YAML::Node& key_node, const YAML::Node& value) {
    const std::string key = key_node.Scalar();
    if (key == "version") return Version(value);
    if (key == "name") return Text(value, "name", policy_.name);
    if (key == "pcrs") return Pcrs(value);
    if (key == "events") return Events(value);
    return At(key_node, ConfigCode::kUnknownStatement,
              fmt::format("unknown key '{}'; the keys are: version, name, pcrs, events", DisplayText(key)));
  }

  Result<void> Version(const YAML::Node& v) {
    int version = 0;
    if (!v.IsScalar() || !YAML::convert<int>::decode(v, version)) {
      return At(v, ConfigCode::kBadValue, "'version' must be a number");
    }
    if (version != kPolicyVersion) {
      return UsageError(UsageCode::kUnsupported,
                        fmt::format("{}:{}: policy version {} is not spoken here (version {} is)", name_,
                                    Where(v.Mark()), version, kPolicyVersion));
    }
    return {};
  }

  Result<void> Text(const YAML::Node& v, std::string_view key, std::string& out) {
    if (!v.IsScalar() || v.Scalar().empty()) {
      return At(v, ConfigCode::kBadValue, fmt::format("'{}' must be a non-empty text value", key));
    }
    out = v.Scalar();
    return {};
  }

  Result<void> Pcrs(const YAML::Node& v) {
    std::string text;
    IDEVID_TRY(Text(v, "pcrs", text));
    auto selection = ParsePcrSelection(text);
    if (!selection)
      return At(v, ConfigCode::kBadValue, fmt::format("'pcrs': {}", selection.error().message()));
    policy_.pcrs = *std::move(selection);
    return {};
  }

  Result<void> Events(const YAML::Node& v) {
    if (!v.IsSequence()) {
      return At(v, ConfigCode::kBadValue, "'events' must be a list of entries with pcr, type and digests");
    }
    for (const auto& entry : v) IDEVID_TRY(Event(entry));
    return {};
  }

  // - {pcr: 4, type: EV_..., digests: [hex, ...]}
  Result<void> Event(const YAML::Node& v) {
    if (!v.IsMap())
      return At(v, ConfigCode::kBadValue,
                "an entry of 'events' must be a mapping with pcr, type and digests");
    std::set<std::string> seen;
    std::optional<std::uint32_t> pcr;
    std::optional<std::uint32_t> type;
    std::set<Bytes> digests;
    for (const auto& entry : v) {
      auto key = entry.first.as<std::string>();
      if (!seen.insert(key).second) return Twice(entry.first, "events." + key);
      if (key == "pcr") {
        IDEVID_ASSIGN_OR_RETURN(pcr, Pcr(entry.second));
      } else if (key == "type") {
        IDEVID_ASSIGN_OR_RETURN(type, Type(entry.second));
      } else if (key == "digests") {
        IDEVID_ASSIGN_OR_RETURN(digests, Digests(entry.second));
      } else {
        return At(entry.first, ConfigCode::kUnknownStatement,
                  fmt::format("unknown key 'events.{}'; the keys are: pcr, type, digests", DisplayText(key)));
      }
    }
    for (std::string_view required : {"pcr", "type", "digests"}) {
      if (!seen.contains(std::string(required))) {
        return At(v, ConfigCode::kMissing, fmt::format("the entry lacks '{}'", required));
      }
    }
    auto [it, inserted] = policy_.allowed.try_emplace({*pcr, *type}, std::move(digests));
    if (!inserted) {
      return At(v, ConfigCode::kConflict,
                fmt::format("pcr {} type {} is listed twice; keep one entry", *pcr, EventTypeName(*type)));
    }
    event_pcrs_.emplace_back(*pcr, v["pcr"]);
    return {};
  }

  Result<std::uint32_t> Pcr(const YAML::Node& v) {
    std::uint32_t pcr = 0;
    if (!v.IsScalar() || !YAML::convert<std::uint32_t>::decode(v, pcr) || pcr > kMaxPcr) {
      return At(v, ConfigCode::kBadValue, fmt::format("'pcr' must be a PCR number from 0 to {}", kMaxPcr));
    }
    return pcr;
  }

  Result<std::uint32_t> Type(const YAML::Node& v) {
    if (!v.IsScalar()) return At(v, ConfigCode::kBadValue, "'type' must be an event type name (EV_...)");
    auto type = EventTypeFromName(v.Scalar());
    if (!type) return At(v, ConfigCode::kBadValue, fmt::format("'type': {}", type.error().message()));
    return *type;
  }

  Result<std::set<Bytes>> Digests(const YAML::Node& v) {
    if (!v.IsSequence() || v.size() == 0) {
      return At(v, ConfigCode::kBadValue, "'digests' must be a list of at least one SHA-256 digest (hex)");
    }
    std::set<Bytes> digests;
    for (const auto& item : v) {
      std::optional<Bytes> digest;
      if (item.IsScalar()) {
        if (auto hex = DecodeHex(item.Scalar())) digest = *std::move(hex);
      }
      if (!digest || digest->size() != kSha256Bytes) {
        return At(item, ConfigCode::kSyntax, "a digest must be 64 hex digits (SHA-256)");
      }
      digests.insert(*std::move(digest));
    }
    return digests;
  }

  // yaml-cpp keeps the last of two equal keys; a policy that says a thing twice is a mistake.
  tl::unexpected<Error> Twice(const YAML::Node& at, const std::string& key) const {
    return At(at, ConfigCode::kConflict, fmt::format("'{}' is given twice; keep one", DisplayText(key)));
  }

  // A kConfig error with `code` at the place `at` marks in the file.
  tl::unexpected<Error> At(const YAML::Node& at, ConfigCode code, const std::string& what) const {
    return ConfigError(code, fmt::format("{}:{}: {}", name_, Where(at.Mark()), what));
  }

  std::string name_;
  AttestPolicy policy_;
  std::vector<std::pair<std::uint32_t, YAML::Node>> event_pcrs_;  // where each entry names its PCR
};

// The event's data as a short quoted label when it is text (a synthetic boot's component name, a
// command line), empty otherwise.
std::string EventLabel(const LogEvent& event) {
  std::string_view text(reinterpret_cast<const char*>(event.data.data()), event.data.size());
  while (!text.empty() && text.back() == '\0') text.remove_suffix(1);
  if (text.empty()) return "";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return "";
  }
  return " " + QuotedDisplayText(text, kEventLabelBytes);
}

}  // namespace

Result<AttestPolicy> ParseAttestPolicy(const std::string& text, const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return ConfigError(ConfigCode::kSyntax, fmt::format("{}:{}: not YAML: {}", name, Where(e.mark), e.msg));
  }
  try {
    return PolicyParser(name).Parse(root);
  } catch (const YAML::Exception& e) {  // a key that is not text
    return ConfigError(ConfigCode::kSyntax, fmt::format("{}:{}: {}", name, Where(e.mark), e.msg));
  }
}

Result<AttestPolicy> LoadAttestPolicy(const std::filesystem::path& path) {
  IDEVID_ASSIGN_OR_RETURN(std::string text, ReadFileText(path), "reading the attestation policy");
  return ParseAttestPolicy(text, path.string());
}

AttestPolicy PolicyFromLog(const EventLog& log, std::string name, PcrSelection pcrs) {
  AttestPolicy policy{std::move(name), std::move(pcrs), {}};
  for (const LogEvent& event : log.events) {
    auto digest = event.digests.find(kAlgSha256);
    if (event.type == kEvNoAction || digest == event.digests.end()) continue;
    if (!policy.pcrs.Covers(PcrSelection{policy.pcrs.hash, {event.pcr}})) continue;
    policy.allowed[{event.pcr, event.type}].insert(digest->second);
  }
  return policy;
}

std::string AttestPolicyYaml(const AttestPolicy& policy) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "version" << YAML::Value << kPolicyVersion;
  out << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted << policy.name;
  out << YAML::Key << "pcrs" << YAML::Value << policy.pcrs.ToString();
  out << YAML::Key << "events" << YAML::Value << YAML::BeginSeq;
  for (const auto& [key, digests] : policy.allowed) {
    out << YAML::BeginMap;
    out << YAML::Key << "pcr" << YAML::Value << key.first;
    out << YAML::Key << "type" << YAML::Value << EventTypeName(key.second);
    out << YAML::Key << "digests" << YAML::Value << YAML::BeginSeq;
    for (const Bytes& digest : digests) out << Hex(digest);
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

Verdict CheckEventsAgainstPolicy(const EventLog& log, const AttestPolicy& policy) {
  Verdict verdict;
  for (std::size_t i = 0; i < log.events.size(); ++i) {
    const LogEvent& event = log.events[i];
    if (event.type == kEvNoAction || !policy.pcrs.Covers(PcrSelection{policy.pcrs.hash, {event.pcr}}))
      continue;
    // Events count from 1: the Spec ID event is event 0 of the log, as tpm2_eventlog numbers them.
    const std::string what = fmt::format("event {} (PCR {}, {}{})", i + 1, event.pcr,
                                         EventTypeName(event.type), EventLabel(event));
    auto allowed = policy.allowed.find({event.pcr, event.type});
    if (allowed == policy.allowed.end()) {
      verdict.Add("event-not-allowed",
                  fmt::format("{}: policy {} lists no {} event for PCR {}", what,
                              QuotedDisplayText(policy.name), EventTypeName(event.type), event.pcr));
      continue;
    }
    auto digest = event.digests.find(kAlgSha256);
    if (digest == event.digests.end()) {
      verdict.Add("event-not-allowed", fmt::format("{} has no SHA-256 digest", what));
    } else if (!allowed->second.contains(digest->second)) {
      verdict.Add("event-not-allowed", fmt::format("{} digest {} is not in policy {}", what,
                                                   Hex(digest->second), QuotedDisplayText(policy.name)));
    }
  }
  return verdict;
}

}  // namespace idevid
