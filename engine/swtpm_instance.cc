#include "engine/swtpm_instance.h"

#include <fmt/format.h>

#include "core/file_io.h"
#include "core/tpm_capability.h"
#include "core/tpm_context.h"
#include "core/tss_error.h"
#include "engine/ports.h"
#include "engine/synthetic_boot.h"

namespace idevid {
namespace {

constexpr int kPortAttempts = 5;

std::vector<std::string> SwtpmArgs(const std::filesystem::path& dir, std::uint16_t port, bool startup_clear) {
  return {"swtpm",
          "socket",
          "--tpm2",
          "--tpmstate",
          fmt::format("dir={}", (dir / "tpm").string()),
          "--server",
          fmt::format("type=tcp,port={},bindaddr=127.0.0.1", port),
          "--ctrl",
          fmt::format("type=tcp,port={},bindaddr=127.0.0.1", port + 1),
          "--flags",
          startup_clear ? "not-need-init,startup-clear" : "not-need-init",
          "--log",
          fmt::format("file={},level=1", (dir / "swtpm.log").string())};
}

// Whether swtpm's log, from byte `from` on (this attempt's lines), says its ports were taken.
bool LostThePorts(const std::filesystem::path& log, std::uintmax_t from) {
  std::string text = ReadFileText(log).value_or("");
  std::string_view attempt = from < text.size() ? std::string_view(text).substr(from) : std::string_view();
  return attempt.find("in use") != std::string_view::npos || attempt.find("bind") != std::string_view::npos;
}

Result<void> ProbeTpm(const std::string& tcti) {
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm,
                          TpmContext::Open(tcti, {.command_timeout = std::chrono::seconds(5)}));
  auto manufacturer = ReadTpmProperty(tpm, TPM2_PT_MANUFACTURER);
  // TPM_RC_INITIALIZE: a TPM waiting for TPM2_Startup answers too.
  if (!manufacturer && BaseTpmRc(static_cast<TSS2_RC>(manufacturer.error().code())) != TPM2_RC_INITIALIZE) {
    return Fail(manufacturer.error());
  }
  return {};
}

// swtpm_setup's configuration, pointing its local CA into `dir` so that instances do not share
// (or need write access to) the system-wide one.
Result<std::filesystem::path> WriteSetupConfig(const std::filesystem::path& dir) {
  auto ca_dir = dir / "localca";
  std::error_code ec;
  std::filesystem::create_directories(ca_dir, ec);
  if (ec) return ErrnoError(ec.value(), "cannot create " + ca_dir.string());
  auto localca_conf = dir / "swtpm-localca.conf";
  auto setup_conf = dir / "swtpm_setup.conf";
  IDEVID_TRY(WriteFileAtomic(localca_conf,
                             fmt::format("statedir = {0}\nsigningkey = {0}/signkey.pem\n"
                                         "issuercert = {0}/issuercert.pem\ncertserial = {0}/certserial\n",
                                         ca_dir.string())),
             "writing swtpm-localca's configuration");
  IDEVID_TRY(
      WriteFileAtomic(setup_conf, fmt::format("create_certs_tool = swtpm_localca\n"
                                              "create_certs_tool_config = {}\n"
                                              "create_certs_tool_options = /etc/swtpm-localca.options\n"
                                              "active_pcr_banks = sha256\n",
                                              localca_conf.string())),
      "writing swtpm_setup's configuration");
  return setup_conf;
}

// swtpm-localca's issuing CA and root, as one bundle: the "TPM vendor" of a manufactured swtpm.
Result<void> WriteVendorCa(const std::filesystem::path& dir) {
  IDEVID_ASSIGN_OR_RETURN(std::string issuing, ReadFileText(dir / "localca" / "issuercert.pem"),
                          "the TPM vendor CA of swtpm_setup");
  IDEVID_ASSIGN_OR_RETURN(std::string root, ReadFileText(dir / "localca" / "swtpm-localca-rootca-cert.pem"),
                          "the TPM vendor CA of swtpm_setup");
  return WriteFileAtomic(SwtpmInstance::VendorCaOf(dir), issuing + root);
}

// Runs swtpm_setup once on the state directory: EK (RSA-2048) and its certificate in NV.
// The vendor's local CA (its key, certificates and serial counter) copied into `dir`, so that
// swtpm_setup signs with it instead of making a CA of its own.
Result<void> ShareVendor(const std::filesystem::path& vendor, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir / "localca", ec);
  std::filesystem::copy(
      vendor / "localca", dir / "localca",
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) return ErrnoError(ec.value(), "cannot take the TPM vendor CA from " + vendor.string());
  return {};
}

Result<void> Manufacture(const std::filesystem::path& dir, const std::filesystem::path& vendor) {
  if (std::filesystem::exists(dir / "tpm" / "tpm2-00.permall")) return {};
  if (!vendor.empty()) IDEVID_TRY(ShareVendor(vendor, dir), "manufacturing the TPM in {}", dir.string());
  IDEVID_ASSIGN_OR_RETURN(auto config, WriteSetupConfig(dir), "manufacturing the TPM in {}", dir.string());
  auto log = dir / "swtpm_setup.log";
  IDEVID_ASSIGN_OR_RETURN(
      CommandOutput run,
      RunCommand({"swtpm_setup", "--tpm2", "--tpmstate", (dir / "tpm").string(), "--create-ek-cert",
                  "--create-platform-cert", "--config", config.string(), "--logfile", log.string()},
                 {}, std::chrono::seconds(120)));
  if (run.exit_status != 0) {
    return Fail(ErrorDomain::kProcess, run.status_code,
                fmt::format("swtpm_setup failed (exit status {}); its log {} ends with:\n{}{}",
                            run.exit_status, log.string(), LogTail(log), run.err));
  }
  return WriteVendorCa(dir);
}

}  // namespace

