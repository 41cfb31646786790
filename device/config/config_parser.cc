#include "device/config/config_parser.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/file_io.h"

namespace idevid {
namespace {

// The longest file name echoed whole (PATH_MAX).
constexpr std::size_t kMaxPathBytes = 4096;

// A piece of the configuration (a word, a name, a path) echoed in a message: between single
// quotes, escaped and cut to a stated length, whatever bytes the file holds.
std::string Echo(std::string_view text, std::size_t max_bytes = kDisplayTextMaxBytes) {
  return "'" + DisplayText(text, max_bytes) + "'";
}

// A UTF-8 byte order mark, which some editors put at the start of a file; it carries no meaning.
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

struct Token {
  std::string text;
  int column = 0;  // 1-based
};

// Splits one line into words; `#` outside quotes starts a comment.
Result<std::vector<Token>> Tokenize(std::string_view line, const SourceLocation& at) {
  std::vector<Token> tokens;
  std::size_t i = 0;
  while (i < line.size()) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
    } else if (c == '#') {
      break;
    } else if (c == '"') {
      std::size_t end = line.find('"', i + 1);
      if (end == std::string_view::npos) {
        return ConfigError(ConfigCode::kSyntax,
                           fmt::format("{}: unterminated quoted string",
                                       SourceLocation{at.file, at.line, static_cast<int>(i + 1)}.ToString()));
      }
      tokens.push_back({std::string(line.substr(i + 1, end - i - 1)), static_cast<int>(i + 1)});
      i = end + 1;
    } else {
      std::size_t end = line.find_first_of(" \t\r#\"", i);
      if (end == std::string_view::npos) end = line.size();
      tokens.push_back({std::string(line.substr(i, end - i)), static_cast<int>(i + 1)});
      i = end;
    }
  }
  return tokens;
}

