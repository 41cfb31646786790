#include "cli/enrol_commands.h"

#include <signal.h>

#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/option_checks.h"
#include "cli/pkcs11_options.h"
#include "cli/station_record.h"
#include "core/display_text.h"
#include "core/x509.h"
#include "engine/exit_codes.h"
#include "provisioning/enrolment_authority.h"
#include "provisioning/enrolment_station.h"
#include "provisioning/factory.h"
#include "provisioning/factory_client.h"
#include "provisioning/factory_service.h"
#include "provisioning/line_check.h"
#include "provisioning/provisioner.h"
#include "provisioning/service_certificate.h"
#include "provisioning/unit_record.h"

namespace idevid::cli {
namespace {

bool IsServiceUrl(const std::string& factory) { return factory.rfind("https://", 0) == 0; }

Result<std::vector<std::filesystem::path>> Paths(const std::vector<std::string>& texts) {
  return std::vector<std::filesystem::path>(texts.begin(), texts.end());
}

// The authority in this process, over the factory directory.
Result<std::unique_ptr<EnrolmentChannel>> LocalAuthority(const EnrolArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(Factory factory,
                          LoadFactory(args.factory, {.pkcs11_pin_file = args.pkcs11_pin_file}));
  IDEVID_ASSIGN_OR_RETURN(auto paths, Paths(args.tpm_vendor_cas));
  IDEVID_ASSIGN_OR_RETURN(
      auto authority, EnrolmentAuthority::Create(
                          std::move(factory), {.tpm_vendor_cas = std::move(paths), .ledger = args.ledger}));
  return std::unique_ptr<EnrolmentChannel>(std::move(authority));
}

// The authority behind `idevid factory serve`, trusted through the factory's CA.
Result<std::unique_ptr<EnrolmentChannel>> RemoteAuthority(const EnrolArgs& args) {
  std::string trust = args.factory_tls_ca.empty() ? args.factory_ca : args.factory_tls_ca;
  if (args.factory_ca.empty()) {
    return UsageError(UsageCode::kMissingArgument,
                      "--factory https://... needs --factory-ca FILE (the factory's factory-ca.pem): the "
                      "service is trusted by it (unless --factory-tls-ca) and the line check needs it");
  }
  if (!args.ledger.empty()) {
    return UsageError(
        UsageCode::kConflict,
        "--ledger belongs to the service (idevid factory serve --ledger), not to a station that "
        "enrols through it");
  }
  if (!args.tpm_vendor_cas.empty()) {
    return UsageError(UsageCode::kConflict,
                      "--tpm-vendor-ca belongs to the service (idevid factory serve), not to a station that "
                      "enrols through it");
  }
  FactoryClientOptions options{.url = args.factory, .trust = trust};
  if (!args.station_cert.empty()) options.certificate = args.station_cert;
  if (!args.station_key.empty()) options.private_key = args.station_key;
  IDEVID_ASSIGN_OR_RETURN(auto channel, HttpsEnrolmentChannel::Connect(options));
  return std::unique_ptr<EnrolmentChannel>(std::move(channel));
}

Result<EnrolRequest> MakeEnrolRequest(const EnrolArgs& args) {
  EnrolRequest request{.serial = args.serial, .model = args.model, .force = args.force};
  IDEVID_ASSIGN_OR_RETURN(request.algorithm, ParseKeyAlgorithm(args.key_alg));
  IDEVID_ASSIGN_OR_RETURN(request.idevid_handle, ParseHandle("--handle", args.handle));
  IDEVID_ASSIGN_OR_RETURN(request.iak_handle, ParseHandle("--iak-handle", args.iak_handle));
  IDEVID_ASSIGN_OR_RETURN(request.iak_nv_index, ParseHandle("--iak-nv-index", args.iak_nv_index));
  IDEVID_ASSIGN_OR_RETURN(request.idevid_nv_index,
                          ParseHandle("--nv-index", IdevidNvIndexText(args.nv_index, args.nv_layout)));
  return request;
}

// What a station run ends with: the per-unit record and the exit code.
struct StationOutcome {
  nlohmann::json record;
  int exit_code = kExitPass;
};

// The trust bundle the line check verifies the certificates against.
std::filesystem::path FactoryCaOf(const EnrolArgs& args) {
  return IsServiceUrl(args.factory) ? std::filesystem::path(args.factory_ca)
                                    : FactoryFiles::Chain(args.factory);
}

void PrintEnrolled(const EnrolRequest& r, const EnrolResult& result) {
  for (const auto& line : result.replaced) std::cout << "replaced: " << line << "\n";
  std::cout << fmt::format(
      "enrolled {} ({}): IDevID key {:#010x}, certificate in NV {:#010x}; IAK {:#010x}, certificate in NV "
      "{:#010x}\n  subject: {}\n",
      r.serial, r.model, r.idevid_handle, r.idevid_nv_index, r.iak_handle, r.iak_nv_index,
      SubjectLine(*result.idevid_certificate));
}

void PrintLineCheck(const LineCheckOutcome& checked) {
  auto failed = checked.report.failures();
  std::cout << (failed.empty() ? std::string("  line check: PASS\n")
                               : fmt::format("  line check: FAIL ({})\n", fmt::join(failed, ", ")));
}

// TCG enrolment, the line check, and the commit through the same authority.
Result<StationOutcome> EnrolAtStation(const EnrolArgs& args, StationContext& context) {
  IDEVID_ASSIGN_OR_RETURN(EnrolRequest request, MakeEnrolRequest(args));
  request.station = args.station;
  IDEVID_ASSIGN_OR_RETURN(auto authority,
                          IsServiceUrl(args.factory) ? RemoteAuthority(args) : LocalAuthority(args));
  IDEVID_ASSIGN_OR_RETURN(TrustBundle factory_ca, LoadTrustBundle(FactoryCaOf(args)),
                          "the factory CA of the line check");
  CheckRequest check{.key_handle = request.idevid_handle,
                     .nv_index = request.idevid_nv_index,
                     .expect_serial = request.serial,
                     .expect_model = request.model,
                     .check_iak = true,
                     .iak_handle = request.iak_handle,
                     .iak_nv_index = request.iak_nv_index};
  for (const auto& path : args.tpm_vendor_cas) {
    IDEVID_ASSIGN_OR_RETURN(TrustBundle vendor, LoadTrustBundle(path), "--tpm-vendor-ca");
    check.vendor_cas.push_back(std::move(vendor));
  }
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, OpenTpm(args.tpm));
  IDEVID_ASSIGN_OR_RETURN(EnrolResult result, EnrolUnit(tpm, *authority, request), "enrolling unit {}",
                          QuotedDisplayText(request.serial));
  context.ended = std::chrono::system_clock::now();
  StationOutcome out{EnrolRecord(request, result, context), kExitFail};
  bool quiet = args.json;
  if (result.refusal) {
    if (!quiet) {
      for (const auto& line : result.replaced) std::cout << "replaced: " << line << "\n";
    }
    if (!quiet)
      ReportRefusal(request.serial, request.model, result.refusal->reason, result.refusal->detail,
                    out.record);
    return out;
  }
  IDEVID_ASSIGN_OR_RETURN(LineCheckOutcome checked,
                          RunLineCheck(tpm, factory_ca, check, context, out.record));
  IDEVID_ASSIGN_OR_RETURN(auto committed,
                          CommitEnrolment(*authority, request, result, checked.outcome, out.record),
                          "committing unit {}", QuotedDisplayText(request.serial));
  if (auto* refused = std::get_if<EnrolmentRefusal>(&committed)) {
    if (quiet) {
      out.record["outcome"] = "FAIL";
      out.record["refusal"] = {{"reason", refused->reason}, {"detail", refused->detail}};
    } else {
      ReportRefusal(request.serial, request.model, refused->reason, refused->detail, out.record);
    }
    return out;
  }
  out.record["ledger"] = {{"state", "committed"}};
  if (!quiet) {
    PrintEnrolled(request, result);
    PrintLineCheck(checked);
  }
  out.exit_code = checked.outcome == "PASS" ? kExitPass : kExitFail;
  return out;
}

Result<ProvisionRequest> MakeProvisionRequest(const EnrolArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(KeyAlgorithm alg, ParseKeyAlgorithm(args.key_alg));
  IDEVID_ASSIGN_OR_RETURN(std::uint32_t handle, ParseHandle("--handle", args.handle));
  IDEVID_ASSIGN_OR_RETURN(std::uint32_t index,
                          ParseHandle("--nv-index", IdevidNvIndexText(args.nv_index, args.nv_layout)));
  ProvisionRequest request{args.serial, args.model, alg, handle, index, args.force};
  request.station = args.station;
  return request;
}

void PrintProvisioned(const ProvisionRequest& request, const ProvisionResult& result, const Ledger& ledger) {
  for (const auto& line : result.replaced) std::cout << "replaced: " << line << "\n";
  std::cout << fmt::format(
      "provisioned {} ({}): key {:#010x}, certificate in NV {:#010x}\n"
      "  subject: {}\n  sha256:  {}\n  ledger:  committed in {}{}\n",
      request.serial, request.model, request.key_handle, request.nv_index, SubjectLine(*result.certificate),
      result.certificate_fingerprint, DisplayText(ledger.location()),
      !result.resumed             ? ""
      : result.certificate_reused ? " (an earlier attempt resumed, its certificate written again)"
                                  : " (an earlier attempt resumed)");
}

// The IDevID alone, the line check, and the commit in the ledger.
Result<StationOutcome> ProvisionAtStation(const EnrolArgs& args, StationContext& context) {
  IDEVID_ASSIGN_OR_RETURN(ProvisionRequest request, MakeProvisionRequest(args));
  IDEVID_ASSIGN_OR_RETURN(Factory factory,
                          LoadFactory(args.factory, {.pkcs11_pin_file = args.pkcs11_pin_file}));
  IDEVID_ASSIGN_OR_RETURN(auto ledger, OpenStationLedger(args.ledger, factory.ledger));
  IDEVID_ASSIGN_OR_RETURN(TrustBundle factory_ca, LoadTrustBundle(FactoryFiles::Chain(factory.dir)),
                          "the factory CA of the line check");
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, OpenTpm(args.tpm));
  IDEVID_ASSIGN_OR_RETURN(ProvisionResult result, ProvisionUnit(tpm, factory, request, ledger.get()),
                          "provisioning unit {}", QuotedDisplayText(request.serial));
  context.ended = std::chrono::system_clock::now();
  StationOutcome out{ProvisionRecord(request, result, context), kExitFail};
  bool quiet = args.json;
  if (result.refusal) {
    if (!quiet)
      ReportRefusal(request.serial, request.model, result.refusal->reason, result.refusal->detail,
                    out.record);
    return out;
  }
  CheckRequest check{.key_handle = request.key_handle,
                     .nv_index = request.nv_index,
                     .expect_serial = request.serial,
                     .expect_model = request.model};
  IDEVID_ASSIGN_OR_RETURN(LineCheckOutcome checked,
                          RunLineCheck(tpm, factory_ca, check, context, out.record));
  out.record["ledger"]["location"] = ledger->location();
  IDEVID_ASSIGN_OR_RETURN(auto committed,
                          ledger->Commit({.serial = request.serial,
                                          .ek_sha256 = result.ek_sha256,
                                          .station = request.station,
                                          .line_check = checked.outcome,
                                          .record = out.record}),
                          "committing unit {} in the ledger {}", QuotedDisplayText(request.serial),
                          ledger->location());
  if (auto* refused = std::get_if<LedgerRefusal>(&committed)) {
    out.record["outcome"] = "FAIL";
    out.record["refusal"] = {{"reason", refused->reason}, {"detail", refused->detail}};
    if (!quiet) ReportRefusal(request.serial, request.model, refused->reason, refused->detail, out.record);
    return out;
  }
  out.record["ledger"]["state"] = "committed";
  if (!quiet) {
    PrintProvisioned(request, result, *ledger);
    PrintLineCheck(checked);
  }
  out.exit_code = checked.outcome == "PASS" ? kExitPass : kExitFail;
  return out;
}

