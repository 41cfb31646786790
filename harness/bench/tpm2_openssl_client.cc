#include "harness/bench/tpm2_openssl_client.h"

#include <fmt/format.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/openssl_error.h"
#include "device/ssli/ssli_client.h"

namespace idevid {
namespace {

constexpr const char* kKeyUri = "handle:0x81020000";

Result<ossl::PKey> LoadTpm2Key(OSSL_LIB_CTX* libctx) {
  struct Close {
    void operator()(OSSL_STORE_CTX* s) const { OSSL_STORE_close(s); }
  };
  std::unique_ptr<OSSL_STORE_CTX, Close> store(
      OSSL_STORE_open_ex(kKeyUri, libctx, "?provider=tpm2", nullptr, nullptr, nullptr, nullptr, nullptr));
  ossl::PKey key;
  while (store && !key && !OSSL_STORE_eof(store.get())) {
    ossl::Owner<OSSL_STORE_INFO, OSSL_STORE_INFO_free> info(OSSL_STORE_load(store.get()));
    if (info && OSSL_STORE_INFO_get_type(info.get()) == OSSL_STORE_INFO_PKEY) {
      key.reset(OSSL_STORE_INFO_get1_PKEY(info.get()));
    }
  }
  if (!key) return FailOpenSsl(fmt::format("tpm2-openssl cannot load {}", kKeyUri));
  return key;
}

}  // namespace

Result<std::unique_ptr<Tpm2OpensslClient>> Tpm2OpensslClient::Create(const std::string& tcti,
                                                                     X509* certificate,
                                                                     const std::string& trusted_ca,
                                                                     int tls_version, std::uint16_t port) {
  ::setenv("TPM2OPENSSL_TCTI", tcti.c_str(), 1);
  std::unique_ptr<Tpm2OpensslClient> client(new Tpm2OpensslClient());
  client->port_ = port;
  client->libctx_ = OSSL_LIB_CTX_new();
  client->tpm2_ = OSSL_PROVIDER_load(client->libctx_, "tpm2");
  client->default_ = OSSL_PROVIDER_load(client->libctx_, "default");
  if (client->tpm2_ == nullptr || client->default_ == nullptr) {
    return FailOpenSsl("cannot load tpm2-openssl's provider \"tpm2\" (is tpm2-openssl installed?)");
  }
  auto key = LoadTpm2Key(client->libctx_);
  if (!key) return Fail(key.error());
  client->key_ = std::move(*key);
  client->ctx_ = SSL_CTX_new_ex(client->libctx_, nullptr, TLS_client_method());
  if (client->ctx_ == nullptr || SSL_CTX_set_min_proto_version(client->ctx_, tls_version) != 1 ||
      SSL_CTX_set_max_proto_version(client->ctx_, tls_version) != 1 ||
      SSL_CTX_use_certificate(client->ctx_, certificate) != 1 ||
      SSL_CTX_use_PrivateKey(client->ctx_, client->key_.get()) != 1 ||
      SSL_CTX_load_verify_file(client->ctx_, trusted_ca.c_str()) != 1) {
    return FailOpenSsl("cannot set up the tpm2-openssl TLS client");
  }
  SSL_CTX_set_verify(client->ctx_, SSL_VERIFY_PEER, nullptr);
  return client;
}

Tpm2OpensslClient::~Tpm2OpensslClient() {
  SSL_CTX_free(ctx_);
  key_.reset();
  if (tpm2_ != nullptr) OSSL_PROVIDER_unload(tpm2_);
  if (default_ != nullptr) OSSL_PROVIDER_unload(default_);
  OSSL_LIB_CTX_free(libctx_);
}

Result<void> Tpm2OpensslClient::Connect() const {
  auto fd = ConnectTcp("127.0.0.1", port_, 30);
  if (!fd) return Fail(fd.error());
  ossl::Owner<SSL, SSL_free> ssl(SSL_new(ctx_));
  SSL_set_fd(ssl.get(), *fd);
  SsliResult result;
  Result<void> session = SSL_connect(ssl.get()) == 1 ? AskIdentity(ssl.get(), "127.0.0.1", result)
                                                     : FailOpenSsl("tpm2-openssl's TLS handshake failed");
  if (session) {
    SSL_shutdown(ssl.get());
    CloseAfterPeer(*fd);
  } else {
    ::close(*fd);
  }
  if (!session) return session;
  if (result.http_status != 200) {
    return Fail(ErrorDomain::kTls, 0,
                fmt::format("the cloud answered {} to tpm2-openssl's client", result.http_status));
  }
  return {};
}

}  // namespace idevid
