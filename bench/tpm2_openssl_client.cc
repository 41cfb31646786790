#include "bench/tpm2_openssl_client.h"

#include <fmt/format.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/x509_vfy.h>

#include "core/openssl_error.h"
#include "core/unique_fd.h"
#include "device/ssli/ssli_client.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

Result<ossl::PKey> LoadTpm2Key(OSSL_LIB_CTX* libctx) {
  auto uri = fmt::format("handle:{:#010x}", kDefaultIdevidKeyHandle);
  ossl::UniquePtr<OSSL_STORE_CTX> store(
      OSSL_STORE_open_ex(uri.c_str(), libctx, "?provider=tpm2", nullptr, nullptr, nullptr, nullptr, nullptr));
  ossl::PKey key;
  while (store && !key && !OSSL_STORE_eof(store.get())) {
    ossl::UniquePtr<OSSL_STORE_INFO> info(OSSL_STORE_load(store.get()));
    if (info && OSSL_STORE_INFO_get_type(info.get()) == OSSL_STORE_INFO_PKEY) {
      key.reset(OSSL_STORE_INFO_get1_PKEY(info.get()));
    }
  }
  if (!key) return FailOpenSsl(fmt::format("tpm2-openssl cannot load {}", uri));
  return key;
}

// Why the handshake failed, from OpenSSL's queue (a refusal by the cloud arrives as its alert).
std::string HandshakeFailure() { return OpenSslError("tpm2-openssl's TLS handshake failed").message(); }

}  // namespace

Result<std::unique_ptr<Tpm2OpensslClient>> Tpm2OpensslClient::Create(X509* certificate,
                                                                     const std::string& trusted_ca,
                                                                     int tls_version, std::uint16_t port) {
  std::unique_ptr<Tpm2OpensslClient> client(new Tpm2OpensslClient());
  client->port_ = port;
  client->libctx_.reset(OSSL_LIB_CTX_new());
  client->tpm2_.reset(OSSL_PROVIDER_load(client->libctx_.get(), "tpm2"));
  client->default_.reset(OSSL_PROVIDER_load(client->libctx_.get(), "default"));
  if (!client->tpm2_ || !client->default_) {
    return FailOpenSsl("cannot load tpm2-openssl's provider \"tpm2\" (is tpm2-openssl installed?)");
  }
  IDEVID_ASSIGN_OR_RETURN(client->key_, LoadTpm2Key(client->libctx_.get()));
  client->ctx_.reset(SSL_CTX_new_ex(client->libctx_.get(), nullptr, TLS_client_method()));
  SSL_CTX* ctx = client->ctx_.get();
  if (ctx == nullptr || SSL_CTX_set_min_proto_version(ctx, tls_version) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, tls_version) != 1 ||
      SSL_CTX_use_certificate(ctx, certificate) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, client->key_.get()) != 1 ||
      SSL_CTX_load_verify_file(ctx, trusted_ca.c_str()) != 1) {
    return FailOpenSsl("cannot set up the tpm2-openssl TLS client");
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return client;
}

Result<void> Tpm2OpensslClient::Connect() const {
  IDEVID_ASSIGN_OR_RETURN(UniqueFd socket, ConnectTcpSocket("127.0.0.1", port_, 30),
                          "tpm2-openssl's client connecting to the cloud");
  ossl::UniquePtr<SSL> ssl(SSL_new(ctx_.get()));  // freed before the socket is closed
  SSL_set_fd(ssl.get(), socket.get());
  if (int ret = SSL_connect(ssl.get()); ret != 1) {
    int code = SSL_get_error(ssl.get(), ret);  // before HandshakeFailure drains the queue
    return Fail(ErrorDomain::kTls, static_cast<std::uint64_t>(code), HandshakeFailure());
  }
  SsliResult result;
  IDEVID_TRY(AskIdentity(ssl.get(), "127.0.0.1", result), "tpm2-openssl's client asking who it is");
  SSL_shutdown(ssl.get());
  CloseAfterPeer(std::move(socket));
  if (result.refused() || result.http_status != 200) {
    // The cloud refused the identity: an application's verification failure, as OpenSSL names it.
    return Fail(
        ErrorDomain::kVerify, X509_V_ERR_APPLICATION_VERIFICATION,
        fmt::format("the cloud refused tpm2-openssl's client: {}",
                    result.refused() ? result.refusal->reason : fmt::format("HTTP {}", result.http_status)));
  }
  return {};
}

}  // namespace idevid
