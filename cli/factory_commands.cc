#include "cli/factory_commands.h"

#include <unistd.h>

#include <charconv>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/enrol_commands.h"
#include "cli/option_checks.h"
#include "cli/pkcs11_options.h"
#include "cli/station_record.h"
#include "cli/tpm_args.h"
#include "core/display_text.h"
#include "core/x509.h"
#include "engine/exit_codes.h"
#include "provisioning/factory.h"
#include "provisioning/file_identity.h"
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
  std::string ledger;
  bool force = false;
  Pkcs11InitArgs pkcs11;
};

struct FactoryIssueArgs {
  std::string dir;
  std::string serial;
  std::string model;
  std::string out;
  std::string alg = "ecc-p256";
  std::string hw_serial;  // hex
  std::string ek_cert;
  std::string ledger;  // record the identity there, the key's hash standing in for an EK
  std::string station;
  std::string pkcs11_pin_file;
  bool force = false;
  bool json = false;
};

using ProvisionArgs = EnrolArgs;  // the local provisioning takes the options it knows

struct CheckArgs {
  TpmArgs tpm;
  std::string factory_ca;
  std::optional<std::string> expect_serial;
  std::optional<std::string> expect_model;
  std::string handle = "0x81020000";
  std::string nv_index;  // by --nv-layout when empty
  std::string nv_layout = "default";
  bool iak = false;
  std::string iak_handle = "0x81020001";
  std::string iak_nv_index = "0x01C90100";
  std::vector<std::string> tpm_vendor_cas;
  std::string record;
  std::string station;
  bool json = false;
};

// The factory CA `idevid factory init` creates.
Result<Factory> InitFactoryFromArgs(const FactoryInitArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(KeyAlgorithm alg, ParseKeyAlgorithm(args.alg));
  return InitFactory({.dir = args.dir,
                      .algorithm = alg,
                      .manufacturer = args.manufacturer,
                      .force = args.force,
                      .ledger = args.ledger,
                      .pkcs11_uri = args.pkcs11.uri,
                      .pkcs11_module = args.pkcs11.module,
                      .pkcs11_pin_file = args.pkcs11.pin_file});
}

int FactoryInit(const FactoryInitArgs& args) {
  auto factory = InitFactoryFromArgs(args);
  if (!factory) return ReportError(factory.error());
  std::cout << fmt::format(
      "factory CA in {}\n  root:    {}\n  issuing: {}\n  give line "
      "stations and the cloud: {}\n",
      args.dir, SubjectLine(*factory->root), SubjectLine(*factory->issuing),
      FactoryFiles::Chain(args.dir).string());
  if (!factory->pkcs11_uri.empty()) {
    std::cout << fmt::format("  keys in the token: {} (root CA: object-root), module {}\n",
                             DisplayText(factory->pkcs11_uri), DisplayText(factory->pkcs11_module));
  }
  return kExitPass;
}

// Bytes written as hex digits ("0a1b..."), 1 to 64 of them; kUsage naming `what` otherwise.
Result<Bytes> ParseHexBytes(std::string_view what, std::string_view text) {
  constexpr std::size_t kMaxBytes = 64;
  auto bad = [&](std::string_view why) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("{} {} {}", what, QuotedDisplayText(text), why));
  };
  if (text.empty() || text.size() % 2 != 0) return bad("is not an even number of hex digits");
  if (text.size() / 2 > kMaxBytes) return bad(fmt::format("is longer than {} bytes", kMaxBytes));
  Bytes bytes(text.size() / 2);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const char* first = text.data() + 2 * i;
    auto [end, ec] = std::from_chars(first, first + 2, bytes[i], 16);
    if (ec != std::errc() || end != first + 2) return bad("holds a character that is not a hex digit");
  }
  return bytes;
}

// hwSerialNum: --hw-serial, or derived from --ek-cert as provisioning derives it from the
// TPM's EK certificate, or nullopt (derived from the new key).
Result<std::optional<Bytes>> RequestedHardwareSerial(const FactoryIssueArgs& args) {
  if (!args.hw_serial.empty()) {
    IDEVID_ASSIGN_OR_RETURN(Bytes bytes, ParseHexBytes("--hw-serial", args.hw_serial));
    return std::optional<Bytes>(std::move(bytes));
  }
  if (args.ek_cert.empty()) return std::optional<Bytes>();
  auto ek = LoadCertificateFile(args.ek_cert);
  // A file the user names that is no certificate is theirs to fix (exit 4), whatever failed.
  if (!ek) return ConfigError(ConfigCode::kFile, fmt::format("--ek-cert: {}", ek.error().message()));
  IDEVID_ASSIGN_OR_RETURN(Bytes derived, HardwareSerialFromEk(**ek), "deriving hwSerialNum from --ek-cert {}",
                          QuotedDisplayText(args.ek_cert));
  return std::optional<Bytes>(std::move(derived));
}