// Runs `step` and finishes the record: printed as JSON with --json, written with --record.
int RunStation(const EnrolArgs& args, const char* kind,
               Result<StationOutcome> (*step)(const EnrolArgs&, StationContext&)) {
  StationContext context = MakeStationContext(args.station);
  auto outcome = step(args, context);
  if (!outcome) {
    context.ended = std::chrono::system_clock::now();
    return FinishRecord(args.record, ErrorRecord(kind, outcome.error(), context),
                        ReportError(outcome.error()));
  }
  if (args.json) std::cout << outcome->record.dump(2) << "\n";
  return FinishRecord(args.record, outcome->record, outcome->exit_code);
}

}  // namespace

std::string IdevidNvIndexText(const std::string& nv_index, const std::string& layout) {
  if (!nv_index.empty()) return nv_index;
  return fmt::format("{:#010x}", layout == "swtpm" ? kSwtpmIdevidNvIndex : kDefaultIdevidNvIndex);
}

bool WantsEnrolment(const EnrolArgs& args) {
  return IsServiceUrl(args.factory) || !args.tpm_vendor_cas.empty();
}

int Enrol(const EnrolArgs& args) { return RunStation(args, "enrol", &EnrolAtStation); }

int ProvisionIdevid(const EnrolArgs& args) { return RunStation(args, "provision", &ProvisionAtStation); }

