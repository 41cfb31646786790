#include "engine/tested_unit.h"

#include <unistd.h>

#include <fmt/format.h>

#include "core/fault_tcti/fault_spec.h"
#include "core/file_io.h"
#include "core/idevid_profile.h"
#include "core/tpm_capability.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "device/config/config_parser.h"
#include "device/pkid/pkid_client.h"
#include "provisioning/provisioner.h"

namespace idevid {

std::string IdevidExecutable() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "idevid";
  auto beside = self.parent_path() / "idevid";
  return self.filename() != "idevid" && std::filesystem::exists(beside, ec) ? beside.string() : self.string();
}

std::string FaultTctiLibrary() {
  return (std::filesystem::path(IdevidExecutable()).parent_path() / "libtss2-tcti-idevid-fault.so").string();
}

std::string TestedUnit::tcti() const {
  if (options_.inject.empty()) return base_tcti();
  return FaultTctiString(FaultTctiLibrary(), options_.inject, base_tcti()).value_or(base_tcti());
}

Result<EventLog> TestedUnit::BootAgain() {
  if (!swtpm_) {
    return UsageError(UsageCode::kUnsupported,
                      "a unit on --target boots itself; only the embedded swtpm is booted");
  }
  IDEVID_ASSIGN_OR_RETURN(EventLog log, swtpm_->Boot(options_.boot_profile), "booting the unit again");
  return log;
}

std::map<std::string, pid_t> TestedUnit::processes() const {
  std::map<std::string, pid_t> pids;
  if (swtpm_) pids["swtpm"] = swtpm_->swtpm_pid();
  if (swtpm_ && swtpm_->abrmd()) pids["tpm2-abrmd"] = swtpm_->abrmd()->abrmd_pid();
  return pids;
}

TestedUnit::~TestedUnit() {
  cloud_.reset();
  if (swtpm_) swtpm_->Stop();
}

Result<std::unique_ptr<TestedUnit>> TestedUnit::Prepare(const UnitOptions& options) {
  if (!options.inject.empty()) {
    IDEVID_TRY(ParseFaultSpec(options.inject), "--inject");
    if (!std::filesystem::exists(FaultTctiLibrary())) {
      return UsageError(UsageCode::kUnsupported,
                        fmt::format("--inject needs the fault TCTI module {}; build the target "
                                    "tss2-tcti-idevid-fault",
                                    FaultTctiLibrary()));
    }
  }
  std::unique_ptr<TestedUnit> unit(new TestedUnit());
  unit->options_ = options;
  if (options.tcti.empty()) {
    IDEVID_ASSIGN_OR_RETURN(unit->swtpm_,
                            SwtpmInstance::Start({.state_dir = options.work_dir / "tpm",
                                                  .with_abrmd = true,
                                                  .manufacture = true,
                                                  .boot = options.boot_profile}),
                            "starting the embedded TPM");
  }
  if (!options.tcti.empty() && options.provision && options.factory.empty()) {
    return UsageError(UsageCode::kMissingArgument,
                      "provisioning a TPM that stays provisioned needs the factory that vouches for "
                      "it: --factory DIR (or test the identity it holds with --no-provision "
                      "--factory-ca FILE)");
  }
  IDEVID_ASSIGN_OR_RETURN(
      unit->issuer_,
      !options.factory.empty()
          ? LoadFactory(options.factory)
          : InitFactory(
                {.dir = options.work_dir / (options.provision ? "factory" : "bench-ca"), .force = true}),
      "creating the factory CA");
  IDEVID_TRY(options.provision ? unit->ProvisionTheUnit() : unit->ReadTheUnit());
  if (options.on_identified) options.on_identified(unit->options_.serial, unit->options_.model);
  IDEVID_TRY(unit->WriteDeviceFiles());
  IDEVID_ASSIGN_OR_RETURN(unit->config_, LoadDeviceConfig(unit->config_path()));
  IDEVID_ASSIGN_OR_RETURN(
      unit->cloud_,
      CloudServer::Start({"127.0.0.1", 0, options.work_dir / "cloud.pem", options.work_dir / "cloud.key",
                          options.work_dir / "cloud-trust.pem", options.cloud_inventory,
                          options.work_dir / "cloud.jsonl"}),
      "starting the cloud peer");
  return unit;
}

