// One client connection of the cloud, from its first byte to the close: plain HTTP refused,
// the TLS handshake and the HTTP request each within a deadline, the identity judged (again
// on a resumed session) and answered.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "cloud/attestation_exchange.h"
#include "cloud/connection_log.h"
#include "cloud/crl_watch.h"
#include "cloud/inventory.h"
#include "core/ledger.h"
#include "core/unique_fd.h"

namespace idevid {

// What a connection is served with; the context, inventory, attestation service, CRL and ledger
// outlive the call.
struct ConnectionSettings {
  SSL_CTX* ctx = nullptr;
  std::chrono::milliseconds io_timeout;                       // the longest wait for the next byte
  std::chrono::milliseconds handshake_deadline;               // the whole TLS handshake
  std::chrono::milliseconds request_deadline;                 // the whole HTTP request head
  std::shared_ptr<const std::optional<Inventory>> inventory;  // never null
  // With a policy: an accepted identity is challenged for attestation. Null: it is not.
  AttestationService* attestation = nullptr;
  // With a CRL: a unit it lists is refused (the file is looked at for a new one first). Null: none.
  CrlWatch* crl = nullptr;
  // With a ledger: a unit whose certificate is not the ledger's for its serial is refused. Null: none.
  Ledger* ledger = nullptr;
};

// Serves the accepted socket `fd` (non-blocking from here on; closed on return) of the client
// at `peer`, and writes what happened to `log` before closing. Never fails: every end is a
// record.
void ServeConnection(UniqueFd fd, std::string peer, const ConnectionSettings& settings, ConnectionLog& log);

}  // namespace idevid