void AddEnrolOptions(CLI::App& cmd, EnrolArgs& args) {
  cmd.add_option("--tpm-vendor-ca", args.tpm_vendor_cas,
                 "TCG enrolment in this process: the TPM vendor CA the EK certificate must chain to "
                 "(repeatable)")
      ->check(ExistingFileCheck());
  cmd.add_option("--factory-ca", args.factory_ca, "With --factory https://...: the factory's factory-ca.pem")
      ->check(ExistingFileCheck());
  cmd.add_option("--factory-tls-ca", args.factory_tls_ca,
                 "Trust the service's TLS certificate by this CA instead")
      ->check(ExistingFileCheck());
  cmd.add_option("--station-cert", args.station_cert, "This station's TLS certificate (PEM) for the service")
      ->check(ExistingFileCheck());
  cmd.add_option("--station-key", args.station_key, "Its private key (PEM)")->check(ExistingFileCheck());
  cmd.add_option("--iak-handle", args.iak_handle, "Persistent handle of the IAK")->capture_default_str();
  cmd.add_option("--iak-nv-index", args.iak_nv_index, "NV index of the IAK certificate")
      ->capture_default_str();
  cmd.add_option("--nv-layout", args.nv_layout,
                 "default (IDevID certificate 0x01C90000) or swtpm (0x01C90200, as swtpm_setup --idevid)")
      ->check(CLI::IsMember({"default", "swtpm"}))
      ->capture_default_str();
  cmd.add_option("--ledger", args.ledger,
                 "The ledger the unit is recorded in (reserve, issue, commit), instead of the factory's "
                 "(factory.json): sqlite:PATH or postgresql://... (not with a service URL: the service "
                 "records)");
}

