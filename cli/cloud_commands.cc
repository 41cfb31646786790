#include "cli/cloud_commands.h"

#include <signal.h>

#include <chrono>

#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/option_checks.h"
#include "cli/tpm_args.h"
#include "cloud/cloud_server.h"
#include "core/display_text.h"
#include "device/config/config_parser.h"
#include "device/ssli/ssli_client.h"
#include "engine/exit_codes.h"

namespace idevid::cli {
namespace {

struct ConnectArgs {
  std::string config;
  std::string profile;
  std::string socket;
  TpmArgs tpm;
  std::string peer;
  bool json = false;
};

struct CloudArgs {
  std::string listen = "127.0.0.1:0";
  std::string cert;
  std::string key;
  std::string factory_ca;
  std::string inventory;
  std::string attest_policy;
  std::string crl;
  std::string ledger;
  std::string log;
  unsigned io_timeout_ms = 10000;
  unsigned handshake_deadline_ms = 10000;
  unsigned request_deadline_ms = 10000;
};

void Print(const SsliResult& r, bool json) {
  nlohmann::json j = {{"mode", r.tpm_mode ? "tpm" : "file"},
                      {"protocol", r.protocol},
                      {"cipher", r.cipher},
                      {"signature_scheme", r.signature_scheme},
                      {"server", r.server_subject},
                      {"http_status", r.http_status},
                      {"cloud", r.verdict},
                      {"tpm_signatures", r.tpm_signatures},
                      {"resumed", r.resumed},
                      {"refused", r.refused() ? nlohmann::json(r.refusal->reason) : nlohmann::json()}};
  if (r.challenge) {  // the cloud asked for attestation; "cloud" is its verdict on the evidence
    j["challenge"] = *r.challenge;
    j["attested"] = r.attested();
  }
  if (json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  if (r.challenge) std::cout << fmt::format("attestation challenge: {}\n", r.challenge->dump());
  std::cout << fmt::format("{} mode: {} {} signed {}\nserver: {}\ncloud: HTTP {} {}\n",
                           r.tpm_mode ? "TPM" : "file", r.protocol, r.cipher, r.signature_scheme,
                           DisplayText(r.server_subject), r.http_status, r.verdict.dump());
  if (r.refused()) std::cout << fmt::format("refused: {}\n", r.refusal->reason);
}

// The session `idevid ssli connect` asks for: the profile of the device configuration, with the
// TPM the options name when the profile offloads its key.
Result<SsliResult> ConnectFromArgs(const ConnectArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(auto config, LoadDeviceConfig(args.config));
  IDEVID_ASSIGN_OR_RETURN(auto peer, SplitHostPort(args.peer), "--peer");
  SsliConnectRequest request{&config, args.profile, std::nullopt, "", peer.first, peer.second};
  if (!args.socket.empty()) request.pkid_socket = args.socket;
  auto profile = config.ssl_profiles.find(args.profile);
  if (profile != config.ssl_profiles.end() && profile->second.tpm_offload) {
    IDEVID_ASSIGN_OR_RETURN(request.tcti, ResolveTcti(args.tpm));
  }
  return SsliConnect(request);
}

int Connect(const ConnectArgs& args) {
  auto result = ConnectFromArgs(args);
  if (!result) {
    // A certificate check that failed (the unit has no identity to offer, or the cloud's
    // certificate is not the one the profile trusts) fails the session (1); anything else is
    // infrastructure (2) or usage (4).
    int code = ReportError(result.error());
    return result.error().domain() == ErrorDomain::kVerify ? kExitFail : code;
  }
  Print(*result, args.json);  // a refused identity (TLS alert, HTTP 403) is a verdict: exit 1
  if (result->undecided()) {  // HTTP 5xx: the cloud judged nothing; the unit is not at fault
    std::cerr << fmt::format(
        "idevid: the cloud could not decide about this identity (HTTP {}); try again later\n",
        result->http_status);
    return kExitInfrastructure;
  }
  return result->accepted() ? kExitPass : kExitFail;
}

// SIGHUP: the inventory and the CRL the cloud was started with are read again; one that is bad
// is reported and the cloud keeps the one it had.
void ReadAgain(const CloudArgs& args, CloudServer& server) {
  if (!args.inventory.empty()) {
    if (auto reloaded = server.ReloadInventory(); !reloaded) {
      (void)ReportError(reloaded.error());
    } else {
      std::cerr << "cloud: inventory read again\n";
    }
  }
  if (!args.crl.empty()) {
    if (auto reloaded = server.ReloadCrl(); !reloaded) {
      (void)ReportError(reloaded.error());
    } else {
      std::cerr << "cloud: CRL read again\n";
    }
  }
}

int Cloud(const CloudArgs& args) {
  auto listen = SplitHostPort(args.listen);
  if (!listen) return ReportError(listen.error().WithContext("--listen"));
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the server's threads start
  CloudOptions options{listen->first,
                       listen->second,
                       args.cert,
                       args.key,
                       args.factory_ca,
                       std::nullopt,
                       args.log,
                       std::chrono::milliseconds(args.io_timeout_ms),
                       std::chrono::milliseconds(args.handshake_deadline_ms),
                       std::chrono::milliseconds(args.request_deadline_ms)};
  if (!args.inventory.empty()) options.inventory = args.inventory;
  if (!args.attest_policy.empty()) options.attest_policy = args.attest_policy;
  if (!args.crl.empty()) options.crl = args.crl;
  options.ledger = args.ledger;
  auto server = CloudServer::Start(options);
  if (!server) return ReportError(server.error());
  std::cout << fmt::format("listening on {}:{}", listen->first, (*server)->port()) << std::endl;
  int signal = 0;
  while (sigwait(&set, &signal) == 0 && signal == SIGHUP) ReadAgain(args, **server);
  (*server)->Stop();
  std::cerr << fmt::format("cloud: stopped after {} connections\n", (*server)->connections());
  return kExitPass;
}

}  // namespace

void AddCloudCommands(CLI::App& app, int* exit_code) {
  CLI::App* ssli = app.add_subcommand("ssli", "SSL-initiation profiles of the device");
  ssli->require_subcommand(1);
  auto connect_args = std::make_shared<ConnectArgs>();
  CLI::App* connect = ssli->add_subcommand(
      "connect", "Open client-authenticated TLS to the cloud with a profile and ask who we are");
  connect->add_option("--config", connect_args->config, "Device configuration")->required();
  connect->add_option("--profile", connect_args->profile, "SSL-I profile name")->required();
  connect->add_option("--socket", connect_args->socket, "pkid's socket (certificate and key reference)");
  AddTpmOptions(*connect, connect_args->tpm);
  connect->add_option("--peer", connect_args->peer, "The cloud, HOST:PORT")->required();
  connect->add_flag("--json", connect_args->json, "Print the result as JSON");
  connect->callback([connect_args, exit_code] { *exit_code = Connect(*connect_args); });

  auto cloud_args = std::make_shared<CloudArgs>();
  CLI::App* cloud = app.add_subcommand("cloud",
                                       "The cloud peer: mutual-TLS HTTPS server that verifies device "
                                       "identity (SIGHUP reads the inventory and the CRL again)");
  cloud->add_option("--listen", cloud_args->listen, "HOST:PORT (port 0 = any free)")->capture_default_str();
  cloud->add_option("--cert", cloud_args->cert, "Server certificate (PEM)")
      ->required()
      ->check(ExistingFileCheck());
  cloud->add_option("--key", cloud_args->key, "Server key (PEM)")->required()->check(ExistingFileCheck());
  cloud->add_option("--factory-ca", cloud_args->factory_ca, "The factory's factory-ca.pem")
      ->required()
      ->check(ExistingFileCheck());
  cloud->add_option("--inventory", cloud_args->inventory, "CSV of serial,model the cloud expects")
      ->check(ExistingFileCheck());
  cloud
      ->add_option("--attest-policy", cloud_args->attest_policy,
                   "Measured-boot policy (YAML): challenge each accepted identity for an IAK quote "
                   "of its boot, bound to the TLS session")
      ->check(ExistingFileCheck());
  cloud
      ->add_option("--crl", cloud_args->crl,
                   "The factory's CRL (PEM or DER, 'idevid factory crl'): units it lists are refused; it "
                   "must verify against --factory-ca, and is read again when the file changes and on SIGHUP")
      ->check(ExistingFileCheck());
  cloud->add_option(
      "--ledger", cloud_args->ledger,
      "The factory's ledger (sqlite:PATH, postgresql://...): a unit is refused unless the "
      "ledger gave its serial the certificate it presents (else a clone), or when revoked there");
  cloud->add_option("--log", cloud_args->log, "Append one JSON line per connection here");
  cloud
      ->add_option("--io-timeout-ms", cloud_args->io_timeout_ms,
                   "Drop a client that sends nothing for this long")
      ->check(CLI::Range(1u, 3600000u))
      ->capture_default_str();
  cloud
      ->add_option("--handshake-deadline-ms", cloud_args->handshake_deadline_ms,
                   "Drop a client whose TLS handshake takes longer, however its bytes trickle")
      ->check(CLI::Range(1u, 3600000u))
      ->capture_default_str();
  cloud
      ->add_option("--request-deadline-ms", cloud_args->request_deadline_ms,
                   "Drop a client whose HTTP request takes longer after the handshake")
      ->check(CLI::Range(1u, 3600000u))
      ->capture_default_str();
  cloud->callback([cloud_args, exit_code] { *exit_code = Cloud(*cloud_args); });
}

}  // namespace idevid::cli