std::optional<std::uint32_t> ParseNumber(std::string_view text, int base) {
  if (base == 16) {
    if (!text.starts_with("0x") && !text.starts_with("0X")) return std::nullopt;
    text.remove_prefix(2);
  }
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// One position of a statement: a keyword, or a value with a description and a validator.
struct Slot {
  std::string description;  // "'ca-profile'" or "a file path"
  std::function<bool(const std::string&)> accepts;
  bool keyword = false;  // keywords are not passed to the action
};

Slot Kw(const std::string& keyword) {
  return {"'" + keyword + "'", [keyword](const std::string& t) { return t == keyword; }, true};
}
Slot Value(const std::string& description) {
  return {description, [](const std::string& t) { return !t.empty(); }};
}
Slot Hex(const std::string& description) {
  return {description, [](const std::string& t) { return ParseNumber(t, 16).has_value(); }};
}
Slot Pcrs() {
  return {"a PCR selection like sha256:0,1,2,7",
          [](const std::string& t) { return ParsePcrSelection(t).has_value(); }};
}
Slot Seconds() {
  return {"a number of seconds (1-600)", [](const std::string& t) {
            auto v = ParseNumber(t, 10);
            return v && *v >= 1 && *v <= 600;
          }};
}

using Values = std::vector<std::string>;  // the value slots' texts, in order
// Applies one statement; fails when it sets an attribute that an earlier statement set.
using Action = std::function<Result<void>(DeviceConfig&, const Values&, const SourceLocation&)>;

// Records that `attribute` of `owner` is set by the statement at `at`. A second statement
// setting it is refused, with the same value as well as with another one: each attribute is set
// by one statement, so what a configuration means never depends on which of two lines wins, and
// a line pasted twice is shown rather than silently absorbed.
Result<void> SetOnce(AttributeLocations& set_at, const std::string& attribute, const std::string& owner,
                     const SourceLocation& at) {
  auto [first, inserted] = set_at.emplace(attribute, at);
  if (inserted) return {};
  return ConfigError(ConfigCode::kConflict, fmt::format("{}: {} for {} already set at line {}", at.ToString(),
                                                        attribute, owner, first->second.line));
}

struct Rule {
  std::vector<Slot> slots;
  Action apply;
};

std::vector<Slot> Prefix(std::initializer_list<const char*> words) {
  std::vector<Slot> slots;
  for (const char* w : words) slots.push_back(Kw(w));
  return slots;
}

Rule Make(std::vector<Slot> prefix, std::vector<Slot> rest, Action apply) {
  prefix.insert(prefix.end(), rest.begin(), rest.end());
  return {std::move(prefix), std::move(apply)};
}

std::vector<Rule> PkiRules() {
  auto ca = Prefix({"set", "security", "pki", "ca-profile"});
  auto local = Prefix({"set", "security", "pki", "node-local", "local-certificate"});
  auto idev = Prefix({"set", "security", "pki", "node-local", "idev-id"});
  auto ca_profile = [](DeviceConfig& c, const Values& v, const SourceLocation& at) -> CaProfile& {
    CaProfile& p = c.ca_profiles[v[0]];
    if (p.name.empty()) p = {v[0], "", "", at, {}};
    return p;
  };
  auto local_cert = [](DeviceConfig& c, const Values& v, const SourceLocation& at) -> LocalCertificate& {
    LocalCertificate& l = c.local_certificates[v[0]];
    if (l.id.empty()) l = {v[0], "", "", "", at, {}};
    return l;
  };
  // Sets one attribute of a CA profile or local certificate, once.
  auto ca_set = [=](std::string attribute, std::string CaProfile::*field) -> Action {
    return [=](DeviceConfig& c, const Values& v, const SourceLocation& at) -> Result<void> {
      CaProfile& p = ca_profile(c, v, at);
      auto once = SetOnce(p.set_at, attribute, "ca-profile " + Echo(v[0]), at);
      if (once) p.*field = v[1];
      return once;
    };
  };
  auto local_set = [=](std::string attribute, std::string LocalCertificate::*field) -> Action {
    return [=](DeviceConfig& c, const Values& v, const SourceLocation& at) -> Result<void> {
      LocalCertificate& l = local_cert(c, v, at);
      auto once = SetOnce(l.set_at, attribute, "local-certificate " + Echo(v[0]), at);
      if (once) l.*field = v[1];
      return once;
    };
  };
  auto idev_set = [](DeviceConfig& c, const std::string& attribute, const std::string& value,
                     const SourceLocation& at) -> Result<void> {
    IDEVID_TRY(SetOnce(c.idevid.set_at, attribute, "idev-id", at));
    (attribute == "nv-index" ? c.idevid.nv_index : c.idevid.key_handle) = *ParseNumber(value, 16);
    return {};
  };
  auto nv = Hex("an NV index like 0x01C90000");
  auto handle = Hex("a key handle like 0x81020000");
  return {
      Make(ca, {Value("a CA profile name"), Kw("ca-identity"), Value("a CA identity")},
           ca_set("ca-identity", &CaProfile::ca_identity)),
      Make(ca, {Value("a CA profile name"), Kw("certificate"), Value("a file path")},
           ca_set("certificate", &CaProfile::certificate)),
      Make(local, {Value("a certificate-id"), Kw("certificate"), Value("a file path")},
           local_set("certificate", &LocalCertificate::certificate)),
      Make(local, {Value("a certificate-id"), Kw("private-key"), Value("a file path")},
           local_set("private-key", &LocalCertificate::private_key)),
      Make(local, {Value("a certificate-id"), Kw("ca-profile"), Value("a CA profile name")},
           local_set("ca-profile", &LocalCertificate::ca_profile)),
      Make(idev, {Kw("nv-index"), nv, Kw("key-handle"), handle},
           [=](auto& c, auto& v, auto& at) -> Result<void> {
             IDEVID_TRY(idev_set(c, "nv-index", v[0], at));
             return idev_set(c, "key-handle", v[1], at);
           }),
      Make(idev, {Kw("nv-index"), nv},
           [=](auto& c, auto& v, auto& at) { return idev_set(c, "nv-index", v[0], at); }),
      Make(idev, {Kw("key-handle"), handle},
           [=](auto& c, auto& v, auto& at) { return idev_set(c, "key-handle", v[0], at); }),
      Make(Prefix({"set", "security", "pki", "node-local", "socket-group"}), {Value("a group name")},
           [](auto& c, auto& v, auto& at) -> Result<void> {
             auto once = SetOnce(c.node_local_set_at, "socket-group", "node-local", at);
             if (once) c.socket_group = v[0];
             return once;
           }),
  };
}

std::vector<Rule> AttestationRules() {
  auto attest = Prefix({"set", "security", "pki", "node-local", "attestation"});
  // Sets one attribute of the attestation configuration, once; `assign` stores the value.
  using Assign = std::function<void(AttestationConfig&, const std::string&)>;
  auto set = [](std::string attribute, Assign assign) -> Action {
    return [=](DeviceConfig& c, const Values& v, const SourceLocation& at) -> Result<void> {
      if (!c.attestation) c.attestation = AttestationConfig{.defined_at = at};
      IDEVID_TRY(SetOnce(c.attestation->set_at, attribute, "attestation", at));
      assign(*c.attestation, v[0]);
      return {};
    };
  };
  return {
      Make(attest, {Kw("event-log"), Value("a file path")},
           set("event-log", [](auto& a, auto& value) { a.event_log = value; })),
      Make(attest, {Kw("pcrs"), Pcrs()},
           set("pcrs", [](auto& a, auto& value) { a.pcrs = *ParsePcrSelection(value); })),
      Make(attest, {Kw("key-handle"), Hex("a key handle like 0x81020001")},
           set("key-handle", [](auto& a, auto& value) { a.key_handle = *ParseNumber(value, 16); })),
      Make(attest, {Kw("nv-index"), Hex("an NV index like 0x01C90100")},
           set("nv-index", [](auto& a, auto& value) { a.nv_index = *ParseNumber(value, 16); })),
  };
}

std::vector<Rule> SslRules() {
  auto profile = Prefix({"set", "services", "ssl", "initiation", "profile"});
  auto get = [](DeviceConfig& c, const Values& v, const SourceLocation& at) -> SslInitiationProfile& {
    SslInitiationProfile& p = c.ssl_profiles[v[0]];
    if (p.name.empty()) {
      p.name = v[0];
      p.defined_at = at;
    }
    return p;
  };
  Slot name = Value("a profile name");
  Slot versions = {"'all', 'tls12' or 'tls13'",
                   [](const std::string& t) { return t == "all" || t == "tls12" || t == "tls13"; }};
  // Sets one attribute of a profile, once; `assign` stores the value.
  using Assign = std::function<void(SslInitiationProfile&, const std::string&)>;
  auto set = [=](std::string attribute, Assign assign) -> Action {
    return [=](DeviceConfig& c, const Values& v, const SourceLocation& at) -> Result<void> {
      SslInitiationProfile& p = get(c, v, at);
      auto once = SetOnce(p.set_at, attribute, "ssl initiation profile " + Echo(v[0]), at);
      if (once) assign(p, v.size() > 1 ? v[1] : "");
      return once;
    };
  };
  return {
      Make(profile, {name, Kw("client-certificate"), Value("a certificate-id")},
           set("client-certificate", [](auto& p, auto& value) { p.client_certificate = value; })),
      Make(profile, {name, Kw("crypto-hardware-offload"), Kw("tpm")},
           set("crypto-hardware-offload", [](auto& p, auto&) { p.tpm_offload = true; })),
      Make(profile, {name, Kw("trusted-ca"), Value("a CA profile name")},
           set("trusted-ca", [](auto& p, auto& value) { p.trusted_ca = value; })),
      Make(profile, {name, Kw("server-name"), Value("a host name")},
           set("server-name", [](auto& p, auto& value) { p.server_name = value; })),
      Make(profile, {name, Kw("protocol-version"), versions},
           set("protocol-version",
               [](auto& p, auto& value) {
                 p.versions = value == "tls12"   ? TlsVersions::kTls12
                              : value == "tls13" ? TlsVersions::kTls13
                                                 : TlsVersions::kAll;
               })),
      Make(profile, {name, Kw("handshake-timeout"), Seconds()},
           set("handshake-timeout",
               [](auto& p, auto& value) {
                 p.handshake_timeout_seconds = static_cast<int>(*ParseNumber(value, 10));
               })),
  };
}

const std::vector<Rule>& Grammar() {
  static const std::vector<Rule> rules = [] {
    std::vector<Rule> all = PkiRules();
    for (auto& r : AttestationRules()) all.push_back(std::move(r));
    for (auto& r : SslRules()) all.push_back(std::move(r));
    return all;
  }();
  return rules;
}

std::string Expected(const std::vector<const Rule*>& alive, std::size_t position) {
  std::set<std::string> wanted;
  for (const Rule* r : alive) {
    if (position < r->slots.size()) wanted.insert(r->slots[position].description);
  }
  std::vector<std::string> list(wanted.begin(), wanted.end());
  if (list.size() == 1) return list[0];
  std::string last = list.back();
  list.pop_back();
  return fmt::format("{} or {}", fmt::join(list, ", "), last);
}

Result<void> ApplyStatement(DeviceConfig& config, const std::vector<Token>& tokens, SourceLocation at) {
  std::vector<const Rule*> alive;
  for (const Rule& r : Grammar()) alive.push_back(&r);
  auto error = [&](ConfigCode code, int column, const std::string& what) {
    return ConfigError(code,
                       fmt::format("{}: {}", SourceLocation{at.file, at.line, column}.ToString(), what));
  };
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::vector<const Rule*> next;
    for (const Rule* r : alive) {
      if (i < r->slots.size() && r->slots[i].accepts(tokens[i].text)) next.push_back(r);
    }
    if (next.empty()) {
      bool complete =
          std::any_of(alive.begin(), alive.end(), [&](const Rule* r) { return r->slots.size() == i; });
      if (complete) {
        return error(ConfigCode::kSyntax, tokens[i].column,
                     fmt::format("unexpected {} after a complete statement", Echo(tokens[i].text)));
      }
      // Where only keywords fit, the word starts a statement we do not know; otherwise a value
      // is not of its kind.
      bool value_expected = std::any_of(alive.begin(), alive.end(), [&](const Rule* r) {
        return i < r->slots.size() && !r->slots[i].keyword;
      });
      return error(value_expected ? ConfigCode::kBadValue : ConfigCode::kUnknownStatement, tokens[i].column,
                   fmt::format("expected {}, got {}", Expected(alive, i), Echo(tokens[i].text)));
    }
    alive = std::move(next);
  }
  for (const Rule* r : alive) {
    if (r->slots.size() != tokens.size()) continue;
    Values values;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (!r->slots[i].keyword) values.push_back(tokens[i].text);
    }
    at.column = tokens.front().column;
    return r->apply(config, values, at);
  }
  const Token& last = tokens.back();
  return error(ConfigCode::kSyntax, last.column + static_cast<int>(last.text.size()),
               fmt::format("incomplete statement: expected {} after {}", Expected(alive, tokens.size()),
                           Echo(last.text)));
}