namespace {

struct ServeArgs {
  std::string dir;
  std::string listen = "127.0.0.1:0";
  std::vector<std::string> tpm_vendor_cas;
  std::string station_ca;
  std::string log;
  std::string ledger;
  std::string pkcs11_pin_file;
  unsigned session_timeout_ms = 60000;
};

Result<std::unique_ptr<EnrolmentAuthority>> ServeAuthority(const ServeArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(Factory factory, LoadFactory(args.dir, {.pkcs11_pin_file = args.pkcs11_pin_file}));
  IDEVID_ASSIGN_OR_RETURN(auto paths, Paths(args.tpm_vendor_cas));
  AuthorityOptions options{.tpm_vendor_cas = std::move(paths),
                           .session_lifetime = std::chrono::milliseconds(args.session_timeout_ms),
                           .ledger = args.ledger};
  options.log = [](const std::string& line) { std::cerr << "factory: " << line << std::endl; };
  return EnrolmentAuthority::Create(std::move(factory), std::move(options));
}

// Serves until SIGINT or SIGTERM (blocked here, before the service's threads start).
Result<void> ServeUntilStopped(const ServeArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(auto listen, SplitHostPort(args.listen), "--listen");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  IDEVID_ASSIGN_OR_RETURN(auto authority, ServeAuthority(args));
  IDEVID_ASSIGN_OR_RETURN(ServiceIdentity identity,
                          IssueServiceCertificate(authority->factory(), listen.first),
                          "the service's TLS certificate");
  std::filesystem::path service_dir = std::filesystem::path(args.dir) / "service";
  IDEVID_TRY(WriteServiceIdentity(identity, service_dir));
  FactoryServiceOptions options{.host = listen.first,
                                .port = listen.second,
                                .certificate = ServiceFiles::Certificate(service_dir),
                                .private_key = ServiceFiles::Key(service_dir)};
  if (!args.station_ca.empty()) options.station_ca = args.station_ca;
  if (!args.log.empty()) options.log = args.log;
  IDEVID_ASSIGN_OR_RETURN(auto service, FactoryService::Start(options, *authority));
  std::cout << fmt::format("listening on https://{}:{}", listen.first, service->port()) << std::endl;
  int signal = 0;
  sigwait(&set, &signal);
  service->Stop();
  return {};
}

int Serve(const ServeArgs& args) {
  auto served = ServeUntilStopped(args);
  return served ? kExitPass : ReportError(served.error());
}

}  // namespace

