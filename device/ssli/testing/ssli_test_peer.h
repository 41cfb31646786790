// Test peers for the SSL-I client: a test CA issuing server and client certificates to files,
// `openssl s_server` as a TLS server users also hold, and a python3 TLS server that misbehaves on
// purpose (a huge answer, an answer trickled byte by byte).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/unique_fd.h"
#include "engine/process.h"

namespace idevid::testing {

// A self-signed test CA whose certificates are written to `dir`: <name>.pem and <name>.key.
class TestCa {
 public:
  // Writes the CA certificate to dir/<ca_name>.pem. Fails when OpenSSL or the file system does.
  static Result<TestCa> Create(const std::filesystem::path& dir, const std::string& ca_name = "test-ca");
  // Create, then a server certificate "server" for 127.0.0.1 and a client certificate "client".
  static Result<TestCa> CreateWithServerAndClient(const std::filesystem::path& dir);
  const std::filesystem::path& certificate() const { return certificate_; }
  // A server certificate, CN `name`, subjectAltName `san` ("DNS:a,IP:127.0.0.1"; empty for none).
  Result<void> IssueServer(const std::string& name, const std::string& san) const;
  // A client certificate for a fresh software key.
  Result<void> IssueClient(const std::string& name) const;
  std::filesystem::path Pem(const std::string& name) const { return dir_ / (name + ".pem"); }
  std::filesystem::path Key(const std::string& name) const { return dir_ / (name + ".key"); }

 private:
  Result<void> Issue(const std::string& name, const std::string& cn, const std::string& san) const;
  std::filesystem::path dir_;
  std::filesystem::path certificate_;
  ossl::PKey key_;
  ossl::Cert cert_;
};

// A TLS server on 127.0.0.1 that runs until destroyed (stopped by pid).
struct TlsPeer {
  ChildProcess process;
  std::uint16_t port = 0;
  std::filesystem::path log;
};

// `openssl s_server -www` with the server certificate <name> of `dir`, asking for a client
// certificate from `client_ca` when it is not empty; `extra` is appended to its arguments.
// Listens on `port` (0: a free one). Waits until it accepts connections.
Result<TlsPeer> StartOpensslServer(const std::filesystem::path& dir, const std::string& name,
                                   const std::filesystem::path& client_ca,
                                   const std::vector<std::string>& extra = {}, std::uint16_t port = 0);

// A python3 TLS server with the server certificate <name> of `dir` that answers every request
// with `mode`: "huge" (a 50 MB body), "trickle" (a small answer, one byte every 200 ms),
// "forbidden" (HTTP 403 with a JSON verdict refusing the unit), "unavailable" (HTTP 503: the cloud
// could not decide), "close" (closes without an answer)
// or "challenge" (HTTP 401 with an attestation challenge, then logs "after the challenge: " and
// what came next, b'' when the client sent nothing more).
Result<TlsPeer> StartMisbehavingServer(const std::filesystem::path& dir, const std::string& name,
                                       const std::string& mode);

// A TCP listener on 127.0.0.1 that never accepts: the kernel completes each connection and
// nobody ever says a word (a cloud that hangs). Closed when destroyed.
class SilentListener {
 public:
  // kIo when no socket can be opened or bound.
  static Result<SilentListener> Start();
  std::uint16_t port() const { return port_; }

 private:
  UniqueFd fd_;
  std::uint16_t port_ = 0;
};

}  // namespace idevid::testing
