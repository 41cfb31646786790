// A private SoftHSM2 token for a test or bench: its own SOFTHSM2_CONF and token directory under
// a directory the caller owns, a token initialised with softhsm2-util, and what a process needs
// to use it (the module path, the environment).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "core/result.h"

namespace idevid {

struct SoftHsmOptions {
  std::filesystem::path dir;  // holds softhsm2.conf and tokens/; created when missing
  std::string label = "factory";
  std::string pin = "123456";       // the user PIN
  std::string so_pin = "12345678";  // the security officer's PIN
};

class SoftHsmToken {
 public:
  // Writes DIR/softhsm2.conf (token directory DIR/tokens) and initialises a token `label` with
  // `softhsm2-util --init-token --free`. kIo when the files cannot be written; kProcess with
  // softhsm2-util's output when it fails.
  static Result<SoftHsmToken> Create(const SoftHsmOptions& options);

  // SoftHSM2's PKCS#11 module.
  static std::filesystem::path ModulePath() { return "/usr/lib/softhsm/libsofthsm2.so"; }
  const std::filesystem::path& conf() const { return conf_; }
  const std::filesystem::path& token_dir() const { return token_dir_; }
  const std::string& label() const { return options_.label; }
  const std::string& pin() const { return options_.pin; }
  // "pkcs11:token=LABEL;object=OBJECT" for a key in this token.
  std::string Uri(std::string_view object) const;
  // What a child process needs to see this token: SOFTHSM2_CONF.
  std::map<std::string, std::string> Environment() const;
  // Points SOFTHSM2_CONF of this process at this token; call before the module is loaded here.
  void UseInThisProcess() const;
  // Deletes the token (softhsm2-util --delete-token), as an HSM that goes away. kProcess when
  // softhsm2-util fails.
  Result<void> Delete() const;

 private:
  SoftHsmOptions options_;
  std::filesystem::path conf_;
  std::filesystem::path token_dir_;
};

}  // namespace idevid