void AddFactoryServe(CLI::App& factory, int* exit_code) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* serve = factory.add_subcommand(
      "serve",
      "The enrolment authority as an HTTPS service: checks each unit's TCG-CSR-IDEVID, EK chain, key "
      "attributes and TPM2_Certify, activates a credential with its EK, then issues the IDevID and IAK "
      "certificates, records each unit in the factory's ledger (reserved and issued before the "
      "certificates leave, committed when the station reports its line check) (SIGINT/SIGTERM stop it)");
  serve->add_option("--dir", args->dir, "Factory CA directory ('idevid factory init')")->required();
  serve->add_option("--listen", args->listen, "HOST:PORT (port 0 = any free)")->capture_default_str();
  serve
      ->add_option("--tpm-vendor-ca", args->tpm_vendor_cas, "TPM vendor CA the EK certificates must chain to")
      ->required()
      ->check(ExistingFileCheck());
  serve
      ->add_option("--station-ca", args->station_ca,
                   "Require line stations to present a certificate from this CA")
      ->check(ExistingFileCheck());
  serve->add_option("--log", args->log, "Append one JSON line per request here");
  serve->add_option(
      "--ledger", args->ledger,
      "Record every unit in this ledger instead of the factory's (factory.json): sqlite:PATH or "
      "postgresql://...; several services may share a PostgreSQL ledger");
  serve
      ->add_option("--session-timeout-ms", args->session_timeout_ms,
                   "Refuse a unit that takes longer to enrol")
      ->check(CLI::Range(1u, 3600000u))
      ->capture_default_str();
  AddPkcs11PinFileOption(*serve, args->pkcs11_pin_file);
  serve->callback([args, exit_code] { *exit_code = Serve(*args); });
}

}  // namespace idevid::cli
