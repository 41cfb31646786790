#include "engine/softhsm_token.h"

#include <cstdlib>

#include <fmt/format.h>

#include "core/file_io.h"
#include "engine/process.h"

namespace idevid {
namespace {

// Runs softhsm2-util with the token's configuration; kProcess with its output when it fails.
Result<void> RunSoftHsmUtil(const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& env, std::string_view what) {
  IDEVID_ASSIGN_OR_RETURN(CommandOutput out, RunCommand(argv, env, std::chrono::seconds(60)), "{}", what);
  if (out.exit_status != 0) {
    return Fail(ErrorDomain::kProcess, out.status_code,
                fmt::format("softhsm2-util could not {}: {}{}", what, out.out, out.err));
  }
  return {};
}

}  // namespace

Result<SoftHsmToken> SoftHsmToken::Create(const SoftHsmOptions& options) {
  SoftHsmToken token;
  token.options_ = options;
  token.conf_ = options.dir / "softhsm2.conf";
  token.token_dir_ = options.dir / "tokens";
  std::error_code ec;
  std::filesystem::create_directories(token.token_dir_, ec);
  if (ec) return ErrnoError(ec.value(), "cannot create " + token.token_dir_.string());
  IDEVID_TRY(WriteFileAtomic(token.conf_,
                             fmt::format("directories.tokendir = {}\nobjectstore.backend = file\n"
                                         "log.level = ERROR\nslots.removable = false\n",
                                         token.token_dir_.string()),
                             0600),
             "writing the SoftHSM2 configuration");
  IDEVID_TRY(RunSoftHsmUtil({"softhsm2-util", "--init-token", "--free", "--label", options.label, "--pin",
                             options.pin, "--so-pin", options.so_pin},
                            token.Environment(), "initialise a token"));
  return token;
}

std::string SoftHsmToken::Uri(std::string_view object) const {
  return fmt::format("pkcs11:token={};object={}", options_.label, object);
}

std::map<std::string, std::string> SoftHsmToken::Environment() const {
  return {{"SOFTHSM2_CONF", conf_.string()}};
}

void SoftHsmToken::UseInThisProcess() const { setenv("SOFTHSM2_CONF", conf_.c_str(), 1); }

Result<void> SoftHsmToken::Delete() const {
  return RunSoftHsmUtil({"softhsm2-util", "--delete-token", "--token", options_.label}, Environment(),
                        "delete the token");
}

}  // namespace idevid
