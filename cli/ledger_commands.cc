#include "cli/ledger_commands.h"

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/file_io.h"
#include "core/ledger.h"
#include "engine/exit_codes.h"
#include "provisioning/factory.h"
#include "provisioning/ledger_export.h"

namespace idevid::cli {
namespace {

struct LedgerArgs {
  std::string ledger;   // --ledger SPEC
  std::string factory;  // --factory DIR: its factory.json names the ledger
  std::optional<std::string> serial;
  std::string format = "csv";
  std::string out;  // empty: standard output
};

Result<std::unique_ptr<Ledger>> OpenNamedLedger(const LedgerArgs& args) {
  if (!args.ledger.empty()) return OpenLedger(args.ledger);
  IDEVID_ASSIGN_OR_RETURN(std::string spec, FactoryLedgerSpec(args.factory));  // no token, no PIN
  return OpenLedger(spec);
}

// The units asked for: all, or the one of --serial (nullopt when the ledger has none).
Result<std::optional<std::vector<UnitRow>>> SelectedUnits(const LedgerArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(auto ledger, OpenNamedLedger(args), "opening the ledger");
  if (!args.serial) {
    IDEVID_ASSIGN_OR_RETURN(std::vector<UnitRow> units, ledger->Units(), "reading the ledger {}",
                            ledger->location());
    return std::optional<std::vector<UnitRow>>(std::move(units));
  }
  IDEVID_ASSIGN_OR_RETURN(std::optional<UnitRow> unit, ledger->FindBySerial(*args.serial),
                          "reading the ledger {}", ledger->location());
  if (!unit) {
    std::cerr << fmt::format("no unit {} in the ledger {}\n", QuotedDisplayText(*args.serial),
                             DisplayText(ledger->location()));
    return std::optional<std::vector<UnitRow>>();
  }
  return std::optional<std::vector<UnitRow>>(std::vector<UnitRow>{std::move(*unit)});
}

Result<std::string> Exported(const LedgerArgs& args, const std::vector<UnitRow>& units) {
  if (args.format == "json") {
    IDEVID_ASSIGN_OR_RETURN(nlohmann::json doc, LedgerJson(units));
    return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  if (args.format == "inventory") return LedgerInventory(units);
  return LedgerCsv(units);
}

int Show(const LedgerArgs& args) {
  auto units = SelectedUnits(args);
  if (!units) return ReportError(units.error());
  if (!*units) return kExitFail;
  std::cout << LedgerShowText(**units);
  if ((*units)->empty()) std::cout << "no units\n";
  return kExitPass;
}

int Export(const LedgerArgs& args) {
  auto units = SelectedUnits(args);
  if (!units) return ReportError(units.error());
  if (!*units) return kExitFail;
  auto text = Exported(args, **units);
  if (!text) return ReportError(text.error());
  if (args.out.empty()) {
    std::cout << *text;
    return kExitPass;
  }
  if (auto written = WriteFileAtomic(args.out, *text, 0644); !written) return ReportError(written.error());
  return kExitPass;
}

void AddSource(CLI::App& cmd, LedgerArgs& args) {
  CLI::Option_group* source = cmd.add_option_group("ledger", "Which ledger (one of the two)");
  source->add_option("--ledger", args.ledger,
                     "The ledger: sqlite:PATH, postgresql://... or a libpq keyword/value string");
  source->add_option("--factory", args.factory,
                     "Or the factory directory whose ledger (factory.json) to read");
  source->require_option(1);
  cmd.add_option("--serial", args.serial, "Only this unit (exit 1 when the ledger has none)");
}

}  // namespace

void AddLedgerCommands(CLI::App& app, int* exit_code) {
  CLI::App* ledger = app.add_subcommand(
      "ledger", "The record of every unit: reserved, issued, committed (with its line check), revoked");
  ledger->require_subcommand(1);

  auto show_args = std::make_shared<LedgerArgs>();
  CLI::App* show = ledger->add_subcommand(
      "show", "Print each unit: serial, model, state, station, times, line check, certificate, revocation");
  AddSource(*show, *show_args);
  show->callback([show_args, exit_code] { *exit_code = Show(*show_args); });

  auto export_args = std::make_shared<LedgerArgs>();
  CLI::App* exported = ledger->add_subcommand(
      "export",
      "Write the units as csv (RFC 4180, header first), json (every column, the certificate as PEM, the "
      "per-unit record; never a private key) or inventory (the cloud's 'serial,model' file for idevid "
      "cloud --inventory: committed units whose line check passed, not revoked)");
  AddSource(*exported, *export_args);
  exported->add_option("--format", export_args->format, "csv, json or inventory")
      ->check(CLI::IsMember({"csv", "json", "inventory"}))
      ->capture_default_str();
  exported->add_option("--out", export_args->out, "Write to FILE (atomically) instead of standard output");
  exported->callback([export_args, exit_code] { *exit_code = Export(*export_args); });
}

}  // namespace idevid::cli
