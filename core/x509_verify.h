// Path validation of a certificate against trust anchors, as a verdict (not an error).
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "core/openssl_ptr.h"
#include "core/result.h"

namespace idevid {

struct ChainVerdict {
  bool valid = false;
  int error_code = 0;                       // X509_V_ERR_*, 0 when valid
  std::string error;                        // OpenSSL's text for error_code
  int error_depth = -1;                     // 0 = the leaf
  std::vector<std::string> chain_subjects;  // leaf first, as built
};

struct ChainCheckOptions {
  std::optional<std::time_t> at;  // verification time; now when unset
  std::string purpose;            // "sslclient", "sslserver" or empty for any
};

// Builds and verifies the path from `leaf` through `untrusted` intermediates to one of
// `trusted` (RFC 5280 6). Fails (as an error) only when OpenSSL cannot run the check at all.
Result<ChainVerdict> VerifyChain(const X509& leaf, const std::vector<const X509*>& untrusted,
                                 const std::vector<const X509*>& trusted,
                                 const ChainCheckOptions& options = {});
// As above with the trust anchors of `store` (e.g. a TLS context's), which is only read.
Result<ChainVerdict> VerifyChain(const X509& leaf, const std::vector<const X509*>& untrusted,
                                 X509_STORE& store, const ChainCheckOptions& options = {});

}  // namespace idevid
