#include "cli/device_commands.h"

#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/tpm_args.h"
#include "device/pkid/command_handler.h"
#include "device/pkid/pkid_client.h"
#include "device/pkid/pkid_server.h"
#include "engine/exit_codes.h"

namespace idevid::cli {
namespace {

struct PkidArgs {
  TpmArgs tpm;
  std::string config;
  std::string socket;
  int tpm_retry_first_ms = 100;
  int tpm_retry_max_ms = 5000;
};

struct CliArgs {
  std::string socket;
  std::vector<std::string> words;
  bool json = false;
};

int Pkid(const PkidArgs& args) {
  auto tcti = ResolveTcti(args.tpm);
  if (!tcti) return ReportError(tcti.error());
  auto run = RunPkid({.config = args.config,
                      .tcti = *tcti,
                      .socket = args.socket,
                      .now = {},
                      .tpm_retry = {std::chrono::milliseconds(args.tpm_retry_first_ms),
                                    std::chrono::milliseconds(args.tpm_retry_max_ms)}});
  if (!run) return ReportError(run.error());
  return kExitPass;
}

// pkid's status: success; the command's answer is a failure (verify refused or failed: a
// verdict, 1); a malformed command (a usage error here, 4); a reload whose configuration was
// rejected: 4 as well, because it is a configuration error for its user to fix like every other
// (ExitCodeFor), not a verdict about a certificate (1) nor a fault of the machine (2).
int ExitFor(int status) {
  switch (status) {
    case kStatusOk: return kExitPass;
    case kStatusFailed: return kExitFail;
    case kStatusConfigRejected: return kExitUsage;
    default: return kExitUsage;
  }
}

int Cli(const CliArgs& args) {
  std::string command = fmt::format("{}", fmt::join(args.words, " "));
  auto response = SendPkidCommand(args.socket, command);
  if (!response) return ReportError(response.error());
  if (args.json) {
    std::cout << nlohmann::json{{"status", response->status}, {"data", response->data}}.dump(2) << "\n";
  } else {
    (response->status == 0 ? std::cout : std::cerr) << response->text;
  }
  return ExitFor(response->status);
}

}  // namespace

void AddDeviceCommands(CLI::App& app, int* exit_code) {
  auto pkid_args = std::make_shared<PkidArgs>();
  CLI::App* pkid =
      app.add_subcommand("pkid",
                         "The device PKI daemon: loads idev-id and the node-local certificates, serves "
                         "operational commands (SIGHUP = restart load)");
  AddTpmOptions(*pkid, pkid_args->tpm);
  pkid->add_option("--config", pkid_args->config, "Device configuration (set statements)")->required();
  pkid->add_option("--socket", pkid_args->socket, "Unix socket for operational commands")->required();
  pkid->add_option("--tpm-retry-first-ms", pkid_args->tpm_retry_first_ms,
                   "While the TPM does not answer: first pause before trying again (doubles)")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  pkid->add_option("--tpm-retry-max-ms", pkid_args->tpm_retry_max_ms,
                   "Longest pause between tries; also how often an answering TPM is looked at")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  pkid->callback([pkid_args, exit_code] { *exit_code = Pkid(*pkid_args); });

  auto cli_args = std::make_shared<CliArgs>();
  CLI::App* cli = app.add_subcommand("cli", "Send one operational command to pkid");
  cli->add_option("--socket", cli_args->socket, "pkid's socket")->required();
  cli->add_flag("--json", cli_args->json, "Print the answer's facts as JSON");
  cli->add_option("command", cli_args->words, "e.g. show security pki node-local local-certificate")
      ->required();
  cli->callback([cli_args, exit_code] { *exit_code = Cli(*cli_args); });
}

}  // namespace idevid::cli
