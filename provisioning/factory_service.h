// The factory's enrolment authority reachable over HTTPS (TLS 1.2+), speaking the JSON wire
// format of provisioning/enrolment_wire.h; optionally only to stations whose client certificate
// verifies against a station CA bundle.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"
#include "provisioning/enrolment_channel.h"

namespace idevid {

struct FactoryServiceOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;             // 0: any free port (see FactoryService::port)
  std::filesystem::path certificate;  // the service's certificate, then its chain (PEM)
  std::filesystem::path private_key;  // its key (PEM)
  // When given: every client must present a certificate that verifies against this bundle, and
  // the station is its subject CN (escaped), whatever the request says.
  std::optional<std::filesystem::path> station_ca;
  // JSON lines appended, one per request: time, peer, station, method, path, status, session,
  // and the reason of a refusal or the error of a failure. Empty: no log.
  std::filesystem::path log;
  std::chrono::milliseconds read_timeout{10000};   // the longest wait for a client's next byte
  std::chrono::milliseconds write_timeout{10000};  // the longest wait to send it more
};

// A running service. The authority is called from several server threads at once and must be
// thread-safe; it must outlive the service.
class FactoryService {
 public:
  // Loads the files, binds and serves on a thread of its own. Fails with kConfig/kFile naming a
  // certificate, key or CA file that cannot be used, kIo when the address cannot be bound.
  static Result<std::unique_ptr<FactoryService>> Start(const FactoryServiceOptions& options,
                                                       EnrolmentChannel& authority);
  ~FactoryService();  // Stop()
  FactoryService(const FactoryService&) = delete;
  FactoryService& operator=(const FactoryService&) = delete;

  // The bound port.
  std::uint16_t port() const;
  // Stops accepting, lets the requests in progress finish, and returns. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit FactoryService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace idevid
