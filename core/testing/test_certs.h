// Certificates made on the fly for unit tests of X.509 helpers.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/openssl_ptr.h"

namespace idevid::testing {

// A fresh ECDSA P-256 key pair.
ossl::PKey GenerateEcKey();

struct TestCertSpec {
  std::vector<std::pair<std::string, std::string>> subject;  // (short name or OID, value)
  // (extension name as in openssl.cnf, value), e.g. {"basicConstraints", "critical,CA:FALSE"}
  std::vector<std::pair<std::string, std::string>> extensions;
};

// A certificate for `key` signed by itself (SHA-256), valid for a day. Aborts the test on error.
ossl::Cert MakeSelfSigned(const TestCertSpec& spec, EVP_PKEY& key);

}  // namespace idevid::testing
