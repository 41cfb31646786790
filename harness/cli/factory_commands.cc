#include "harness/cli/factory_commands.h"

#include <unistd.h>

#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "core/x509.h"
#include "harness/cli/exit_codes.h"
#include "harness/cli/option_checks.h"
#include "harness/cli/tpm_args.h"
#include "provisioning/factory.h"
#include "provisioning/line_check.h"
#include "provisioning/provisioner.h"
#include "provisioning/unit_record.h"

namespace idevid::cli {
namespace {

using SystemClock = std::chrono::system_clock;

struct FactoryInitArgs {
  std::string dir;
  std::string alg = "ecc-p256";
  std::string manufacturer = "Example Networks";
  bool force = false;
};

struct ProvisionArgs {
  TpmArgs tpm;
  std::string factory;
  std::string serial;
  std::string model;
  std::string key_alg = "ecc-p256";
  std::string handle = "0x81020000";
  std::string nv_index = "0x01C90000";
  std::string record;
  std::string station;
  bool force = false;
  bool json = false;
};

struct CheckArgs {
  TpmArgs tpm;
  std::string factory_ca;
  std::optional<std::string> expect_serial;
  std::optional<std::string> expect_model;
  std::string handle = "0x81020000";
  std::string nv_index = "0x01C90000";
  std::string record;
  std::string station;
  bool json = false;
};

StationContext Context(const std::string& station) {
  const char* user = ::getenv("USER");
  return {station, user ? user : "", IDEVID_VERSION, SystemClock::now(), {}};
}

// Writes `record` to `path` when one was asked for; a failed write is reported and turns a
// pass into an infrastructure error.
int Finish(const std::string& path, const nlohmann::json& record, int exit_code) {
  if (path.empty()) return exit_code;
  if (auto written = WriteRecord(path, record); !written) {
    (void)ReportError(written.error());
    return kExitInfrastructure;
  }
  return exit_code;
}

int FactoryInit(const FactoryInitArgs& args) {
  auto alg = ParseKeyAlgorithm(args.alg);
  if (!alg) return ReportError(alg.error());
  auto factory = InitFactory({.dir = args.dir, .algorithm = *alg,
                              .manufacturer = args.manufacturer, .force = args.force});
  if (!factory) return ReportError(factory.error());
  std::cout << fmt::format("factory CA in {}\n  root:    {}\n  issuing: {}\n  give line "
                           "stations and the cloud: {}\n",
                           args.dir, SubjectLine(*factory->root), SubjectLine(*factory->issuing),
                           FactoryFiles::Chain(args.dir).string());
  return kExitPass;
}

Result<ProvisionRequest> MakeProvisionRequest(const ProvisionArgs& args) {
  auto alg = ParseKeyAlgorithm(args.key_alg);
  if (!alg) return Fail(alg.error());
  auto handle = ParseHandle("--handle", args.handle);
  if (!handle) return Fail(handle.error());
  auto index = ParseHandle("--nv-index", args.nv_index);
  if (!index) return Fail(index.error());
  return ProvisionRequest{args.serial, args.model, *alg, *handle, *index, args.force};
}

int Provision(const ProvisionArgs& args) {
  StationContext context = Context(args.station);
  auto fail = [&](const Error& e) {
    context.ended = SystemClock::now();
    return Finish(args.record, ErrorRecord("provision", e, context), ReportError(e));
  };
  auto request = MakeProvisionRequest(args);
  if (!request) return fail(request.error());
  auto factory = LoadFactory(args.factory);
  if (!factory) return fail(factory.error());
  auto tpm = OpenTpm(args.tpm);
  if (!tpm) return fail(tpm.error());
  auto result = ProvisionUnit(*tpm, *factory, *request);
  if (!result) return fail(result.error());
  context.ended = SystemClock::now();
  nlohmann::json record = ProvisionRecord(*request, *result, context);
  if (args.json) {
    std::cout << record.dump(2) << "\n";
  } else {
    for (const auto& line : result->replaced) std::cout << "replaced: " << line << "\n";
    std::cout << fmt::format("provisioned {} ({}): key {:#010x}, certificate in NV {:#010x}\n"
                             "  subject: {}\n  sha256:  {}\n",
                             request->serial, request->model, request->key_handle,
                             request->nv_index, SubjectLine(*result->certificate),
                             result->certificate_fingerprint);
  }
  return Finish(args.record, record, kExitPass);
}

void PrintTable(const CheckReport& report, const std::string& station) {
  std::cout << fmt::format("Line check of {} ({}){}\n", report.identity.serial,
                           report.identity.model, station.empty() ? "" : " at " + station);
  for (const auto& m : report.measurements) {
    std::cout << fmt::format("  {}  {:<26} {}{}\n", m.passed ? "PASS" : "FAIL", m.name, m.value,
                             m.passed || m.expected.empty() ? "" : "  (expected " + m.expected + ")");
  }
  auto failed = report.failures();
  std::cout << (failed.empty()
                    ? fmt::format("Result: PASS ({} checks)\n", report.measurements.size())
                    : fmt::format("Result: FAIL ({} of {} checks failed: {})\n", failed.size(),
                                  report.measurements.size(), fmt::join(failed, ", ")));
}

int Check(const CheckArgs& args) {
  StationContext context = Context(args.station);
  auto fail = [&](const Error& e) {
    context.ended = SystemClock::now();
    return Finish(args.record, ErrorRecord("line-check", e, context), ReportError(e));
  };
  auto handle = ParseHandle("--handle", args.handle);
  if (!handle) return fail(handle.error());
  auto index = ParseHandle("--nv-index", args.nv_index);
  if (!index) return fail(index.error());
  auto bundle = LoadTrustBundle(args.factory_ca);
  if (!bundle) return fail(bundle.error());
  auto tpm = OpenTpm(args.tpm);
  if (!tpm) return fail(tpm.error());
  CheckRequest request{*handle, *index, args.expect_serial, args.expect_model};
  auto report = CheckUnit(*tpm, *bundle, request);
  if (!report) return fail(report.error());
  context.ended = SystemClock::now();
  nlohmann::json record = CheckRecord(request, *report, context);
  if (args.json) {
    std::cout << record.dump(2) << "\n";
  } else {
    PrintTable(*report, args.station);
  }
  return Finish(args.record, record, report->passed() ? kExitPass : kExitFail);
}

void AddFactoryInit(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<FactoryInitArgs>();
  CLI::App* factory = app.add_subcommand("factory", "The factory CA");
  factory->require_subcommand(1);
  CLI::App* init = factory->add_subcommand("init", "Create a root CA and an issuing CA");
  init->add_option("--dir", args->dir, "Directory for the CA files")->required();
  init->add_option("--alg", args->alg, "Key algorithm: ecc-p256 or rsa-2048")->capture_default_str();
  init->add_option("--manufacturer", args->manufacturer, "Organization (O) of the certificates")
      ->capture_default_str();
  init->add_flag("--force", args->force, "Replace an existing factory CA in DIR");
  init->callback([args, exit_code] { *exit_code = FactoryInit(*args); });
}

void AddProvision(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ProvisionArgs>();
  CLI::App* cmd = app.add_subcommand(
      "provision", "Give one unit its IDevID key and burnt-in idev-id certificate");
  AddTpmOptions(*cmd, args->tpm);
  cmd->add_option("--factory", args->factory, "Factory CA directory")->required();
  cmd->add_option("--serial", args->serial, "Unit serial number")->required();
  cmd->add_option("--model", args->model, "Unit model")->required();
  cmd->add_option("--key-alg", args->key_alg, "ecc-p256 (TCG H-2) or rsa-2048 (H-1)")
      ->capture_default_str();
  cmd->add_option("--handle", args->handle, "Persistent key handle")->capture_default_str();
  cmd->add_option("--nv-index", args->nv_index, "NV index of the certificate")->capture_default_str();
  cmd->add_option("--record", args->record, "Write the per-unit JSON record here");
  cmd->add_option("--station", args->station, "Station id for the record");
  cmd->add_flag("--force", args->force, "Replace an identity the TPM already holds");
  cmd->add_flag("--json", args->json, "Print the record as JSON");
  cmd->callback([args, exit_code] { *exit_code = Provision(*args); });
}

void AddCheck(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cmd = app.add_subcommand("check", "Manufacturing-line identity check of one unit");
  AddTpmOptions(*cmd, args->tpm);
  cmd->add_option("--factory-ca", args->factory_ca, "The factory's factory-ca.pem")
      ->required()
      ->check(ExistingFileCheck());
  cmd->add_option("--expect-serial", args->expect_serial, "Serial number the line expects");
  cmd->add_option("--expect-model", args->expect_model, "Model the line expects");
  cmd->add_option("--handle", args->handle, "Persistent key handle")->capture_default_str();
  cmd->add_option("--nv-index", args->nv_index, "NV index of the certificate")->capture_default_str();
  cmd->add_option("--station", args->station, "Station id");
  cmd->add_option("--record", args->record, "Write the per-unit JSON record here");
  cmd->add_flag("--json", args->json, "Print the record as JSON");
  cmd->callback([args, exit_code] { *exit_code = Check(*args); });
}

}  // namespace

void AddFactoryCommands(CLI::App& app, int* exit_code) {
  AddFactoryInit(app, exit_code);
  AddProvision(app, exit_code);
  AddCheck(app, exit_code);
}

}  // namespace idevid::cli
