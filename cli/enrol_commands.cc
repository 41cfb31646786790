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
      auto authority, EnrolmentAuthority::Create(std::move(factory), {.tpm_vendor_cas = std::move(paths)}));
  return std::unique_ptr<EnrolmentChannel>(std::move(authority));
}

// The authority behind `idevid factory serve`, trusted through the factory's CA.
Result<std::unique_ptr<EnrolmentChannel>> RemoteAuthority(const EnrolArgs& args) {
  std::string trust = args.factory_tls_ca.empty() ? args.factory_ca : args.factory_tls_ca;
  if (trust.empty()) {
    return UsageError(UsageCode::kMissingArgument,
                      "--factory https://... needs --factory-ca FILE (the factory's factory-ca.pem) or "
                      "--factory-tls-ca FILE to trust the service by");
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

struct Enrolled {
  EnrolRequest request;
  EnrolResult result;
};

Result<Enrolled> EnrolFromArgs(const EnrolArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(EnrolRequest request, MakeEnrolRequest(args));
  IDEVID_ASSIGN_OR_RETURN(auto authority,
                          IsServiceUrl(args.factory) ? RemoteAuthority(args) : LocalAuthority(args));
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, OpenTpm(args.tpm));
  IDEVID_ASSIGN_OR_RETURN(EnrolResult result, EnrolUnit(tpm, *authority, request), "enrolling unit {}",
                          QuotedDisplayText(request.serial));
  return Enrolled{std::move(request), std::move(result)};
}

void PrintEnrolled(const Enrolled& enrolled) {
  const EnrolRequest& r = enrolled.request;
  const EnrolResult& result = enrolled.result;
  for (const auto& line : result.replaced) std::cout << "replaced: " << line << "\n";
  if (result.refusal) {
    std::cout << fmt::format("refused {} ({}): {}: {}\n", QuotedDisplayText(r.serial),
                             QuotedDisplayText(r.model), result.refusal->reason, result.refusal->detail);
    return;
  }
  std::cout << fmt::format(
      "enrolled {} ({}): IDevID key {:#010x}, certificate in NV {:#010x}; IAK {:#010x}, certificate in NV "
      "{:#010x}\n  subject: {}\n",
      r.serial, r.model, r.idevid_handle, r.idevid_nv_index, r.iak_handle, r.iak_nv_index,
      SubjectLine(*result.idevid_certificate));
}

}  // namespace

std::string IdevidNvIndexText(const std::string& nv_index, const std::string& layout) {
  if (!nv_index.empty()) return nv_index;
  return fmt::format("{:#010x}", layout == "swtpm" ? kSwtpmIdevidNvIndex : kDefaultIdevidNvIndex);
}

bool WantsEnrolment(const EnrolArgs& args) {
  return IsServiceUrl(args.factory) || !args.tpm_vendor_cas.empty();
}

int Enrol(const EnrolArgs& args) {
  StationContext context = MakeStationContext(args.station);
  auto enrolled = EnrolFromArgs(args);
  context.ended = std::chrono::system_clock::now();
  if (!enrolled) {
    return FinishRecord(args.record, ErrorRecord("enrol", enrolled.error(), context),
                        ReportError(enrolled.error()));
  }
  nlohmann::json record = EnrolRecord(enrolled->request, enrolled->result, context);
  if (args.json) {
    std::cout << record.dump(2) << "\n";
  } else {
    PrintEnrolled(*enrolled);
  }
  return FinishRecord(args.record, record, enrolled->result.refusal ? kExitFail : kExitPass);
}

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
}

namespace {

struct ServeArgs {
  std::string dir;
  std::string listen = "127.0.0.1:0";
  std::vector<std::string> tpm_vendor_cas;
  std::string station_ca;
  std::string log;
  std::string pkcs11_pin_file;
  unsigned session_timeout_ms = 60000;
};

Result<std::unique_ptr<EnrolmentAuthority>> ServeAuthority(const ServeArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(Factory factory, LoadFactory(args.dir, {.pkcs11_pin_file = args.pkcs11_pin_file}));
  IDEVID_ASSIGN_OR_RETURN(auto paths, Paths(args.tpm_vendor_cas));
  AuthorityOptions options{.tpm_vendor_cas = std::move(paths),
                           .session_lifetime = std::chrono::milliseconds(args.session_timeout_ms)};
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
      "certificates (SIGINT/SIGTERM stop it)");
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
  serve
      ->add_option("--session-timeout-ms", args->session_timeout_ms,
                   "Refuse a unit that takes longer to enrol")
      ->check(CLI::Range(1u, 3600000u))
      ->capture_default_str();
  AddPkcs11PinFileOption(*serve, args->pkcs11_pin_file);
  serve->callback([args, exit_code] { *exit_code = Serve(*args); });
}

}  // namespace idevid::cli
