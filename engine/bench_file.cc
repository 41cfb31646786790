#include "engine/bench_file.h"

#include <algorithm>
#include <functional>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "core/display_text.h"
#include "core/file_io.h"
#include "engine/limits.h"

namespace idevid {
namespace {

class BenchParser {
 public:
  BenchParser(std::string name, std::filesystem::path base, std::vector<std::string> known_suites)
      : name_(std::move(name)), base_(std::move(base)), known_suites_(std::move(known_suites)) {}

  Result<BenchFile> Parse(const YAML::Node& root) {
    if (root.IsNull()) return BenchFile{};
    if (!root.IsMap())
      return At(root, ConfigCode::kSyntax, "the bench file must be a mapping of keys to values");
    std::set<std::string> seen;
    for (const auto& entry : root) {
      auto key = entry.first.as<std::string>();
      if (!seen.insert(key).second) return Twice(entry.first, key);
      IDEVID_TRY(Field(entry.first, entry.second));
    }
    return bench_;
  }

 private:
  Result<void> Field(const YAML::Node& key_node, const YAML::Node& value) {
    const std::string key = key_node.Scalar();
    const std::map<std::string, std::function<Result<void>(const YAML::Node&)>> fields = {
        {"target", [&](const YAML::Node& v) { return Text(v, key, bench_.target); }},
        {"station", [&](const YAML::Node& v) { return Text(v, key, bench_.station); }},
        {"provision", [&](const YAML::Node& v) { return Flag(v, bench_.provision); }},
        {"factory", [&](const YAML::Node& v) { return Path(v, key, bench_.factory); }},
        {"factory_ca", [&](const YAML::Node& v) { return Path(v, key, bench_.factory_ca); }},
        {"report", [&](const YAML::Node& v) { return Path(v, key, bench_.report); }},
        {"unit", [&](const YAML::Node& v) { return Unit(v); }},
        {"suites", [&](const YAML::Node& v) { return Suites(v); }},
        {"limits", [&](const YAML::Node& v) { return Limits(v); }},
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

  Result<void> Text(const YAML::Node& v, const std::string& key, std::optional<std::string>& out) {
    if (!v.IsScalar() || v.Scalar().empty()) {
      return At(v, ConfigCode::kBadValue, fmt::format("'{}' must be a non-empty text value", key));
    }
    out = v.Scalar();
    return {};
  }

  Result<void> Path(const YAML::Node& v, const std::string& key, std::optional<std::string>& out) {
    auto text = Text(v, key, out);
    if (text && std::filesystem::path(*out).is_relative()) out = (base_ / *out).lexically_normal().string();
    return text;
  }

  Result<void> Flag(const YAML::Node& v, std::optional<bool>& out) {
    bool value = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, value)) {
      return At(v, ConfigCode::kBadValue, "'provision' must be true or false");
    }
    out = value;
    return {};
  }

  Result<void> Unit(const YAML::Node& v) {
    if (!v.IsMap()) return At(v, ConfigCode::kBadValue, "'unit' must be a mapping with serial and model");
    std::set<std::string> seen;
    for (const auto& entry : v) {
      auto key = entry.first.as<std::string>();
      if (!seen.insert(key).second) return Twice(entry.first, "unit." + key);
      if (key != "serial" && key != "model") {
        return At(entry.first, ConfigCode::kUnknownStatement,
                  fmt::format("unknown key 'unit.{}'; the keys are: serial, model", DisplayText(key)));
      }
      IDEVID_TRY(Text(entry.second, "unit." + key, key == "serial" ? bench_.serial : bench_.model));
    }
    return {};
  }

  Result<void> Suites(const YAML::Node& v) {
    if (!v.IsSequence()) return At(v, ConfigCode::kBadValue, "'suites' must be a list of suite names");
    for (const auto& suite : v) {
      std::optional<std::string> name;
      IDEVID_TRY(Text(suite, "suites", name));
      if (!known_suites_.empty() &&
          std::find(known_suites_.begin(), known_suites_.end(), *name) == known_suites_.end()) {
        return At(suite, ConfigCode::kReference,
                  fmt::format("unknown suite '{}'; the suites are: {}", DisplayText(*name),
                              fmt::join(known_suites_, ", ")));
      }
      bench_.suites.push_back(*name);
    }
    return {};
  }

  Result<void> Limits(const YAML::Node& v) {
    if (!v.IsMap())
      return At(v, ConfigCode::kBadValue, "'limits' must be a mapping of limit names to numbers");
    PerformanceLimits check;
    for (const auto& entry : v) {
      auto key = entry.first.as<std::string>();
      if (bench_.limits.count(key) != 0) return Twice(entry.first, "limits." + key);
      double value = 0;
      if (!entry.second.IsScalar() || !YAML::convert<double>::decode(entry.second, value)) {
        return At(entry.second, ConfigCode::kBadValue,
                  fmt::format("limit '{}' must be a number", DisplayText(key)));
      }
      if (auto known = check.Set(key, value); !known) {
        // Where the mistake is: the name of an unknown limit, else the value.
        return At(check.Defaults().count(key) == 0 ? entry.first : entry.second,
                  static_cast<ConfigCode>(known.error().code()), known.error().message());
      }
      bench_.limits[key] = value;
    }
    return {};
  }

  // yaml-cpp keeps the last of two equal keys; a bench file that says a thing twice is a mistake.
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
  std::vector<std::string> known_suites_;
  BenchFile bench_;
};

}  // namespace

Result<BenchFile> ParseBenchFile(const std::string& text, const std::string& name,
                                 const std::filesystem::path& base,
                                 const std::vector<std::string>& known_suites) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return ConfigError(ConfigCode::kSyntax, fmt::format("{}:{}:{}: not YAML: {}", name, e.mark.line + 1,
                                                        e.mark.column + 1, e.msg));
  }
  try {
    return BenchParser(name, base, known_suites).Parse(root);
  } catch (const YAML::Exception& e) {  // a key that is not text
    return ConfigError(ConfigCode::kSyntax,
                       fmt::format("{}:{}:{}: {}", name, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

Result<BenchFile> LoadBenchFile(const std::filesystem::path& path,
                                const std::vector<std::string>& known_suites) {
  IDEVID_ASSIGN_OR_RETURN(std::string text, ReadFileText(path), "reading the bench file");
  return ParseBenchFile(text, path.string(), std::filesystem::absolute(path).parent_path(), known_suites);
}

}  // namespace idevid