// Where a profile's offload and certificate disagree: at its client-certificate statement, or at
// its crypto-hardware-offload statement when it has no client-certificate.
const SourceLocation& OffloadMismatchAt(const SslInitiationProfile& p) {
  for (const char* attribute : {"client-certificate", "crypto-hardware-offload"}) {
    if (auto it = p.set_at.find(attribute); it != p.set_at.end()) return it->second;
  }
  return p.defined_at;
}

Result<void> CheckReferences(const DeviceConfig& c) {
  auto at = [](const SourceLocation& l) { return l.ToString(); };
  for (const auto& [id, cert] : c.local_certificates) {
    if (id == kIdevidCertificateId) {
      return ConfigError(ConfigCode::kConflict,
                         fmt::format("{}: certificate-id idev-id is reserved for the TPM-held "
                                     "identity; name the file certificate otherwise",
                                     at(cert.defined_at)));
    }
    if (cert.certificate.empty() || cert.private_key.empty()) {
      return ConfigError(ConfigCode::kMissing,
                         fmt::format("{}: local-certificate {} needs both 'certificate' and "
                                     "'private-key'",
                                     at(cert.defined_at), Echo(id)));
    }
    if (!cert.ca_profile.empty() && !c.ca_profiles.contains(cert.ca_profile)) {
      return ConfigError(ConfigCode::kReference,
                         fmt::format("{}: local-certificate {} names ca-profile {}, which is not "
                                     "defined",
                                     at(cert.defined_at), Echo(id), Echo(cert.ca_profile)));
    }
  }
  for (const auto& [name, ca] : c.ca_profiles) {
    if (ca.certificate.empty()) {
      return ConfigError(ConfigCode::kMissing, fmt::format("{}: ca-profile {} has no 'certificate'",
                                                           at(ca.defined_at), Echo(name)));
    }
  }
  if (c.attestation && c.attestation->event_log.empty()) {
    return ConfigError(ConfigCode::kMissing,
                       fmt::format("{}: attestation needs 'event-log' (the measured-boot "
                                   "log it sends with each quote)",
                                   at(c.attestation->defined_at)));
  }
  for (const auto& [name, p] : c.ssl_profiles) {
    bool idevid = p.client_certificate == kIdevidCertificateId;
    if (p.client_certificate.empty()) {
      return ConfigError(ConfigCode::kMissing,
                         fmt::format("{}: ssl initiation profile {} has no client-certificate",
                                     at(p.defined_at), Echo(name)));
    }
    if (!idevid && !c.local_certificates.contains(p.client_certificate)) {
      return ConfigError(ConfigCode::kReference,
                         fmt::format("{}: ssl initiation profile {} names client-certificate {}, "
                                     "which is neither idev-id nor a defined local-certificate",
                                     at(p.defined_at), Echo(name), Echo(p.client_certificate)));
    }
    if (p.tpm_offload != idevid) {
      return ConfigError(ConfigCode::kConflict,
                         fmt::format("{}: ssl initiation profile {}: crypto-hardware-offload tpm "
                                     "goes with client-certificate idev-id, and only with it",
                                     at(OffloadMismatchAt(p)), Echo(name)));
    }
    if (p.trusted_ca.empty() || !c.ca_profiles.contains(p.trusted_ca)) {
      return ConfigError(p.trusted_ca.empty() ? ConfigCode::kMissing : ConfigCode::kReference,
                         fmt::format("{}: ssl initiation profile {} needs trusted-ca naming a "
                                     "defined ca-profile{}",
                                     at(p.defined_at), Echo(name),
                                     p.trusted_ca.empty() ? "" : " (not: " + Echo(p.trusted_ca) + ")"));
    }
  }
  return {};
}

