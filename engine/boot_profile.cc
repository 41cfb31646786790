#include "engine/boot_profile.h"

#include <functional>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "core/display_text.h"
#include "core/event_log.h"
#include "core/file_io.h"
#include "core/tpm_sign.h"

namespace idevid {
namespace {

constexpr std::size_t kSha256HexDigits = 64;

Bytes Sha256(std::span<const std::uint8_t> data) {
  return HashMessage(kAlgSha256, data).value_or(Bytes(32, 0));  // fails only without SHA-256
}

Bytes Sha256Text(std::string_view text) {
  return Sha256(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

BootComponent TextComponent(std::string name, std::string_view measured) {
  return {std::move(name), Sha256Text(measured)};
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 64 hex digits as 32 bytes; nullopt for anything else.
std::optional<Bytes> ParseSha256Hex(std::string_view hex) {
  if (hex.size() != kSha256HexDigits) return std::nullopt;
  Bytes out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int high = HexDigit(hex[i]);
    int low = HexDigit(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>(high * 16 + low));
  }
  return out;
}

class ProfileParser {
 public:
  ProfileParser(std::string name, std::filesystem::path base)
      : name_(std::move(name)), base_(std::move(base)) {}

  Result<BootProfile> Parse(const YAML::Node& root) {
    if (root.IsNull()) return profile_;
    if (!root.IsMap())
      return At(root, ConfigCode::kSyntax, "a boot profile must be a mapping of keys to values");
    std::set<std::string> seen;
    for (const auto& entry : root) {
      auto key = entry.first.as<std::string>();
      if (!seen.insert(key).second) return Twice(entry.first, key);
      IDEVID_TRY(Field(entry.first, entry.second));
    }
    return profile_;
  }

 private:
  Result<void> Field(const YAML::Node& key_node, const YAML::Node& value) {
    const std::string key = key_node.Scalar();
    const std::map<std::string, std::function<Result<void>(const YAML::Node&)>> fields = {
        {"name", [&](const YAML::Node& v) { return Text(v, key, profile_.name); }},
        {"firmware", [&](const YAML::Node& v) { return Component(v, key, profile_.firmware); }},
        {"boot_loader", [&](const YAML::Node& v) { return Component(v, key, profile_.boot_loader); }},
        {"kernel", [&](const YAML::Node& v) { return Component(v, key, profile_.kernel); }},
        {"initrd", [&](const YAML::Node& v) { return Component(v, key, profile_.initrd); }},
        {"command_line", [&](const YAML::Node& v) { return CommandLine(v); }},
    };
    auto it = fields.find(key);
    if (it == fields.end()) {
      std::vector<std::string> known;
      for (const auto& [k, f] : fields) known.push_back(k);
      return At(key_node, ConfigCode::kUnknownStatement,
                fmt::format("unknown key '{}'; the keys are: {}", DisplayText(key), fmt::join(known, ", ")));
    }
    return it->second(value);
  }

  Result<void> Text(const YAML::Node& v, const std::string& key, std::string& out) {
    if (!v.IsScalar() || v.Scalar().empty()) {
      return At(v, ConfigCode::kBadValue, fmt::format("'{}' must be a non-empty text value", key));
    }
    out = v.Scalar();
    return {};
  }

  // The entries of a component's mapping, each key once and among `allowed`.
  Result<std::map<std::string, YAML::Node>> Entries(const YAML::Node& v, const std::string& key,
                                                    const std::vector<std::string>& allowed) {
    if (!v.IsMap()) {
      return At(v, ConfigCode::kBadValue,
                fmt::format("'{}' must be a mapping with {}", key, fmt::join(allowed, ", ")));
    }
    std::map<std::string, YAML::Node> entries;
    for (const auto& entry : v) {
      auto name = entry.first.as<std::string>();
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        return At(entry.first, ConfigCode::kUnknownStatement,
                  fmt::format("unknown key '{}.{}'; the keys are: {}", key, DisplayText(name),
                              fmt::join(allowed, ", ")));
      }
      if (!entries.emplace(name, entry.second).second) return Twice(entry.first, key + "." + name);
    }
    return entries;
  }

  Result<void> Component(const YAML::Node& v, const std::string& key, BootComponent& out) {
    IDEVID_ASSIGN_OR_RETURN(auto entries, Entries(v, key, {"name", "path", "text", "digest"}));
    if (entries.count("name") == 0) return At(v, ConfigCode::kMissing, fmt::format("'{}' needs a name", key));
    IDEVID_TRY(Text(entries["name"], key + ".name", out.name));
    std::vector<std::string> given;
    for (const char* measure : {"path", "text", "digest"}) {
      if (entries.count(measure) != 0) given.push_back(measure);
    }
    if (given.size() != 1) {
      return At(v, given.empty() ? ConfigCode::kMissing : ConfigCode::kConflict,
                fmt::format("'{}' needs exactly one of path, text and digest", key));
    }
    return Measure(entries[given[0]], key + "." + given[0], given[0], out.digest);
  }

  Result<void> Measure(const YAML::Node& v, const std::string& key, const std::string& how, Bytes& digest) {
    std::string value;
    IDEVID_TRY(Text(v, key, value));
    if (how == "text") {
      digest = Sha256Text(value);
    } else if (how == "digest") {
      auto parsed = ParseSha256Hex(value);
      if (!parsed)
        return At(v, ConfigCode::kBadValue, fmt::format("'{}' must be a SHA-256 as 64 hex digits", key));
      digest = *parsed;
    } else {
      std::filesystem::path path = base_ / value;  // an absolute value replaces the base
      auto bytes = ReadFileBytes(path);
      if (!bytes) {
        return At(v, ConfigCode::kFile, fmt::format("cannot measure '{}': {}", key, bytes.error().message()));
      }
      digest = Sha256(*bytes);
    }
    return {};
  }

  Result<void> CommandLine(const YAML::Node& v) {
    IDEVID_ASSIGN_OR_RETURN(auto entries, Entries(v, "command_line", {"text"}));
    if (entries.count("text") == 0) return At(v, ConfigCode::kMissing, "'command_line' needs its text");
    return Text(entries["text"], "command_line.text", profile_.command_line);
  }

  tl::unexpected<Error> Twice(const YAML::Node& at, const std::string& key) const {
    return At(at, ConfigCode::kConflict, fmt::format("'{}' is given twice; keep one", DisplayText(key)));
  }

  // A kConfig error with `code` at the place `at` marks in the file.
  tl::unexpected<Error> At(const YAML::Node& at, ConfigCode code, const std::string& what) const {
    const YAML::Mark mark = at.Mark();
    return ConfigError(code, fmt::format("{}:{}:{}: {}", name_, mark.line + 1, mark.column + 1, what));
  }

  std::string name_;
  std::filesystem::path base_;
  BootProfile profile_ = DefaultBootProfile();
};

}  // namespace

BootProfile DefaultBootProfile() {
  BootProfile profile;
  profile.firmware = TextComponent("SyntheticFW 1.0", "synthetic platform firmware 1.0");
  profile.boot_loader = TextComponent("\\EFI\\debian\\shimx64.efi", "shim 15.7 signed by the test CA");
  profile.kernel = TextComponent("/boot/vmlinuz-6.1.0-18-amd64", "Linux 6.1.0-18-amd64 kernel image");
  profile.initrd = TextComponent("/boot/initrd.img-6.1.0-18-amd64", "initramfs for 6.1.0-18-amd64");
  profile.command_line = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=/dev/vda2 ro console=ttyS0";
  return profile;
}

Result<BootProfile> ParseBootProfile(const std::string& text, const std::string& name,
                                     const std::filesystem::path& base) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return ConfigError(ConfigCode::kSyntax, fmt::format("{}:{}:{}: not YAML: {}", name, e.mark.line + 1,
                                                        e.mark.column + 1, e.msg));
  }
  try {
    return ProfileParser(name, base).Parse(root);
  } catch (const YAML::Exception& e) {  // a key that is not text
    return ConfigError(ConfigCode::kSyntax,
                       fmt::format("{}:{}:{}: {}", name, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

Result<BootProfile> LoadBootProfile(const std::filesystem::path& path) {
  IDEVID_ASSIGN_OR_RETURN(std::string text, ReadFileText(path), "reading the boot profile");
  return ParseBootProfile(text, path.string(), std::filesystem::absolute(path).parent_path());
}

}  // namespace idevid
