// PKCS#11 return values as errors: kPkcs11 with the CK_RV as code and its CKR_ name first in the
// message, followed by what it means for the factory and what to do.
#pragma once

#include <string>
#include <string_view>

#include <p11-kit/pkcs11.h>

#include "core/result.h"

namespace idevid {

// The name of a CK_RV ("CKR_PIN_INCORRECT"); "CKR_0x..." for a value without a standard name.
std::string CkrName(CK_RV rv);

// Whether `rv` says the token, its slot or the session with it is gone (removed, deleted, reset).
bool TokenWentAway(CK_RV rv);

// The kPkcs11 error for `rv` returned by `function` ("C_Login"): "CKR_X: what it means; what to do
// (C_Login)". Never holds a PIN.
Error Pkcs11Error(CK_RV rv, std::string_view function);

}  // namespace idevid