// An output prefix must name a file in a directory that exists.
Result<void> CheckOutputPrefix(const std::string& prefix) {
  std::filesystem::path parent = std::filesystem::path(prefix).parent_path();
  std::error_code ec;
  if (prefix.empty() || prefix.back() == '/') {
    return UsageError(
        UsageCode::kInvalidArgument,
        fmt::format("--out {} must end in a file name prefix, e.g. DIR/unit", QuotedDisplayText(prefix)));
  }
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("--out {}: no such directory {}", QuotedDisplayText(prefix),
                                  QuotedDisplayText(parent.string())));
  }
  return {};
}

void PrintIssued(const FactoryIssueArgs& args, const FileIdentity& identity, const FileIdentityFiles& files) {
  if (args.json) {
    nlohmann::json j = {{"serial", args.serial},
                        {"model", args.model},
                        {"subject", SubjectLine(*identity.certificate)},
                        {"fingerprint_sha256", identity.fingerprint},
                        {"hw_serial", Hex(identity.hw_serial)},
                        {"certificate", files.certificate.string()},
                        {"chain", files.chain.string()},
                        {"key", files.key.string()}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << fmt::format(
      "issued {} ({})\n  subject:     {}\n  sha256:      {}\n"
      "  certificate: {}\n  chain:       {}\n  key:         {}\n",
      args.serial, args.model, SubjectLine(*identity.certificate), identity.fingerprint,
      DisplayText(files.certificate.string()), DisplayText(files.chain.string()),
      DisplayText(files.key.string()));
}

// Issues the identity `idevid factory issue` asks for and writes its files (recorded in --ledger
// when given); false when the ledger refused it (said on standard output).
Result<bool> IssueFromArgs(const FactoryIssueArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(KeyAlgorithm alg, ParseKeyAlgorithm(args.alg));
  IDEVID_ASSIGN_OR_RETURN(std::optional<Bytes> hw_serial, RequestedHardwareSerial(args));
  IDEVID_TRY(CheckOutputPrefix(args.out));
  IDEVID_ASSIGN_OR_RETURN(Factory factory, LoadFactory(args.dir, {.pkcs11_pin_file = args.pkcs11_pin_file}));
  FileIdentityRequest request{args.serial, args.model, alg, std::move(hw_serial)};
  auto files = FileIdentityFiles::ForPrefix(args.out);
  if (!args.ledger.empty()) {
    IDEVID_ASSIGN_OR_RETURN(auto ledger, OpenLedger(args.ledger));
    IDEVID_ASSIGN_OR_RETURN(
        auto answer, IssueRecordedFileIdentity(factory, request, files, args.force, *ledger, args.station,
                                               {{"kind", "file-identity"}}));
    if (auto* refused = std::get_if<LedgerRefusal>(&answer)) {
      std::cout << fmt::format("refused {}: {}: {}\n", QuotedDisplayText(args.serial), refused->reason,
                               refused->detail);
      return false;
    }
    PrintIssued(args, std::get<FileIdentity>(answer), files);
    return true;
  }
  IDEVID_ASSIGN_OR_RETURN(FileIdentity identity, IssueFileIdentity(factory, request));
  IDEVID_TRY(WriteFileIdentity(identity, factory, files, args.force));
  PrintIssued(args, identity, files);
  return true;
}

int FactoryIssue(const FactoryIssueArgs& args) {
  auto issued = IssueFromArgs(args);
  if (!issued) return ReportError(issued.error());
  return *issued ? kExitPass : kExitFail;
}

void PrintTable(const CheckReport& report, const std::string& station) {
  std::cout << fmt::format("Line check of {} ({}){}\n", report.identity.serial, report.identity.model,
                           station.empty() ? "" : " at " + station);
  for (const auto& m : report.measurements) {
    std::cout << fmt::format("  {}  {:<26} {}{}\n", m.passed ? "PASS" : "FAIL", m.name, m.value,
                             m.passed || m.expected.empty() ? "" : "  (expected " + m.expected + ")");
  }
  auto failed = report.failures();
  std::cout << (failed.empty() ? fmt::format("Result: PASS ({} checks)\n", report.measurements.size())
                               : fmt::format("Result: FAIL ({} of {} checks failed: {})\n", failed.size(),
                                             report.measurements.size(), fmt::join(failed, ", ")));
}

struct Checked {
  CheckRequest request;
  CheckReport report;
};

// The line check of the unit on the TPM the options name.
Result<Checked> CheckFromArgs(const CheckArgs& args) {
  IDEVID_ASSIGN_OR_RETURN(std::uint32_t handle, ParseHandle("--handle", args.handle));
  IDEVID_ASSIGN_OR_RETURN(std::uint32_t index,
                          ParseHandle("--nv-index", IdevidNvIndexText(args.nv_index, args.nv_layout)));
  IDEVID_ASSIGN_OR_RETURN(TrustBundle bundle, LoadTrustBundle(args.factory_ca));
  CheckRequest request{handle, index, args.expect_serial, args.expect_model};
  request.check_iak = args.iak || !args.tpm_vendor_cas.empty();
  IDEVID_ASSIGN_OR_RETURN(request.iak_handle, ParseHandle("--iak-handle", args.iak_handle));
  IDEVID_ASSIGN_OR_RETURN(request.iak_nv_index, ParseHandle("--iak-nv-index", args.iak_nv_index));
  for (const auto& path : args.tpm_vendor_cas) {
    IDEVID_ASSIGN_OR_RETURN(TrustBundle vendor, LoadTrustBundle(path), "--tpm-vendor-ca");
    request.vendor_cas.push_back(std::move(vendor));
  }
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, OpenTpm(args.tpm));
  IDEVID_ASSIGN_OR_RETURN(CheckReport report, CheckUnit(tpm, bundle, request));
  return Checked{std::move(request), std::move(report)};
}

int Check(const CheckArgs& args) {
  StationContext context = MakeStationContext(args.station);
  auto checked = CheckFromArgs(args);
  context.ended = SystemClock::now();
  if (!checked) {
    return FinishRecord(args.record, ErrorRecord("line-check", checked.error(), context),
                        ReportError(checked.error()));
  }
  const CheckReport& report = checked->report;
  nlohmann::json record = CheckRecord(checked->request, report, context);
  if (args.json) {
    std::cout << record.dump(2) << "\n";
  } else {
    PrintTable(report, args.station);
  }
  return FinishRecord(args.record, record, report.passed() ? kExitPass : kExitFail);
}

void AddFactoryInit(CLI::App& factory, int* exit_code) {
  auto args = std::make_shared<FactoryInitArgs>();
  CLI::App* init = factory.add_subcommand("init", "Create a root CA and an issuing CA");
  init->add_option("--dir", args->dir, "Directory for the CA files")->required();
  init->add_option("--alg", args->alg, "Key algorithm: ecc-p256 or rsa-2048")->capture_default_str();
  init->add_option("--manufacturer", args->manufacturer, "Organization (O) of the certificates")
      ->capture_default_str();
  init->add_flag("--force", args->force, "Replace an existing factory CA in DIR (and its keys in the token)");
  init->add_option(
      "--ledger", args->ledger,
      "The ledger of every unit, recorded in factory.json: sqlite:PATH (default DIR/ledger.sqlite) "
      "or postgresql://... (a password goes in ~/.pgpass or PGPASSFILE, not here)");
  AddPkcs11InitOptions(*init, args->pkcs11);
  init->callback([args, exit_code] { *exit_code = FactoryInit(*args); });
}

void AddFactoryIssue(CLI::App& factory, int* exit_code) {
  auto args = std::make_shared<FactoryIssueArgs>();
  CLI::App* issue = factory.add_subcommand(
      "issue",
      "Issue a file-mode device identity: an IEEE 802.1AR idev-id certificate (the profile "
      "provisioning burns into a TPM) and a fresh private key, written to PREFIX.pem, "
      "PREFIX-chain.pem (certificate + issuing CA) and PREFIX.key (0600). Without a TPM there "
      "is no EK: hwSerialNum is SHA-256 of the new key's public key (SubjectPublicKeyInfo) "
      "unless --hw-serial or --ek-cert says otherwise");
  issue->add_option("--dir", args->dir, "Factory CA directory ('idevid factory init')")->required();
  issue->add_option("--serial", args->serial, "Unit serial number (subject serialNumber)")->required();
  issue->add_option("--model", args->model, "Unit model (subject CN)")->required();
  issue->add_option("--out", args->out, "Output prefix: writes PREFIX.pem, PREFIX-chain.pem, PREFIX.key")
      ->required();
  issue->add_option("--alg", args->alg, "Key algorithm: ecc-p256 or rsa-2048")->capture_default_str();
  auto* hw = issue->add_option("--hw-serial", args->hw_serial,
                               "hardwareModuleName hwSerialNum as hex (default: SHA-256 of the new "
                               "key's public key)");
  auto* ek = issue
                 ->add_option("--ek-cert", args->ek_cert,
                              "Derive hwSerialNum from this EK certificate, as provisioning does "
                              "(SHA-256 of its public key)")
                 ->check(ExistingFileCheck());
  hw->excludes(ek);
  ek->excludes(hw);
  issue->add_flag("--force", args->force, "Replace existing output files");
  issue->add_option("--ledger", args->ledger,
                    "Record the identity in this ledger (sqlite:PATH, postgresql://...) as a unit: the "
                    "key's hash stands in for an EK; exit 1 when the ledger refuses the serial (clone)");
  issue->add_option("--station", args->station, "Station id for the ledger");
  issue->add_flag("--json", args->json, "Print the paths and the fingerprint as JSON");
  AddPkcs11PinFileOption(*issue, args->pkcs11_pin_file);
  issue->callback([args, exit_code] { *exit_code = FactoryIssue(*args); });
}

void AddProvision(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ProvisionArgs>();
  CLI::App* cmd = app.add_subcommand(
      "provision",
      "Give one unit its burnt-in identity: TCG enrolment (IAK and IDevID, every CA "
      "check) with --tpm-vendor-ca or a service URL, else the IDevID alone; then the line "
      "check, and the unit committed in the factory's ledger (exit 1 when the ledger "
      "refuses it: clone, serial-issued, tpm-has-serial, duplicate-key, revoked). The same "
      "command again resumes a unit whose station died before the commit");
  AddTpmOptions(*cmd, args->tpm);
  cmd->add_option("--factory", args->factory,
                  "Factory CA directory, or the enrolment service https://HOST:PORT ('idevid factory serve')")
      ->required();
  cmd->add_option("--serial", args->serial, "Unit serial number")->required();
  cmd->add_option("--model", args->model, "Unit model")->required();
  cmd->add_option("--key-alg", args->key_alg, "ecc-p256 (TCG H-2) or rsa-2048 (H-1)")->capture_default_str();
  cmd->add_option("--handle", args->handle, "Persistent key handle")->capture_default_str();
  cmd->add_option("--nv-index", args->nv_index, "NV index of the IDevID certificate (default 0x01C90000)");
  cmd->add_option("--record", args->record, "Write the per-unit JSON record here");
  cmd->add_option("--station", args->station, "Station id for the record");
  cmd->add_flag("--force", args->force, "Replace an identity the TPM already holds");
  cmd->add_flag("--json", args->json, "Print the record as JSON");
  AddPkcs11PinFileOption(*cmd, args->pkcs11_pin_file);
  AddEnrolOptions(*cmd, *args);
  cmd->footer(
      "For tests of what the ledger makes of a dying station: IDEVID_FAULT_KILL_AT=reserved|issued|written "
      "makes the process SIGKILL itself once the serial is reserved, the certificate issued, or NV written.");
  cmd->callback(
      [args, exit_code] { *exit_code = WantsEnrolment(*args) ? Enrol(*args) : ProvisionIdevid(*args); });
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
  cmd->add_option("--nv-index", args->nv_index, "NV index of the IDevID certificate (default 0x01C90000)");
  cmd->add_option("--nv-layout", args->nv_layout,
                  "default (IDevID certificate 0x01C90000) or swtpm (0x01C90200, as swtpm_setup --idevid)")
      ->check(CLI::IsMember({"default", "swtpm"}))
      ->capture_default_str();
  cmd->add_flag("--iak", args->iak,
                "Also check the IAK, its certificate and a fresh certify of the IDevID by it");
  cmd->add_option("--iak-handle", args->iak_handle, "Persistent handle of the IAK")->capture_default_str();
  cmd->add_option("--iak-nv-index", args->iak_nv_index, "NV index of the IAK certificate")
      ->capture_default_str();
  cmd->add_option("--tpm-vendor-ca", args->tpm_vendor_cas,
                  "Check that the EK certificate chains to this TPM vendor CA (implies --iak; repeatable)")
      ->check(ExistingFileCheck());
  cmd->add_option("--station", args->station, "Station id");
  cmd->add_option("--record", args->record, "Write the per-unit JSON record here");
  cmd->add_flag("--json", args->json, "Print the record as JSON");
  cmd->callback([args, exit_code] { *exit_code = Check(*args); });
}

}  // namespace

void AddFactoryCommands(CLI::App& app, int* exit_code) {
  CLI::App* factory = app.add_subcommand("factory", "The factory CA and what it issues");
  factory->require_subcommand(1);
  AddFactoryInit(*factory, exit_code);
  AddFactoryIssue(*factory, exit_code);
  AddFactoryServe(*factory, exit_code);
  AddProvision(app, exit_code);
  AddCheck(app, exit_code);
}

}  // namespace idevid::cli
