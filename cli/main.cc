// The idevid command: one binary, CLI11 subcommands.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli/attest_commands.h"
#include "cli/bench_command.h"
#include "cli/cloud_commands.h"
#include "cli/device_commands.h"
#include "cli/factory_commands.h"
#include "cli/ledger_commands.h"
#include "cli/revocation_commands.h"
#include "cli/run_command.h"
#include "cli/tpm_command.h"
#include "core/display_text.h"
#include "engine/exit_codes.h"

namespace {

// tpm2-tss logs every failed connection attempt to stderr; the command reports errors itself.
// An explicitly set TSS2_LOG wins.
void QuietTssLogging() { ::setenv("TSS2_LOG", "all+NONE", 0); }

// Logs go to stderr, so that standard output carries only a command's answer.
void LogToStderr() { spdlog::set_default_logger(spdlog::stderr_color_mt("idevid")); }

// The command the user chose as far as it was recognized: `app` or its deepest parsed subcommand.
const CLI::App& ChosenCommand(const CLI::App& app) {
  const CLI::App* chosen = &app;
  while (!chosen->get_subcommands().empty()) chosen = chosen->get_subcommands().front();
  return *chosen;
}

// A word where a command that has subcommands expects one of them: "unknown command 'bogus';
// commands: run, tpm, ..." (the word escaped). Returns false when the parse failed otherwise.
bool ReportUnknownCommand(const CLI::App& app) {
  const CLI::App& chosen = ChosenCommand(app);
  auto commands = chosen.get_subcommands([](const CLI::App*) { return true; });
  std::vector<std::string> left = chosen.remaining(false);
  if (commands.empty() || left.empty() || left.front().starts_with("-")) return false;
  std::string path;
  for (const CLI::App* c = &chosen; c != &app; c = c->get_parent()) path = c->get_name() + " " + path;
  std::string names;
  for (const CLI::App* c : commands) names += (names.empty() ? "" : ", ") + c->get_name();
  std::cerr << "idevid: unknown command '" << path << idevid::DisplayText(left.front()) << "'; " << path
            << "commands: " << names << " (idevid " << path << "--help)\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  QuietTssLogging();
  LogToStderr();
  CLI::App app{"idevid: hardware-in-the-loop test and attestation harness for TPM device identity"};
  app.set_version_flag("--version", std::string(IDEVID_VERSION));
  app.require_subcommand(1);
  int exit_code = idevid::cli::kExitPass;
  idevid::cli::AddRunCommand(app, &exit_code);
  idevid::cli::AddTpmCommand(app, &exit_code);
  idevid::cli::AddFactoryCommands(app, &exit_code);
  idevid::cli::AddRevocationCommands(app, &exit_code);
  idevid::cli::AddLedgerCommands(app, &exit_code);
  idevid::cli::AddDeviceCommands(app, &exit_code);
  idevid::cli::AddCloudCommands(app, &exit_code);
  idevid::cli::AddBenchCommand(app, &exit_code);
  idevid::cli::AddAttestCommands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0 && ReportUnknownCommand(app)) return idevid::cli::kExitUsage;
    int printed = app.exit(e);
    return printed == 0 ? idevid::cli::kExitPass : idevid::cli::kExitUsage;
  }
  return exit_code;
}
