#include "engine/tested_unit.h"

#include <unistd.h>

#include <fmt/format.h>

#include "core/file_io.h"
#include "core/idevid_profile.h"
#include "core/tpm_capability.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "device/config/config_parser.h"
#include "device/pkid/pkid_client.h"
#include "core/fault_tcti/fault_spec.h"
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
    if (auto faults = ParseFaultSpec(options.inject); !faults) return Fail(faults.error().WithContext("--inject"));
    if (!std::filesystem::exists(FaultTctiLibrary())) {
      return UsageError(fmt::format("--inject needs the fault TCTI module {}; build the target "
                                    "tss2-tcti-idevid-fault", FaultTctiLibrary()));
    }
  }
  std::unique_ptr<TestedUnit> unit(new TestedUnit());
  unit->options_ = options;
  if (options.tcti.empty()) {
    auto swtpm = SwtpmInstance::Start({.state_dir = options.work_dir / "tpm", .with_abrmd = true,
                                       .manufacture = true});
    if (!swtpm) return Fail(swtpm.error().WithContext("starting the embedded TPM"));
    unit->swtpm_ = std::move(*swtpm);
  }
  if (!options.tcti.empty() && options.provision && options.factory.empty()) {
    return UsageError("provisioning a TPM that stays provisioned needs the factory that vouches for "
                      "it: --factory DIR (or test the identity it holds with --no-provision "
                      "--factory-ca FILE)");
  }
  auto issuer = !options.factory.empty()
                    ? LoadFactory(options.factory)
                    : InitFactory({.dir = options.work_dir / (options.provision ? "factory" : "bench-ca"),
                                   .force = true});
  if (!issuer) return Fail(issuer.error().WithContext("creating the factory CA"));
  unit->issuer_ = std::move(*issuer);
  Result<void> identity = options.provision ? unit->ProvisionTheUnit() : unit->ReadTheUnit();
  if (!identity) return Fail(identity.error());
  if (options.on_identified) options.on_identified(unit->options_.serial, unit->options_.model);
  if (auto files = unit->WriteDeviceFiles(); !files) return Fail(files.error());
  auto config = LoadDeviceConfig(unit->config_path());
  if (!config) return Fail(config.error());
  unit->config_ = std::move(*config);
  auto cloud = CloudServer::Start({"127.0.0.1", 0, options.work_dir / "cloud.pem",
                                   options.work_dir / "cloud.key", options.work_dir / "cloud-trust.pem",
                                   std::nullopt, options.work_dir / "cloud.jsonl"});
  if (!cloud) return Fail(cloud.error().WithContext("starting the cloud peer"));
  unit->cloud_ = std::move(*cloud);
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
  auto tpm = TpmContext::Open(tcti());
  if (!tpm) return Fail(tpm.error());
  auto provisioned = ProvisionUnit(*tpm, *issuer_, {.serial = options_.serial, .model = options_.model,
                                                    .force = swtpm_.has_value(), .when_held = kTargetKeepsItsIdentity});
  if (!provisioned) return Fail(provisioned.error().WithContext("provisioning the unit"));
  tpm_info_ = provisioned->tpm;
  if (auto kept = WriteFileAtomic(dir() / "idevid.pem", *CertificatePem(*provisioned->certificate)); !kept) {
    return Fail(kept.error());
  }
  identity_ = {{"fingerprint_sha256", provisioned->certificate_fingerprint},
               {"subject", SubjectLine(*provisioned->certificate)},
               {"issuer", IssuerLine(*provisioned->certificate)},
               {"ek_certificate_fingerprint_sha256", provisioned->ek_certificate_fingerprint}};
  factory_ca_ = FactoryFiles::Chain(issuer_->dir);
  return {};
}

