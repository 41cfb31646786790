#include "core/pkcs11_token.h"

#include <dlfcn.h>

#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/pkcs11_error.h"

#ifndef IDEVID_PKCS11_PROXY_MODULE
#define IDEVID_PKCS11_PROXY_MODULE "p11-kit-proxy.so"
#endif

namespace idevid {
namespace {

// Modules loaded by this process, by path: one C_Initialize per module and process.
std::mutex& RegistryMutex() {
  static std::mutex mutex;
  return mutex;
}
std::map<std::string, std::weak_ptr<Pkcs11Module>>& Registry() {
  static std::map<std::string, std::weak_ptr<Pkcs11Module>> modules;
  return modules;
}

}  // namespace

std::string DefaultPkcs11Module() { return IDEVID_PKCS11_PROXY_MODULE; }

Result<std::shared_ptr<Pkcs11Module>> Pkcs11Module::Load(const std::string& path) {
  std::lock_guard lock(RegistryMutex());
  if (auto loaded = Registry()[path].lock()) return loaded;
  std::shared_ptr<Pkcs11Module> module(new Pkcs11Module());
  module->path_ = path;
  module->library_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (module->library_ == nullptr) {
    const char* why = dlerror();
    return Fail(ErrorDomain::kPkcs11, CKR_LIBRARY_LOAD_FAILED,
                fmt::format("CKR_LIBRARY_LOAD_FAILED: cannot load the PKCS#11 module {}: {}; give the "
                            "module's path with --pkcs11-module",
                            QuotedDisplayText(path), why != nullptr ? why : "unknown reason"));
  }
  auto get_function_list =
      reinterpret_cast<CK_C_GetFunctionList>(dlsym(module->library_, "C_GetFunctionList"));
  if (get_function_list == nullptr) {
    return Fail(ErrorDomain::kPkcs11, CKR_LIBRARY_LOAD_FAILED,
                fmt::format("CKR_LIBRARY_LOAD_FAILED: {} is not a PKCS#11 module (no C_GetFunctionList)",
                            QuotedDisplayText(path)));
  }
  CK_RV rv = get_function_list(&module->functions_);
  if (rv != CKR_OK) return Fail(Pkcs11Error(rv, "C_GetFunctionList"));
  // The module may use threads of its own and must lock with the OS's primitives (PKCS#11 v2.40
  // 5.4, CKF_OS_LOCKING_OK): signatures come from several threads (the enrolment service).
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  rv = module->functions_->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    return Fail(Pkcs11Error(rv, "C_Initialize")
                    .WithContext(fmt::format("initialising the PKCS#11 module {}", QuotedDisplayText(path))));
  }
  module->finalize_ = rv == CKR_OK;
  Registry()[path] = module;
  return module;
}

Pkcs11Module::~Pkcs11Module() {
  if (finalize_) functions_->C_Finalize(nullptr);
  if (library_ != nullptr) dlclose(library_);
}

Result<CK_SLOT_ID> Pkcs11Module::FindToken(const Pkcs11Uri& uri) const {
  CK_ULONG count = 0;
  CK_RV rv = functions_->C_GetSlotList(CK_TRUE, nullptr, &count);
  if (rv != CKR_OK) return Fail(Pkcs11Error(rv, "C_GetSlotList"));
  std::vector<CK_SLOT_ID> slots(count);
  rv = functions_->C_GetSlotList(CK_TRUE, slots.data(), &count);
  if (rv != CKR_OK) return Fail(Pkcs11Error(rv, "C_GetSlotList"));
  slots.resize(count);
  std::vector<std::string> seen;
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO token{};
    if (functions_->C_GetTokenInfo(slot, &token) != CKR_OK) continue;
    if (uri.MatchesToken(token)) return slot;
    // Initialised tokens only: SoftHSM2 always offers one empty slot for a new token.
    if ((token.flags & CKF_TOKEN_INITIALIZED) != 0) {
      seen.push_back(QuotedDisplayText(PaddedText(token.label, sizeof token.label)));
    }
  }
  return Fail(ErrorDomain::kPkcs11, CKR_TOKEN_NOT_PRESENT,
              fmt::format("CKR_TOKEN_NOT_PRESENT: the PKCS#11 module {} has no {} (its tokens: {}); "
                          "check the URI's token= or serial=, the module (--pkcs11-module) and that the "
                          "HSM is connected",
                          QuotedDisplayText(path_), uri.TokenDescription(),
                          seen.empty() ? "none" : fmt::format("{}", fmt::join(seen, ", "))));
}

Result<void> Pkcs11Module::Login(CK_SLOT_ID slot, CK_SESSION_HANDLE session, const Pkcs11Pin& pin) {
  std::lock_guard lock(logins_mutex_);
  int& users = logins_[slot];
  if (users == 0) {
    std::string_view value = pin.value();
    CK_RV rv = functions_->C_Login(
        session, CKU_USER, reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(value.data())), value.size());
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) return Fail(Pkcs11Error(rv, "C_Login"));
  }
  ++users;
  return {};
}

void Pkcs11Module::Logout(CK_SLOT_ID slot, CK_SESSION_HANDLE session) {
  std::lock_guard lock(logins_mutex_);
  if (--logins_[slot] == 0) functions_->C_Logout(session);
}

Result<std::shared_ptr<Pkcs11Token>> Pkcs11Token::Open(const std::string& module_path, const Pkcs11Uri& uri,
                                                       const Pkcs11Pin& pin) {
  std::shared_ptr<Pkcs11Token> token(new Pkcs11Token());
  IDEVID_ASSIGN_OR_RETURN(token->module_, Pkcs11Module::Load(module_path));
  IDEVID_ASSIGN_OR_RETURN(token->slot_, token->module_->FindToken(uri));
  CK_RV rv = token->functions().C_OpenSession(token->slot_, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                              nullptr, &token->session_);
  if (rv != CKR_OK) {
    return Fail(
        Pkcs11Error(rv, "C_OpenSession").WithContext(fmt::format("opening {}", uri.TokenDescription())));
  }
  IDEVID_TRY(token->module_->Login(token->slot_, token->session_, pin), "logging in to {}",
             uri.TokenDescription());
  token->logged_in_ = true;
  token->uri_ = uri;
  return token;
}

bool Pkcs11Token::StillPresent() const {
  CK_TOKEN_INFO info{};
  return functions().C_GetTokenInfo(slot_, &info) == CKR_OK && (info.flags & CKF_TOKEN_INITIALIZED) != 0 &&
         uri_->MatchesToken(info);
}

Pkcs11Token::~Pkcs11Token() {
  if (session_ == CK_INVALID_HANDLE) return;
  if (logged_in_) module_->Logout(slot_, session_);
  functions().C_CloseSession(session_);
}

}  // namespace idevid
