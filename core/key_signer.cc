#include "core/key_signer.h"

#include <openssl/evp.h>

namespace idevid {

bool KeySigner::is_rsa() const { return EVP_PKEY_is_a(&public_key(), "RSA") == 1; }

}  // namespace idevid
