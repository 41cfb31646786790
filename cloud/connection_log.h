// One JSON line per connection the cloud had: what came, what it answered, and who the client
// certificate said it was. Outside input in it (request line, certificate names) is escaped
// and cut short with DisplayText.
#pragma once

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/openssl_ptr.h"
#include "core/result.h"

namespace idevid {

// What happened on one connection.
struct ConnectionRecord {
  std::string peer;                        // "ip:port"
  std::string outcome;                     // served, handshake-failed, stalled, closed, bad-request, ...
  std::optional<std::string> phase;        // "handshake" or "request": where a stall or close came
  std::optional<int> status;               // the HTTP status answered; nullopt when none was
  std::optional<std::string> served;       // the resource served; nullopt when none was
  std::optional<std::string> verdict;      // "accepted"/"rejected"/"unavailable" when judged
  std::string reason;                      // the first finding's evidence, or what went wrong
  std::optional<nlohmann::json> findings;  // every finding of the verdict served; nullopt when none was
  std::optional<std::string> request;      // the request line, escaped
  bool resumed = false;                    // an abbreviated handshake on a session of before
  std::string protocol;
  std::string cipher;
  std::string serial;                      // subject serialNumber, escaped
  std::string model;                       // subject CN, escaped
  std::optional<std::string> hw_serial;    // hardwareModuleName hwSerialNum, hex
  std::optional<std::string> fingerprint;  // SHA-256 over the client certificate's DER
  // With an attestation policy, after a challenge: "attested" or "refused", the policy's name and
  // every finding; nullopt (and not in the line) when the session was not challenged.
  std::optional<std::string> attestation;
  std::optional<std::string> attestation_policy;
  std::optional<nlohmann::json> attestation_findings;

  // The facts the client certificate states (fingerprint, serial, model, hw_serial).
  void DescribeCertificate(const X509& cert);
  // The log line, stamped with the current UTC time.
  nlohmann::json ToJson() const;
};

// An append-only JSON-lines file shared by the connection threads; a default one writes
// nothing.
class ConnectionLog {
 public:
  ConnectionLog() = default;
  ~ConnectionLog();
  ConnectionLog(const ConnectionLog&) = delete;
  ConnectionLog& operator=(const ConnectionLog&) = delete;

  // Opens `path` for appending; kIo naming it when it cannot be.
  [[nodiscard]] Result<void> Open(const std::filesystem::path& path);
  // Appends the record as one line and flushes it.
  void Write(const ConnectionRecord& record);
  void Close();

 private:
  std::mutex mutex_;
  std::FILE* file_ = nullptr;
};

}  // namespace idevid
