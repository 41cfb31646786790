// The comparator of TPM-mode SSL-I: a TLS client whose key is tpm2-openssl's, in its documented
// configuration (the "tpm2" provider, then "default", the key loaded from "handle:0x81020000"),
// with the same certificate, cloud and request as our client. One per thread: each holds its own
// library context, provider instance and TPM connection.
#pragma once

#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/openssl_ptr.h"
#include "core/result.h"

namespace idevid {

class Tpm2OpensslClient {
 public:
  // tpm2-openssl finds the TPM in TPM2OPENSSL_TCTI (set it once, before any thread starts); the cloud's
  // certificate must reach `trusted_ca` (PEM). `tls_version` is both the minimum and the maximum.
  // tpm2-openssl 1.1.1 makes no client-authenticated TLS 1.2 handshake: in the documented order servers
  // answer "no shared cipher" (with or without a client certificate); with "default" first, the TLS stack
  // signs with the default provider, which has no private key. Fails with kOpenSsl when
  // tpm2-openssl is not installed or cannot load the key.
  static Result<std::unique_ptr<Tpm2OpensslClient>> Create(X509* certificate, const std::string& trusted_ca,
                                                           int tls_version, std::uint16_t port);
  // One session: connect, handshake, GET /v1/identity; fails unless the cloud answers 200.
  Result<void> Connect() const;

 private:
  Tpm2OpensslClient() = default;
  // Freed in reverse: the TLS context and the key before the providers, those before the context.
  ossl::UniquePtr<OSSL_LIB_CTX> libctx_;
  ossl::UniquePtr<OSSL_PROVIDER> tpm2_, default_;
  ossl::PKey key_;
  ossl::UniquePtr<SSL_CTX> ctx_;
  std::uint16_t port_ = 0;
};

}  // namespace idevid
