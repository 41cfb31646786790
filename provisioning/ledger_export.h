// The ledger's units as people and other programs read them: human lines (`idevid ledger show`),
// CSV, JSON, and the cloud's inventory ("serial,model", cloud/inventory.h). Never a private key:
// the ledger holds none.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ledger.h"
#include "core/result.h"

namespace idevid {

// The columns of the CSV export, in order (its header line).
inline constexpr const char* kLedgerCsvHeader =
    "serial,model,state,station,line_check,ek_sha256,idevid_key_sha256,certificate_serial,reserved_at,"
    "issued_at,committed_at,revocation_reason,revoked_at";

// A few indented lines per unit: serial, model, state, station, times, line check, revocation.
// Outside input is escaped.
std::string LedgerShowText(const std::vector<UnitRow>& units);

// RFC 4180 CSV with kLedgerCsvHeader first; times in UTC ("2026-11-28T12:00:01Z"), empty when
// not reached.
std::string LedgerCsv(const std::vector<UnitRow>& units);

// One unit as JSON: every column of the CSV, the certificate as PEM ("certificate_pem", absent
// while reserved), the per-unit record and the revocation (null when none). kOpenSsl when a
// certificate does not parse.
Result<nlohmann::json> UnitJson(const UnitRow& unit);
// {"units":[...]} of UnitJson.
Result<nlohmann::json> LedgerJson(const std::vector<UnitRow>& units);

// The cloud's inventory: "serial,model" then one line per unit the cloud should expect, i.e.
// committed with a passed line check and not revoked. kUsage/kInvalidArgument naming the unit
// when a serial or model holds a comma or a line break, which the format cannot carry.
Result<std::string> LedgerInventory(const std::vector<UnitRow>& units);

}  // namespace idevid
