#include "cli/revocation_commands.h"

#include <iostream>
#include <memory>
#include <variant>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/pkcs11_options.h"
#include "core/file_io.h"
#include "core/utc_time.h"
#include "engine/exit_codes.h"
#include "provisioning/factory.h"
#include "provisioning/revocation.h"

namespace idevid::cli {
namespace {

struct RevokeArgs {
  std::string dir;
  std::string serial;
  std::string reason;
  std::string ledger;
  std::string pkcs11_pin_file;  // the token's PIN, for a factory whose keys are in a token
  unsigned next_update_days = 7;
  bool json = false;
};

struct CrlArgs {
  std::string dir;
  std::string out;
  std::string ledger;
  std::string pkcs11_pin_file;  // the token's PIN, for a factory whose keys are in a token
  unsigned next_update_days = 7;
  bool der = false;
};

nlohmann::json CrlJson(const std::filesystem::path& path, const CrlContent& crl) {
  return {{"path", path.string()},
          {"number", crl.number},
          {"entries", crl.entries.size()},
          {"this_update", UtcTimestamp(crl.this_update)},
          {"next_update", UtcTimestamp(crl.next_update)}};
}

std::string CrlLine(const std::filesystem::path& path, const CrlContent& crl) {
  return fmt::format("CRL number {} ({} revoked, next update {}): {}", crl.number, crl.entries.size(),
                     UtcTimestamp(crl.next_update), path.string());
}

void PrintRevoked(const RevokeOutcome& done, bool json) {
  const Revocation& revocation = *done.unit.revocation;
  if (json) {
    nlohmann::json j = {{"serial", done.unit.serial},
                        {"certificate_serial", done.unit.certificate_serial},
                        {"reason", RevocationReasonName(revocation.reason)},
                        {"since", UtcTimestamp(revocation.since)},
                        {"earlier", done.earlier},
                        {"crl", CrlJson(done.crl_path, done.crl)}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << fmt::format("{} {} (certificate serial {}): {} since {}\n",
                           done.earlier ? "already revoked, the first reason and time stand:" : "revoked",
                           done.unit.serial, done.unit.certificate_serial,
                           RevocationReasonName(revocation.reason), UtcTimestamp(revocation.since));
  std::cout << CrlLine(done.crl_path, done.crl) << "\n";
}

Result<std::unique_ptr<Ledger>> LedgerOf(const Factory& factory, const std::string& spec) {
  IDEVID_ASSIGN_OR_RETURN(auto ledger, OpenFactoryLedger(factory, spec), "opening the factory's ledger");
  return ledger;
}

int Revoke(const RevokeArgs& args) {
  auto reason = ParseRevocationReason(args.reason);
  if (!reason) return ReportError(reason.error().WithContext("--reason"));
  auto factory = LoadFactory(args.dir, {.pkcs11_pin_file = args.pkcs11_pin_file});
  if (!factory) return ReportError(factory.error());
  auto ledger = LedgerOf(*factory, args.ledger);
  if (!ledger) return ReportError(ledger.error());
  auto revoked = RevokeUnit(*factory, **ledger, args.serial, *reason,
                            {.validity = std::chrono::days(args.next_update_days)});
  if (!revoked) return ReportError(revoked.error());
  if (auto* refusal = std::get_if<LedgerRefusal>(&*revoked)) {
    // A verdict of the ledger about the unit (unknown, never issued), not an error.
    std::cout << fmt::format("refused: {}: {}\n", refusal->reason, refusal->detail);
    return kExitFail;
  }
  PrintRevoked(std::get<RevokeOutcome>(*revoked), args.json);
  return kExitPass;
}

Result<CrlContent> WriteCrl(const CrlArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(Factory factory, LoadFactory(args.dir, {.pkcs11_pin_file = args.pkcs11_pin_file}));
  IDEVID_ASSIGN_OR_RETURN(auto ledger, LedgerOf(factory, args.ledger));
  IDEVID_ASSIGN_OR_RETURN(
      auto crl, MakeFactoryCrl(factory, *ledger, {.validity = std::chrono::days(args.next_update_days)}));
  if (args.der) {
    IDEVID_ASSIGN_OR_RETURN(Bytes der, CrlDer(*crl));
    IDEVID_TRY(WriteFileAtomic(args.out, der));
  } else {
    IDEVID_ASSIGN_OR_RETURN(std::string pem, CrlPem(*crl));
    IDEVID_TRY(WriteFileAtomic(args.out, pem));
  }
  return ReadCrl(*crl);
}

int Crl(const CrlArgs& args) {
  auto written = WriteCrl(args);
  if (!written) return ReportError(written.error());
  std::cout << CrlLine(args.out, *written) << "\n";
  return kExitPass;
}

void AddLedgerAndNextUpdate(CLI::App& cmd, std::string& ledger, unsigned& days) {
  cmd.add_option("--ledger", ledger,
                 "The ledger (sqlite:PATH, postgresql://...; default: the one factory.json names)");
  cmd.add_option("--next-update", days, "Days until the CRL's nextUpdate (RFC 5280 5.1.2.5)")
      ->check(CLI::Range(1u, 3660u))
      ->capture_default_str();
}

void AddRevoke(CLI::App& factory, int* exit_code) {
  auto args = std::make_shared<RevokeArgs>();
  CLI::App* cmd = factory.add_subcommand(
      "revoke",
      "Revoke a unit's certificate in the factory's ledger and write the factory's CRL to DIR/crl.pem "
      "(exit 1 when the ledger refuses: an unknown serial, or one never issued)");
  cmd->add_option("--dir", args->dir, "Factory CA directory ('idevid factory init')")->required();
  cmd->add_option("--serial", args->serial, "The unit's serial number")->required();
  cmd->add_option("--reason", args->reason,
                  "RFC 5280 5.3.1 reason: keyCompromise, cessationOfOperation, superseded, "
                  "affiliationChanged, privilegeWithdrawn, certificateHold, cACompromise, "
                  "aACompromise, unspecified")
      ->required();
  AddLedgerAndNextUpdate(*cmd, args->ledger, args->next_update_days);
  AddPkcs11PinFileOption(*cmd, args->pkcs11_pin_file);  // the CRL is signed with the issuing key
  cmd->add_flag("--json", args->json, "Print what was revoked and the CRL as JSON");
  cmd->callback([args, exit_code] { *exit_code = Revoke(*args); });
}

void AddCrl(CLI::App& factory, int* exit_code) {
  auto args = std::make_shared<CrlArgs>();
  CLI::App* cmd = factory.add_subcommand(
      "crl", "Write the factory's current CRL: every unit its ledger holds revoked, with a new CRL number");
  cmd->add_option("--dir", args->dir, "Factory CA directory ('idevid factory init')")->required();
  cmd->add_option("--out", args->out, "Where to write the CRL")->required();
  AddLedgerAndNextUpdate(*cmd, args->ledger, args->next_update_days);
  AddPkcs11PinFileOption(*cmd, args->pkcs11_pin_file);  // the CRL is signed with the issuing key
  cmd->add_flag("--der", args->der, "Write DER instead of PEM");
  cmd->callback([args, exit_code] { *exit_code = Crl(*args); });
}

}  // namespace

void AddRevocationCommands(CLI::App& app, int* exit_code) {
  CLI::App* factory = app.get_subcommand("factory");
  AddRevoke(*factory, exit_code);
  AddCrl(*factory, exit_code);
}

}  // namespace idevid::cli
