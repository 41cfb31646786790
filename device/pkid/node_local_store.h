// The node-local certificate store of the device PKI daemon: what pkid loaded at its last start
// or restart, certificate by certificate, with the load status of each.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/openssl_ptr.h"
#include "device/config/device_config.h"

namespace idevid {

using WallClock = std::function<std::chrono::system_clock::time_point()>;

// Where a certificate's private key is: in the TPM at a persistent handle, or in a file.
struct KeyLocation {
  bool in_tpm = false;
  std::uint32_t tpm_handle = 0;
  std::string file;
  std::string ToString() const;  // "tpm 0x81020000" or "file /etc/idevid/fs-cert.key"
};

struct LoadStatus {
  bool loaded = false;
  std::chrono::system_clock::time_point at;
  std::string source;            // "NV 0x01C90000" or the certificate file
  std::string error;             // why it is not loaded
  bool tpm_unreachable = false;  // not loaded because the TPM did not answer (pkid retries)
  std::string ToString() const;  // "loaded at 2026-11-28 12:00:01 UTC from NV 0x01C90000"
};

struct StoreEntry {
  std::string id;
  std::shared_ptr<X509> certificate;  // null when not loaded
  KeyLocation key;
  std::string ca_profile;  // for verification; empty for idev-id
  LoadStatus status;
};

struct CaProfileEntry {
  std::string name;
  std::vector<std::shared_ptr<X509>> certificates;
  LoadStatus status;
};

struct NodeLocalStore {
  std::map<std::string, StoreEntry> entries;  // by certificate-id; idev-id is always present
  std::map<std::string, CaProfileEntry> ca_profiles;
};

// Loads everything the configuration names: idev-id from the TPM behind `tcti` (certificate
// from NV, key handle resolved and checked against the certificate), file-system certificates
// (certificate and key files, checked to match) and CA profiles. Never fails as a whole: a
// certificate that does not load is entered with its reason.
NodeLocalStore LoadNodeLocalStore(const DeviceConfig& config, const std::string& tcti, const WallClock& now);

// The idev-id entry alone, as loaded from the TPM. When the TPM does not answer, the status
// says so naming the TCTI ("the TPM at <tcti> does not answer: ...") and is tpm_unreachable.
StoreEntry LoadIdevidEntry(const IdevidLocation& location, const std::string& tcti, const WallClock& now);

}  // namespace idevid
