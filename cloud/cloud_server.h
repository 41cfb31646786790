// The cloud peer: a mutual-TLS HTTPS server (TLS 1.2+) that verifies the device certificate's
// chain to the factory CA, judges its 802.1AR identity and answers GET /v1/identity with a JSON
// verdict, logging one JSON line per connection. With the factory's CRL and ledger it refuses
// revoked units and clones. TLS sessions can be resumed (session IDs and
// tickets); a resumed session is judged again by the certificate of its full handshake.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"

namespace idevid {

struct CloudOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;                          // 0: any free port (see CloudServer::port)
  std::filesystem::path certificate;               // the server's certificate (PEM, may hold a chain)
  std::filesystem::path private_key;               // its key (PEM)
  std::filesystem::path factory_ca;                // factory-ca.pem: what device chains must reach
  std::optional<std::filesystem::path> inventory;  // serial,model CSV
  std::filesystem::path log;                       // JSON lines, appended
  std::chrono::milliseconds io_timeout{10000};     // the longest wait for a client's next byte
  // Whole-phase deadlines, however the client's bytes trickle in: a client that has not
  // completed the TLS handshake, or then sent its request head, by these is dropped as stalled.
  std::chrono::milliseconds handshake_deadline{10000};
  std::chrono::milliseconds request_deadline{10000};
  // A measured-boot policy (YAML): an accepted identity is then challenged for an attestation
  // of its boot on the same session (cloud/attestation_exchange.h).
  std::optional<std::filesystem::path> attest_policy;
  // The factory's CRL (PEM or DER): it must verify against factory_ca; units it lists are refused.
  // Read again when the file changes, and by ReloadCrl.
  std::optional<std::filesystem::path> crl;
  // The factory's ledger (core/ledger.h OpenLedger spec; empty: none): a unit is refused unless the
  // ledger gave its serial the certificate it presents (a clone otherwise), and when revoked there.
  std::string ledger;
};

class CloudServer {
 public:
  // Loads the certificates (and the attestation policy), binds and starts serving on background
  // threads. Fails with kConfig for bad files (naming them), kIo when the address cannot be bound.
  static Result<std::unique_ptr<CloudServer>> Start(const CloudOptions& options);
  ~CloudServer();  // Stop()

  std::uint16_t port() const;
  // Stops accepting, lets the connections in progress finish, and returns.
  void Stop();
  // Reads the inventory file again; connections from now on (resumed ones too) are judged by
  // the new one. Fails with kConfig (keeping the old one) for a malformed file, kUsage when
  // the cloud was started without an inventory.
  [[nodiscard]] Result<void> ReloadInventory();
  // Reads the CRL file again (as SIGHUP does); connections from now on are judged by it. Fails
  // with kConfig (keeping the CRL held) when it does not verify against the factory CA, kUsage
  // when the cloud was started without a CRL.
  [[nodiscard]] Result<void> ReloadCrl();
  // Connections handled so far.
  std::uint64_t connections() const;
  // Connection threads held now (running, or finished and not yet reaped by the next accept).
  std::size_t workers() const;

  struct Impl;

 private:
  explicit CloudServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace idevid
