#include "device/pkid/operational_command.h"

#include <sstream>

#include <fmt/format.h>

#include "core/display_text.h"

namespace idevid {
namespace {

std::vector<std::string> Words(std::string_view line) {
  std::vector<std::string> words;
  std::istringstream in{std::string(line)};
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

bool StartsWith(const std::vector<std::string>& words, const std::vector<std::string>& prefix) {
  return words.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), words.begin());
}

// The line is echoed escaped and cut (a client may send a kilobyte of anything printable).
tl::unexpected<Error> Unknown(std::string_view line) {
  return UsageError(UsageCode::kInvalidArgument,
                    fmt::format("unknown command '{}'; known commands:\n  {}", DisplayText(line),
                                fmt::join(KnownCommands(), "\n  ")));
}

const std::vector<std::string> kShow = {"show", "security", "pki", "node-local", "local-certificate"};
const std::vector<std::string> kRequest = {"request", "security", "pki", "node-local"};

// show ... local-certificate [certificate-id NAME] [brief|detail]
Result<OperationalCommand> ParseShow(const std::vector<std::string>& w, std::string_view line) {
  OperationalCommand c{OperationalCommand::Kind::kShow, std::nullopt, OperationalCommand::Detail::kNormal};
  std::size_t i = kShow.size();
  if (i + 1 < w.size() && w[i] == "certificate-id") {
    c.certificate_id = w[i + 1];
    i += 2;
  }
  if (i < w.size() && (w[i] == "brief" || w[i] == "detail")) {
    c.detail = w[i] == "brief" ? OperationalCommand::Detail::kBrief : OperationalCommand::Detail::kDetail;
    ++i;
  }
  if (i != w.size()) return Unknown(line);
  return c;
}

// request ... local-certificate verify|export certificate-id NAME
Result<OperationalCommand> ParseRequest(const std::vector<std::string>& w, std::string_view line) {
  std::size_t i = kRequest.size();
  if (w.size() == i + 1 && w[i] == "reload") {
    return OperationalCommand{OperationalCommand::Kind::kReload, std::nullopt};
  }
  if (w.size() == i + 4 && w[i] == "local-certificate" && w[i + 2] == "certificate-id" &&
      (w[i + 1] == "verify" || w[i + 1] == "export")) {
    auto kind = w[i + 1] == "verify" ? OperationalCommand::Kind::kVerify : OperationalCommand::Kind::kExport;
    return OperationalCommand{kind, w[i + 3]};
  }
  return Unknown(line);
}

}  // namespace

const std::vector<std::string>& KnownCommands() {
  static const std::vector<std::string> commands = {
      "show security pki node-local local-certificate [certificate-id NAME] [brief|detail]",
      "request security pki node-local local-certificate verify certificate-id NAME",
      "request security pki node-local local-certificate export certificate-id NAME",
      "request security pki node-local reload",
  };
  return commands;
}

Result<OperationalCommand> ParseOperationalCommand(std::string_view line) {
  if (line.size() > kMaxCommandLength) {
    return UsageError(
        UsageCode::kInvalidArgument,
        fmt::format("command of {} bytes refused: at most {} bytes", line.size(), kMaxCommandLength));
  }
  for (char c : line) {
    auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t') || byte > 0x7e) {
      return UsageError(UsageCode::kInvalidArgument,
                        fmt::format("command refused: byte {:#04x} is not printable ASCII", byte));
    }
  }
  auto words = Words(line);
  if (StartsWith(words, kShow)) return ParseShow(words, line);
  if (StartsWith(words, kRequest)) return ParseRequest(words, line);
  return Unknown(line);
}

}  // namespace idevid