Result<SwtpmInstance> SwtpmInstance::Start(const SwtpmOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.state_dir / "tpm", ec);
  if (ec) return ErrnoError(ec.value(), "cannot create " + (options.state_dir / "tpm").string());
  SwtpmInstance instance;
  instance.state_dir_ = std::filesystem::absolute(options.state_dir);
  if (options.manufacture) IDEVID_TRY(Manufacture(instance.state_dir_, options.vendor));
  auto log = instance.state_dir_ / "swtpm.log";
  for (int attempt = 1;; ++attempt) {
    IDEVID_ASSIGN_OR_RETURN(std::uint16_t port,
                            options.port != 0 ? Result<std::uint16_t>(options.port) : FindFreePortPair(),
                            "starting swtpm");
    std::error_code size_error;
    std::uintmax_t log_start = std::filesystem::exists(log) ? std::filesystem::file_size(log, size_error) : 0;
    IDEVID_ASSIGN_OR_RETURN(
        instance.swtpm_,
        ChildProcess::Spawn({.argv = SwtpmArgs(instance.state_dir_, port, options.startup_clear),
                             .log = log,
                             .detach = options.detach}));
    instance.port_ = port;
    // Both ports must be held by this swtpm, not merely accept connections: another process
    // can take them between the pick and swtpm's bind (after a manufacture that takes seconds),
    // and its TPM would answer in place of ours while ours exits. Looked up in /proc, not
    // probed: a connection on the command port would occupy swtpm's single client slot.
    auto control = static_cast<std::uint16_t>(port + 1);
    pid_t pid = instance.swtpm_.pid();
    bool listening = PollUntil(
        [&] {
          return instance.swtpm_.Ended() || (ProcessListensOn(pid, control) && ProcessListensOn(pid, port));
        },
        options.start_timeout);
    // Probed until it answers, exits or the deadline passes: a TPM that listens may not yet serve.
    Result<void> probe = Result<void>{};
    if (listening) {
      PollUntil([&] { return instance.swtpm_.Ended() || (probe = ProbeTpm(instance.swtpm_tcti())); },
                options.start_timeout, std::chrono::milliseconds(20));
    }
    auto ended = instance.swtpm_.Ended();
    if (listening && !ended && probe) break;
    std::uint64_t code = instance.swtpm_.status_code().value_or(kProcessDeadline);  // before Stop
    instance.swtpm_.Stop();
    if (LostThePorts(log, log_start) && attempt < kPortAttempts && options.port == 0) continue;
    if (listening && !probe) {
      return Fail(probe.error().WithContext("swtpm started but does not answer TPM commands"));
    }
    return Fail(ErrorDomain::kProcess, code,
                fmt::format("swtpm did not start ({}); its log {} ends with:\n{}",
                            ended.value_or("no listening port in time"), log.string(), LogTail(log)));
  }
  if (options.boot) {
    if (!options.startup_clear) {
      instance.Stop();
      return UsageError(UsageCode::kConflict,
                        "a TPM waiting for TPM2_Startup cannot boot: boot needs startup_clear");
    }
    if (auto booted = instance.Boot(*options.boot); !booted) {
      instance.Stop();
      return Fail(booted.error());
    }
  }
  if (options.with_abrmd) {
    IDEVID_ASSIGN_OR_RETURN(instance.abrmd_, AbrmdInstance::Start({.dir = instance.state_dir_,
                                                                   .tpm_tcti = instance.swtpm_tcti(),
                                                                   .detach = options.detach,
                                                                   .start_timeout = options.start_timeout}));
  }
  return instance;
}

Result<EventLog> SwtpmInstance::Boot(const BootProfile& profile) {
  IDEVID_ASSIGN_OR_RETURN(EventLog log, BootUnitAndWriteLog(tcti(), profile, BootLogOf(state_dir_)));
  event_log_ = BootLogOf(state_dir_);
  return log;
}

std::string SwtpmInstance::tcti() const { return abrmd_ ? abrmd_->tcti() : swtpm_tcti(); }

std::string SwtpmInstance::swtpm_tcti() const { return fmt::format("swtpm:host=127.0.0.1,port={}", port_); }

std::map<std::string, std::string> SwtpmInstance::ClientEnvironment() const {
  std::map<std::string, std::string> env;
  if (abrmd_) env = abrmd_->ClientEnvironment();
  env["TPM2TOOLS_TCTI"] = tcti();
  return env;
}

void SwtpmInstance::Stop() {
  if (abrmd_) abrmd_->Stop();
  swtpm_.Stop();
}

void SwtpmInstance::Release() {
  if (abrmd_) abrmd_->Release();
  swtpm_.Release();
}

}  // namespace idevid