// What `idevid run` offers for a --target TPM that already holds an identity (it has no option
// to replace one; only its embedded swtpm is disposable).
constexpr const char* kTargetKeepsItsIdentity =
    "idevid run keeps the identity of a --target TPM: test it with --no-provision --factory-ca FILE, "
    "or give run a TPM without an identity";

// Provisions the unit; on a TPM the harness did not start, an identity already there is kept
// (the error says how to test it instead).
Result<void> TestedUnit::ProvisionTheUnit() {
  IDEVID_ASSIGN_OR_RETURN(auto tpm, TpmContext::Open(tcti()));
  IDEVID_ASSIGN_OR_RETURN(auto provisioned,
                          ProvisionUnit(tpm, *issuer_,
                                        {.serial = options_.serial,
                                         .model = options_.model,
                                         .force = swtpm_.has_value(),
                                         .when_held = kTargetKeepsItsIdentity}),
                          "provisioning the unit");
  tpm_info_ = provisioned.tpm;
  IDEVID_ASSIGN_OR_RETURN(std::string pem, CertificatePem(*provisioned.certificate));
  IDEVID_TRY(WriteFileAtomic(dir() / "idevid.pem", pem));
  identity_ = {{"fingerprint_sha256", provisioned.certificate_fingerprint},
               {"subject", SubjectLine(*provisioned.certificate)},
               {"issuer", IssuerLine(*provisioned.certificate)},
               {"ek_certificate_fingerprint_sha256", provisioned.ek_certificate_fingerprint}};
  factory_ca_ = FactoryFiles::Chain(issuer_->dir);
  return {};
}

// The identity already in the TPM: serial, model and facts from its certificate.
Result<void> TestedUnit::ReadTheUnit() {
  if (options_.factory_ca.empty()) {
    return UsageError(UsageCode::kMissingArgument,
                      "--no-provision needs --factory-ca FILE: the chain the unit's idev-id must reach");
  }
  factory_ca_ = std::filesystem::absolute(options_.factory_ca);
  IDEVID_ASSIGN_OR_RETURN(auto tpm, TpmContext::Open(tcti()));
  IDEVID_ASSIGN_OR_RETURN(tpm_info_, ReadTpmInfo(tpm));
  IDEVID_ASSIGN_OR_RETURN(auto der, NvRead(tpm, 0x01C90000), "reading the unit's idev-id");
  IDEVID_ASSIGN_OR_RETURN(auto cert, ParseCertificate(der), "the unit's idev-id");
  IDEVID_ASSIGN_OR_RETURN(std::string pem, CertificatePem(*cert));
  IDEVID_TRY(WriteFileAtomic(dir() / "idevid.pem", pem));
  auto serial = SubjectAttribute(*cert, kOidSubjectSerialNumber);
  auto model = SubjectAttribute(*cert, "CN");
  if (!serial || serial->empty() || !model || model->empty()) {
    return ConfigError(ConfigCode::kMissing, "the unit's idev-id has no serialNumber or CN");
  }
  options_.serial = serial->front();
  options_.model = model->front();
  identity_ = {{"fingerprint_sha256", Sha256Fingerprint(*cert).value_or("")},
               {"subject", SubjectLine(*cert)},
               {"issuer", IssuerLine(*cert)}};
  return {};
}

