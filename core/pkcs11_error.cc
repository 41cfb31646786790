#include "core/pkcs11_error.h"

#include <p11-kit/p11-kit.h>

#include <fmt/format.h>

namespace idevid {
namespace {

struct NamedRv {
  CK_RV rv;
  const char* name;
};

#define IDEVID_CKR(name) \
  { name, #name }
// PKCS#11 v2.40 section 11.1: the return values a token or module gives.
constexpr NamedRv kNames[] = {
    IDEVID_CKR(CKR_OK),
    IDEVID_CKR(CKR_CANCEL),
    IDEVID_CKR(CKR_HOST_MEMORY),
    IDEVID_CKR(CKR_SLOT_ID_INVALID),
    IDEVID_CKR(CKR_GENERAL_ERROR),
    IDEVID_CKR(CKR_FUNCTION_FAILED),
    IDEVID_CKR(CKR_ARGUMENTS_BAD),
    IDEVID_CKR(CKR_ATTRIBUTE_READ_ONLY),
    IDEVID_CKR(CKR_ATTRIBUTE_SENSITIVE),
    IDEVID_CKR(CKR_ATTRIBUTE_TYPE_INVALID),
    IDEVID_CKR(CKR_ATTRIBUTE_VALUE_INVALID),
    IDEVID_CKR(CKR_ACTION_PROHIBITED),
    IDEVID_CKR(CKR_DATA_INVALID),
    IDEVID_CKR(CKR_DATA_LEN_RANGE),
    IDEVID_CKR(CKR_DEVICE_ERROR),
    IDEVID_CKR(CKR_DEVICE_MEMORY),
    IDEVID_CKR(CKR_DEVICE_REMOVED),
    IDEVID_CKR(CKR_FUNCTION_CANCELED),
    IDEVID_CKR(CKR_FUNCTION_NOT_SUPPORTED),
    IDEVID_CKR(CKR_KEY_HANDLE_INVALID),
    IDEVID_CKR(CKR_KEY_SIZE_RANGE),
    IDEVID_CKR(CKR_KEY_TYPE_INCONSISTENT),
    IDEVID_CKR(CKR_KEY_FUNCTION_NOT_PERMITTED),
    IDEVID_CKR(CKR_KEY_UNEXTRACTABLE),
    IDEVID_CKR(CKR_MECHANISM_INVALID),
    IDEVID_CKR(CKR_MECHANISM_PARAM_INVALID),
    IDEVID_CKR(CKR_OBJECT_HANDLE_INVALID),
    IDEVID_CKR(CKR_OPERATION_ACTIVE),
    IDEVID_CKR(CKR_OPERATION_NOT_INITIALIZED),
    IDEVID_CKR(CKR_PIN_INCORRECT),
    IDEVID_CKR(CKR_PIN_INVALID),
    IDEVID_CKR(CKR_PIN_LEN_RANGE),
    IDEVID_CKR(CKR_PIN_EXPIRED),
    IDEVID_CKR(CKR_PIN_LOCKED),
    IDEVID_CKR(CKR_SESSION_CLOSED),
    IDEVID_CKR(CKR_SESSION_COUNT),
    IDEVID_CKR(CKR_SESSION_HANDLE_INVALID),
    IDEVID_CKR(CKR_SESSION_READ_ONLY),
    IDEVID_CKR(CKR_SIGNATURE_LEN_RANGE),
    IDEVID_CKR(CKR_TEMPLATE_INCOMPLETE),
    IDEVID_CKR(CKR_TEMPLATE_INCONSISTENT),
    IDEVID_CKR(CKR_TOKEN_NOT_PRESENT),
    IDEVID_CKR(CKR_TOKEN_NOT_RECOGNIZED),
    IDEVID_CKR(CKR_TOKEN_WRITE_PROTECTED),
    IDEVID_CKR(CKR_USER_ALREADY_LOGGED_IN),
    IDEVID_CKR(CKR_USER_NOT_LOGGED_IN),
    IDEVID_CKR(CKR_USER_PIN_NOT_INITIALIZED),
    IDEVID_CKR(CKR_USER_TYPE_INVALID),
    IDEVID_CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    IDEVID_CKR(CKR_DOMAIN_PARAMS_INVALID),
    IDEVID_CKR(CKR_CURVE_NOT_SUPPORTED),
    IDEVID_CKR(CKR_BUFFER_TOO_SMALL),
    IDEVID_CKR(CKR_CRYPTOKI_NOT_INITIALIZED),
    IDEVID_CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    IDEVID_CKR(CKR_LIBRARY_LOAD_FAILED),
    IDEVID_CKR(CKR_FUNCTION_REJECTED),
};
#undef IDEVID_CKR

// What `rv` means for the factory and what to do, for the return values a person can act on.
std::string Meaning(CK_RV rv) {
  switch (rv) {
    case CKR_PIN_INCORRECT:
      return "the token refused the PIN; give the user PIN in IDEVID_PKCS11_PIN or --pkcs11-pin-file";
    case CKR_PIN_LOCKED:
      return "the token locked its user PIN after too many wrong ones; unlock it with the SO PIN";
    case CKR_USER_PIN_NOT_INITIALIZED:
      return "the token has no user PIN yet; initialise the token and its user PIN first";
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_DEVICE_REMOVED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_TOKEN_NOT_RECOGNIZED:
      return "the token went away (removed, deleted or reset); nothing was signed; reconnect the HSM "
             "and load the factory again";
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
      return "the key is no longer in the token (the token was deleted or re-initialised); nothing "
             "was signed";
    case CKR_USER_NOT_LOGGED_IN: return "the token logged the user out; load the factory again";
    case CKR_TOKEN_WRITE_PROTECTED:
    case CKR_SESSION_READ_ONLY: return "the token is write-protected and cannot hold a new key";
    case CKR_MECHANISM_INVALID:
    case CKR_CURVE_NOT_SUPPORTED:
    case CKR_KEY_SIZE_RANGE: return "the token does not make this kind of key or signature";
    default: return p11_kit_strerror(rv);
  }
}

}  // namespace

std::string CkrName(CK_RV rv) {
  for (const auto& named : kNames) {
    if (named.rv == rv) return named.name;
  }
  return fmt::format("CKR_{:#x}", rv);
}

bool TokenWentAway(CK_RV rv) {
  return rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED || rv == CKR_SESSION_HANDLE_INVALID ||
         rv == CKR_SESSION_CLOSED || rv == CKR_TOKEN_NOT_RECOGNIZED;
}

Error Pkcs11Error(CK_RV rv, std::string_view function) {
  return Error(ErrorDomain::kPkcs11, rv, fmt::format("{}: {} ({})", CkrName(rv), Meaning(rv), function));
}

}  // namespace idevid