// Each ca-profile's certificate file must be readable: a CA that cannot be loaded would leave
// every profile trusting it without anchors, so it stops a load at the statement that names it.
Result<void> CheckCaFilesReadable(const DeviceConfig& c) {
  for (const auto& [name, ca] : c.ca_profiles) {
    std::ifstream in(ca.certificate, std::ios::binary);
    std::error_code kind_error;
    // A directory opens as a stream on Linux: it is refused here, not later as a bad PEM.
    bool directory = std::filesystem::is_directory(ca.certificate, kind_error);
    if (in && !directory) continue;
    int error = directory ? EISDIR : errno;
    auto statement = ca.set_at.find("certificate");
    const SourceLocation& where = statement == ca.set_at.end() ? ca.defined_at : statement->second;
    return ConfigError(ConfigCode::kFile,
                       fmt::format("{}: ca-profile {} certificate {} cannot be read: {}", where.ToString(),
                                   Echo(name), Echo(ca.certificate, kMaxPathBytes), std::strerror(error)));
  }
  return {};
}

}  // namespace

// The file name is escaped but not cut: paths are as long as the system allows.
std::string SourceLocation::ToString() const {
  return fmt::format("{}:{}:{}", DisplayText(file, kMaxPathBytes), line, column);
}

Result<DeviceConfig> ParseDeviceConfig(std::string_view text, const std::string& file_name) {
  if (text.starts_with(kUtf8Bom)) text.remove_prefix(kUtf8Bom.size());
  DeviceConfig config;
  int line_number = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    SourceLocation at{file_name, ++line_number, 1};
    IDEVID_ASSIGN_OR_RETURN(auto tokens, Tokenize(text.substr(start, end - start), at));
    if (!tokens.empty()) IDEVID_TRY(ApplyStatement(config, tokens, at));
    start = end + 1;
  }
  IDEVID_TRY(CheckReferences(config));
  return config;
}

Result<DeviceConfig> LoadDeviceConfig(const std::filesystem::path& path) {
  auto text = ReadFileText(path);
  if (!text) {
    // A configuration named but not there (or not readable) is for its user to fix, not a fault
    // of the machine: kConfig, like any other problem with the configuration.
    int code = static_cast<int>(text.error().code());
    if (code == ENOENT || code == ENOTDIR || code == EACCES || code == EISDIR) {
      return ConfigError(ConfigCode::kFile,
                         fmt::format("configuration file {} cannot be read: {}",
                                     Echo(path.string(), kMaxPathBytes), std::strerror(code)));
    }
    return Fail(text.error());
  }
  IDEVID_ASSIGN_OR_RETURN(DeviceConfig config, ParseDeviceConfig(*text, path.string()));
  IDEVID_TRY(CheckCaFilesReadable(config));
  return config;
}

}  // namespace idevid