// The cloud's certificate, a file-system certificate of the same unit, and device.conf.
Result<void> TestedUnit::WriteDeviceFiles() {
  const auto& d = dir();
  const Factory& f = *issuer_;
  IDEVID_ASSIGN_OR_RETURN(auto cloud_key, GenerateKey(KeyAlgorithm::kEccP256), "the cloud's key");
  IDEVID_ASSIGN_OR_RETURN(auto fs_key, GenerateKey(KeyAlgorithm::kEccP256), "the file certificate's key");
  IDEVID_ASSIGN_OR_RETURN(
      auto cloud,
      IssueCertificate({.subject = {{"CN", "cloud.example"}},
                        .not_after = "20991231235959Z",
                        .extensions = {{"subjectAltName", "DNS:cloud.example,IP:127.0.0.1"}}},
                       *cloud_key, f.issuing.get(), *f.issuing_key),
      "issuing the cloud's certificate");
  IDEVID_ASSIGN_OR_RETURN(
      auto spec, IdevidCertificateSpec({options_.serial, options_.model, f.manufacturer, Bytes(32, 0)}));
  IDEVID_ASSIGN_OR_RETURN(auto fs, IssueCertificate(spec, *fs_key, f.issuing.get(), *f.issuing_key),
                          "issuing the file certificate");
  IDEVID_ASSIGN_OR_RETURN(std::string cloud_pem, CertificatePem(*cloud));
  IDEVID_ASSIGN_OR_RETURN(std::string issuing_pem, CertificatePem(*f.issuing));
  IDEVID_ASSIGN_OR_RETURN(std::string fs_pem, CertificatePem(*fs));
  IDEVID_TRY(WriteFileAtomic(d / "cloud.pem", cloud_pem + issuing_pem));
  IDEVID_TRY(WritePrivateKeyPem(d / "cloud.key", *cloud_key));
  IDEVID_TRY(WriteFileAtomic(d / "fs-cert.pem", fs_pem));
  IDEVID_TRY(WritePrivateKeyPem(d / "fs-cert.key", *fs_key));
  // The cloud trusts the unit's factory and the bench's CA (for the file certificate).
  IDEVID_ASSIGN_OR_RETURN(std::string device_chain, ReadFileText(factory_ca_));
  IDEVID_ASSIGN_OR_RETURN(std::string bench_chain, ReadFileText(FactoryFiles::Chain(f.dir)));
  IDEVID_TRY(WriteFileAtomic(d / "cloud-trust.pem", device_chain + bench_chain));
  return WriteFileAtomic(
      config_path(),
      fmt::format("set security pki ca-profile factory certificate {1}/factory-ca.pem\n"
                  "set security pki ca-profile other certificate {1}/issuing-ca.pem\n"
                  "set security pki node-local local-certificate fs-cert certificate {0}/fs-cert.pem\n"
                  "set security pki node-local local-certificate fs-cert private-key {0}/fs-cert.key\n"
                  "set security pki node-local local-certificate fs-cert ca-profile factory\n"
                  "set security pki node-local idev-id nv-index 0x01C90000 key-handle 0x81020000\n"
                  "set services ssl initiation profile aamw-tpm client-certificate idev-id\n"
                  "set services ssl initiation profile aamw-tpm crypto-hardware-offload tpm\n"
                  "set services ssl initiation profile aamw-tpm trusted-ca factory\n"
                  "set services ssl initiation profile aamw-tpm server-name cloud.example\n"
                  "set services ssl initiation profile aamw-tpm12 client-certificate idev-id\n"
                  "set services ssl initiation profile aamw-tpm12 crypto-hardware-offload tpm\n"
                  "set services ssl initiation profile aamw-tpm12 trusted-ca factory\n"
                  "set services ssl initiation profile aamw-tpm12 protocol-version tls12\n"
                  "set services ssl initiation profile aamw-file client-certificate fs-cert\n"
                  "set services ssl initiation profile aamw-file trusted-ca factory\n"
                  "set services ssl initiation profile aamw-file12 client-certificate fs-cert\n"
                  "set services ssl initiation profile aamw-file12 trusted-ca factory\n"
                  "set services ssl initiation profile aamw-file12 protocol-version tls12\n",
                  d.string(), f.dir.string()));
}

Result<ChildProcess> TestedUnit::StartPkid(const std::string& tcti,
                                           const std::filesystem::path& socket) const {
  IDEVID_ASSIGN_OR_RETURN(
      ChildProcess child,
      ChildProcess::Spawn({.argv = {IdevidExecutable(), "pkid", "--tcti", tcti, "--config",
                                    config_path().string(), "--socket", socket.string()},
                           .log = dir() / "pkid.log",
                           .env = {{"TSS2_LOG", "all+NONE"}}}),
      "starting pkid");
  bool up = PollUntil(
      [&] { return SendPkidCommand(socket, "show security pki node-local local-certificate").has_value(); },
      std::chrono::seconds(15));
  if (!up) {
    std::optional<std::string> ended = child.Ended();
    return PeerError(
        PeerCode::kTimeout,
        fmt::format("pkid did not answer on {} within 15 s{}; its log ends with:\n{}", socket.string(),
                    ended ? " (it " + *ended + ")" : "", LogTail(dir() / "pkid.log")));
  }
  return child;
}

}  // namespace idevid
