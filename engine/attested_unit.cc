#include "engine/attested_unit.h"

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/file_io.h"
#include "core/tpm_context.h"
#include "device/config/config_parser.h"
#include "engine/boot_profile.h"
#include "engine/process.h"
#include "engine/synthetic_boot.h"
#include "provisioning/enrolment_authority.h"
#include "provisioning/enrolment_station.h"
#include "provisioning/factory.h"

namespace idevid {

Result<SwtpmInstance> TpmFromStock(const std::filesystem::path& stock, const std::filesystem::path& dir,
                                   const std::filesystem::path& vendor) {
  if (!std::filesystem::exists(SwtpmInstance::VendorCaOf(stock))) {
    IDEVID_TRY(SwtpmInstance::Start({.state_dir = stock, .manufacture = true, .vendor = vendor}),
               "manufacturing a TPM");
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir.parent_path(), ec);
  std::filesystem::copy(stock, dir, std::filesystem::copy_options::recursive, ec);
  if (ec)
    return ErrnoError(ec.value(),
                      fmt::format("cannot copy the TPM state {} to {}", stock.string(), dir.string()));
  return SwtpmInstance::Start({.state_dir = dir, .manufacture = true});
}

Result<std::unique_ptr<AttestedUnit>> AttestedUnit::Create(const AttestedUnitOptions& options) {
  std::unique_ptr<AttestedUnit> unit(new AttestedUnit());
  unit->options_ = options;
  IDEVID_ASSIGN_OR_RETURN(unit->swtpm_, TpmFromStock(options.stock, options.dir / "tpm"),
                          "a TPM for the attested unit");
  IDEVID_TRY(unit->Enrol(), "enrolling the attested unit {}", options.serial);
  IDEVID_TRY(unit->Boot({}), "booting the attested unit");
  IDEVID_TRY(unit->WriteConfig());
  return unit;
}

std::map<std::string, std::string> AttestedUnit::ToolEnvironment() const {
  return {{"TPM2TOOLS_TCTI", tcti()}, {"TSS2_LOG", "all+NONE"}};
}

Result<void> AttestedUnit::Enrol() {
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(tcti()));
  IDEVID_ASSIGN_OR_RETURN(Factory factory, LoadFactory(options_.factory_dir));
  // Copies of one stock share its EK: in the factory's ledger they would be clones of each other,
  // so each unit is recorded in a ledger of its own.
  IDEVID_ASSIGN_OR_RETURN(
      auto authority,
      EnrolmentAuthority::Create(std::move(factory),
                                 {.tpm_vendor_cas = {swtpm_->vendor_ca()},
                                  .ledger = "sqlite:" + (options_.dir / "ledger.sqlite").string()}));
  IDEVID_ASSIGN_OR_RETURN(
      EnrolResult result,
      EnrolUnit(tpm, *authority, {.serial = options_.serial, .model = options_.model, .force = true}));
  if (result.refusal) {
    return UsageError(UsageCode::kWrongState, fmt::format("the factory refused it: {}: {}",
                                                          result.refusal->reason, result.refusal->detail));
  }
  return {};
}

Result<void> AttestedUnit::WriteConfig() {
  std::filesystem::path factory = options_.factory_dir;
  IDEVID_TRY(WriteFileAtomic(
      options_.dir / "device.conf",
      fmt::format("set security pki ca-profile factory certificate {0}/factory-ca.pem\n"
                  "set security pki node-local idev-id nv-index 0x01C90000 key-handle 0x81020000\n"
                  "set security pki node-local attestation event-log {1}\n"
                  "set security pki node-local attestation pcrs {2}\n"
                  "set security pki node-local attestation key-handle {3:#010x}\n"
                  "set security pki node-local attestation nv-index {4:#010x}\n"
                  "set services ssl initiation profile {5} client-certificate idev-id\n"
                  "set services ssl initiation profile {5} crypto-hardware-offload tpm\n"
                  "set services ssl initiation profile {5} trusted-ca factory\n"
                  "set services ssl initiation profile {5} server-name cloud.example\n",
                  factory.string(), event_log().string(), options_.pcrs, kDefaultIakKeyHandle,
                  kDefaultIakNvIndex, kProfile)));
  IDEVID_ASSIGN_OR_RETURN(config_, LoadDeviceConfig(options_.dir / "device.conf"));
  return {};
}

Result<void> AttestedUnit::Boot(const std::filesystem::path& boot_profile) {
  BootProfile profile = DefaultBootProfile();
  if (!boot_profile.empty()) {
    IDEVID_ASSIGN_OR_RETURN(profile, LoadBootProfile(boot_profile));
  }
  IDEVID_TRY(BootUnitAndWriteLog(tcti(), profile, event_log()), "booting {}", profile.name);
  return {};
}

Result<std::filesystem::path> AttestedUnit::OtherKernelProfile() const {
  std::filesystem::path path = options_.dir / "other-kernel.yaml";
  IDEVID_TRY(
      WriteFileAtomic(path,
                      "name: other-kernel\n"
                      "kernel: {name: /boot/vmlinuz-6.6.0-custom, text: \"a kernel built on the bench\"}\n"));
  return path;
}

Result<void> AttestedUnit::Reboot(
    const std::filesystem::path& boot_profile,
    const std::function<Result<void>(const std::filesystem::path&)>& while_off) {
  // TPM2_Shutdown(CLEAR) first, as an operating system does: a TPM cut off without it counts a
  // dictionary-attack failure at the next start (TPM 2.0 Part 1 §19.8.6), and a few power cycles
  // would lock the IAK and IDevID out.
  IDEVID_ASSIGN_OR_RETURN(CommandOutput shutdown, RunCommand({"tpm2_shutdown", "-c"}, ToolEnvironment()));
  if (shutdown.exit_status != 0) {
    return Fail(ErrorDomain::kProcess, shutdown.status_code,
                fmt::format("tpm2_shutdown failed: {}", DisplayText(shutdown.err)));
  }
  swtpm_->Stop();
  swtpm_.reset();
  if (while_off) IDEVID_TRY(while_off(options_.dir / "tpm" / "tpm"), "while the unit was off");
  IDEVID_ASSIGN_OR_RETURN(swtpm_, SwtpmInstance::Start({.state_dir = options_.dir / "tpm"}),
                          "powering the unit on");
  return Boot(boot_profile);
}

}  // namespace idevid
