// A PKCS#11 token as the factory uses it: the module (dlopen, C_Initialize), the token a URI
// names, and one read-write session logged in as the user. Every PKCS#11 handle is owned here:
// the login is ended when the session closes, the session before the module is finalised.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <p11-kit/pkcs11.h>

#include "core/pkcs11_pin.h"
#include "core/pkcs11_uri.h"
#include "core/result.h"

namespace idevid {

// p11-kit's proxy module, which loads the modules registered with p11-kit (SoftHSM2, OpenSC).
std::string DefaultPkcs11Module();

// A loaded and initialised PKCS#11 module, shared by everything in this process that uses the
// same module path (a module is initialised once per process, PKCS#11 v2.40 5.4).
class Pkcs11Module {
 public:
  // Loads the module at `path` and calls C_Initialize (OS locking), or shares the one already
  // loaded from `path`. kPkcs11 CKR_LIBRARY_LOAD_FAILED naming the path when it cannot be loaded;
  // the module's CK_RV when it does not initialise.
  static Result<std::shared_ptr<Pkcs11Module>> Load(const std::string& path);
  Pkcs11Module(const Pkcs11Module&) = delete;
  Pkcs11Module& operator=(const Pkcs11Module&) = delete;
  // C_Finalize (unless another part of the process had initialised it), then dlclose.
  ~Pkcs11Module();

  CK_FUNCTION_LIST& functions() const { return *functions_; }
  const std::string& path() const { return path_; }

  // The slot holding the token `uri` names. kPkcs11 CKR_TOKEN_NOT_PRESENT naming the token and the
  // tokens the module has when none matches.
  Result<CK_SLOT_ID> FindToken(const Pkcs11Uri& uri) const;

  // Logs the user in to the token in `slot` through `session` unless a session of this process
  // already did (the login state is per application, PKCS#11 v2.40 5.6); Logout ends it when its
  // last user logs out.
  Result<void> Login(CK_SLOT_ID slot, CK_SESSION_HANDLE session, const Pkcs11Pin& pin);
  void Logout(CK_SLOT_ID slot, CK_SESSION_HANDLE session);

 private:
  Pkcs11Module() = default;
  std::mutex logins_mutex_;
  std::map<CK_SLOT_ID, int> logins_;  // users logged in per slot
  std::string path_;
  void* library_ = nullptr;
  CK_FUNCTION_LIST* functions_ = nullptr;
  bool finalize_ = false;
};

// One read-write session with a token, logged in as the user: thread-safe through lock().
class Pkcs11Token {
 public:
  // Loads `module_path`, finds the token `uri` names, opens a session and logs in with `pin`
  // (which the caller zeroes). kPkcs11 with the CK_RV (CKR_PIN_INCORRECT, CKR_TOKEN_NOT_PRESENT).
  static Result<std::shared_ptr<Pkcs11Token>> Open(const std::string& module_path, const Pkcs11Uri& uri,
                                                   const Pkcs11Pin& pin);
  Pkcs11Token(const Pkcs11Token&) = delete;
  Pkcs11Token& operator=(const Pkcs11Token&) = delete;
  // C_Logout and C_CloseSession; the module is released after.
  ~Pkcs11Token();

  CK_FUNCTION_LIST& functions() const { return module_->functions(); }
  CK_SESSION_HANDLE session() const { return session_; }
  const Pkcs11Module& module() const { return *module_; }
  // Whether the token the URI named is still in its slot (C_GetTokenInfo), for telling a token
  // that went away from a key that is gone.
  bool StillPresent() const;
  // Held around every use of the session: PKCS#11 sessions take one operation at a time.
  std::mutex& mutex() const { return mutex_; }

 private:
  Pkcs11Token() = default;
  std::shared_ptr<Pkcs11Module> module_;
  std::optional<Pkcs11Uri> uri_;
  CK_SLOT_ID slot_ = 0;
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
  bool logged_in_ = false;
  mutable std::mutex mutex_;
};

}  // namespace idevid
