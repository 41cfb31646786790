#include "provisioning/ledger_export.h"

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/utc_time.h"
#include "core/x509.h"

namespace idevid {
namespace {

std::string TimeText(const std::optional<LedgerClock::time_point>& t) { return t ? UtcTimestamp(*t) : ""; }

// RFC 4180 2.6/2.7: a field with a comma, a quote or a line break is quoted, quotes doubled.
std::string CsvField(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::vector<std::string> CsvColumns(const UnitRow& u) {
  return {u.serial,
          u.model,
          std::string(UnitStateName(u.state)),
          u.station,
          u.line_check,
          u.ek_sha256,
          u.idevid_key_sha256,
          u.certificate_serial,
          UtcTimestamp(u.reserved_at),
          TimeText(u.issued_at),
          TimeText(u.committed_at),
          u.revocation ? std::string(RevocationReasonName(u.revocation->reason)) : "",
          u.revocation ? UtcTimestamp(u.revocation->since) : ""};
}

}  // namespace

std::string LedgerShowText(const std::vector<UnitRow>& units) {
  std::string out;
  for (const UnitRow& u : units) {
    out += fmt::format("{}  model {}  {}  station {}\n", DisplayText(u.serial), DisplayText(u.model),
                       UnitStateName(u.state), u.station.empty() ? "-" : DisplayText(u.station));
    out += fmt::format("  reserved {}", UtcTimestamp(u.reserved_at));
    if (u.issued_at) out += fmt::format("  issued {}", UtcTimestamp(*u.issued_at));
    if (u.committed_at) out += fmt::format("  committed {}", UtcTimestamp(*u.committed_at));
    out += "\n";
    if (!u.line_check.empty()) out += fmt::format("  line check {}\n", DisplayText(u.line_check));
    if (!u.certificate_serial.empty()) {
      out +=
          fmt::format("  certificate serial {}  key sha256 {}\n", u.certificate_serial, u.idevid_key_sha256);
    }
    out += fmt::format("  EK sha256 {}\n", u.ek_sha256);
    if (u.revocation) {
      out += fmt::format("  revoked {} since {}\n", RevocationReasonName(u.revocation->reason),
                         UtcTimestamp(u.revocation->since));
    }
  }
  return out;
}

std::string LedgerCsv(const std::vector<UnitRow>& units) {
  std::string out = std::string(kLedgerCsvHeader) + "\r\n";  // RFC 4180 2.1: CRLF
  for (const UnitRow& u : units) {
    std::vector<std::string> fields;
    for (const auto& column : CsvColumns(u)) fields.push_back(CsvField(column));
    out += fmt::format("{}\r\n", fmt::join(fields, ","));
  }
  return out;
}

Result<nlohmann::json> UnitJson(const UnitRow& u) {
  nlohmann::json j = {
      {"serial", u.serial},
      {"model", u.model},
      {"state", UnitStateName(u.state)},
      {"station", u.station},
      {"line_check", u.line_check},
      {"ek_sha256", u.ek_sha256},
      {"idevid_key_sha256", u.idevid_key_sha256},
      {"certificate_serial", u.certificate_serial},
      {"reserved_at", UtcTimestamp(u.reserved_at)},
      {"issued_at", u.issued_at ? nlohmann::json(UtcTimestamp(*u.issued_at)) : nullptr},
      {"committed_at", u.committed_at ? nlohmann::json(UtcTimestamp(*u.committed_at)) : nullptr},
      {"record", u.record},
      {"revocation", nullptr}};
  if (!u.certificate.empty()) {
    IDEVID_ASSIGN_OR_RETURN(ossl::Cert cert, ParseCertificate(u.certificate), "the certificate of unit {}",
                            QuotedDisplayText(u.serial));
    IDEVID_ASSIGN_OR_RETURN(std::string pem, CertificatePem(*cert));
    j["certificate_pem"] = pem;
  }
  if (u.revocation) {
    j["revocation"] = {{"reason", RevocationReasonName(u.revocation->reason)},
                       {"since", UtcTimestamp(u.revocation->since)}};
  }
  return j;
}

Result<nlohmann::json> LedgerJson(const std::vector<UnitRow>& units) {
  nlohmann::json list = nlohmann::json::array();
  for (const UnitRow& u : units) {
    IDEVID_ASSIGN_OR_RETURN(nlohmann::json j, UnitJson(u));
    list.push_back(std::move(j));
  }
  return nlohmann::json{{"units", std::move(list)}};
}

Result<std::string> LedgerInventory(const std::vector<UnitRow>& units) {
  std::string out = "serial,model\n";
  for (const UnitRow& u : units) {
    if (u.state != UnitState::kCommitted || u.line_check != "PASS" || u.revocation) continue;
    for (const std::string* field : {&u.serial, &u.model}) {
      if (field->find_first_of(",\r\n") != std::string::npos) {
        return UsageError(UsageCode::kInvalidArgument,
                          fmt::format("unit {} cannot be listed in an inventory: {} holds a comma or a line "
                                      "break; export it as csv or json",
                                      QuotedDisplayText(u.serial), QuotedDisplayText(*field)));
      }
    }
    out += u.serial + "," + u.model + "\n";
  }
  return out;
}

}  // namespace idevid
