// The station's side of the enrolment exchange with a factory service over HTTPS
// (provisioning/enrolment_wire.h): the service's certificate must verify against the trust
// bundle and name the host of the URL (RFC 6125), always; there is no way to turn that off.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"
#include "provisioning/enrolment_channel.h"

namespace idevid {

struct FactoryClientOptions {
  std::string url;              // "https://HOST:PORT" (HOST may be [IPv6]; no port: 443)
  std::filesystem::path trust;  // the CA bundle (PEM) the service's certificate must verify against
  std::optional<std::filesystem::path> certificate;  // the station's certificate (and chain), PEM
  std::optional<std::filesystem::path> private_key;  // its key, PEM; given with `certificate`
  std::chrono::milliseconds connect_timeout{10000};  // TCP connection and TLS handshake, each wait
  std::chrono::milliseconds read_timeout{30000};     // the longest wait for the service's next byte
};

// Each step is one HTTPS request on a connection of its own. Errors:
//   kPeer/kUnreachable  nothing accepts connections at the URL;
//   kPeer/kTimeout      the service said nothing within the timeout;
//   kPeer/kClosed       it closed the connection before it answered;
//   kVerify (X509_V_ERR_*) its certificate does not verify or does not name the host: nothing
//                       is sent to it;
//   kTls (SSL_ERROR_SSL) the TLS session failed (e.g. it refused the station's certificate);
//   kPeer/kMalformed    an answer outside the wire format, or 400/404/405/413/5xx, with the
//                       service's error text escaped;
//   kPeer/kTooLarge     an answer over 256 KiB.
// A 403 is the authority's refusal, returned as the answer. Calls are serialized.
class HttpsEnrolmentChannel : public EnrolmentChannel {
 public:
  // Checks the URL and loads the files; connects only when a step is asked. Fails with
  // kUsage/kInvalidArgument for a URL that is not https://HOST[:PORT], kUsage/kMissingArgument
  // for a certificate without its key (or a key without its certificate), kConfig/kFile naming a
  // trust bundle, certificate or key that cannot be used.
  static Result<std::unique_ptr<HttpsEnrolmentChannel>> Connect(const FactoryClientOptions& options);
  ~HttpsEnrolmentChannel() override;

  [[nodiscard]] Result<EnrolmentAnswer<EnrolmentSession>> Begin(const EnrolmentOrder& order) override;
  [[nodiscard]] Result<EnrolmentAnswer<Credential>> Submit(const std::string& session,
                                                           std::span<const std::uint8_t> csr) override;
  [[nodiscard]] Result<EnrolmentAnswer<EnrolmentCertificates>> Activate(
      const std::string& session, std::span<const std::uint8_t> secret) override;
  [[nodiscard]] Result<EnrolmentAnswer<EnrolmentCommitted>> Commit(const std::string& session,
                                                                   const EnrolmentCommit& commit) override;

  struct Impl;

 private:
  explicit HttpsEnrolmentChannel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace idevid