// The identity already in the TPM: serial, model and facts from its certificate.
Result<void> TestedUnit::ReadTheUnit() {
  if (options_.factory_ca.empty()) {
    return UsageError("--no-provision needs --factory-ca FILE: the chain the unit's idev-id must reach");
  }
  factory_ca_ = std::filesystem::absolute(options_.factory_ca);
  auto tpm = TpmContext::Open(tcti());
  if (!tpm) return Fail(tpm.error());
  auto info = ReadTpmInfo(*tpm);
  if (!info) return Fail(info.error());
  tpm_info_ = *info;
  auto der = NvRead(*tpm, 0x01C90000);
  if (!der) return Fail(der.error().WithContext("reading the unit's idev-id"));
  auto cert = ParseCertificate(*der);
  if (cert) {
    if (auto kept = WriteFileAtomic(dir() / "idevid.pem", *CertificatePem(**cert)); !kept) return Fail(kept.error());
  }
  if (!cert) return Fail(cert.error().WithContext("the unit's idev-id"));
  auto serial = SubjectAttribute(**cert, kOidSubjectSerialNumber);
  auto model = SubjectAttribute(**cert, "CN");
  if (!serial || serial->empty() || !model || model->empty()) {
    return ConfigError("the unit's idev-id has no serialNumber or CN");
  }
  options_.serial = serial->front();
  options_.model = model->front();
  identity_ = {{"fingerprint_sha256", Sha256Fingerprint(**cert).value_or("")},
               {"subject", SubjectLine(**cert)},
               {"issuer", IssuerLine(**cert)}};
  return {};
}

// The cloud's certificate, a file-system certificate of the same unit, and device.conf.
Result<void> TestedUnit::WriteDeviceFiles() {
  const auto& d = dir();
  const Factory& f = *issuer_;
  auto cloud_key = GenerateKey(KeyAlgorithm::kEccP256);
  auto fs_key = GenerateKey(KeyAlgorithm::kEccP256);
  if (!cloud_key || !fs_key) return Fail(ErrorDomain::kOpenSsl, 0, "cannot generate keys");
  auto cloud = IssueCertificate({.subject = {{"CN", "cloud.example"}}, .not_after = "20991231235959Z",
                                 .extensions = {{"subjectAltName", "DNS:cloud.example,IP:127.0.0.1"}}},
                                **cloud_key, f.issuing.get(), *f.issuing_key);
  auto spec = IdevidCertificateSpec({options_.serial, options_.model, f.manufacturer, Bytes(32, 0)});
  if (!cloud || !spec) return Fail(ErrorDomain::kOpenSsl, 0, "cannot issue the bench certificates");
  auto fs = IssueCertificate(*spec, **fs_key, f.issuing.get(), *f.issuing_key);
  if (!fs) return Fail(fs.error());
  Result<void> w = WriteFileAtomic(d / "cloud.pem", *CertificatePem(**cloud) + *CertificatePem(*f.issuing));
  if (w) w = WritePrivateKeyPem(d / "cloud.key", **cloud_key);
  if (w) w = WriteFileAtomic(d / "fs-cert.pem", *CertificatePem(**fs));
  if (w) w = WritePrivateKeyPem(d / "fs-cert.key", **fs_key);
  // The cloud trusts the unit's factory and the bench's CA (for the file certificate).
  auto device_chain = ReadFileText(factory_ca_);
  if (!device_chain) return Fail(device_chain.error());
  if (w) w = WriteFileAtomic(d / "cloud-trust.pem", *device_chain + *ReadFileText(FactoryFiles::Chain(f.dir)));
  if (!w) return w;
  return WriteFileAtomic(config_path(), fmt::format(
      "set security pki ca-profile factory certificate {1}/factory-ca.pem\n"
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
  auto child = ChildProcess::Spawn({.argv = {IdevidExecutable(), "pkid", "--tcti", tcti, "--config",
                                             config_path().string(), "--socket", socket.string()},
                                    .log = dir() / "pkid.log",
                                    .env = {{"TSS2_LOG", "all+NONE"}}});
  if (!child) return Fail(child.error());
  bool up = PollUntil([&] {
    return SendPkidCommand(socket, "show security pki node-local local-certificate").has_value();
  }, std::chrono::seconds(15));
  if (!up) {
    return Fail(ErrorDomain::kProcess, 0, fmt::format("pkid did not answer on {}; its log ends with:\n{}",
                                                      socket.string(), LogTail(dir() / "pkid.log")));
  }
  return child;
}

}  // namespace idevid
