#include "provisioning/service_certificate.h"

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/display_text.h"
#include "core/file_io.h"
#include "core/x509.h"
#include "core/x509_build.h"

namespace idevid {
namespace {

constexpr std::size_t kCommonNameMaxChars = 64;  // ub-common-name, RFC 5280 Appendix A.1
constexpr auto kServiceValidity = std::chrono::days(2 * 365 + 1);

bool IsIpAddress(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buffer) == 1 || ::inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

// A host name as RFC 1123 §2.1 allows: dot-separated labels of letters, digits and inner hyphens.
bool IsDnsName(const std::string& host) {
  std::size_t start = 0;
  while (start <= host.size()) {
    std::size_t end = std::min(host.find('.', start), host.size());
    std::string_view label(host.data() + start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    bool letters = std::all_of(label.begin(), label.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    });
    if (!letters) return false;
    start = end + 1;
  }
  return true;
}

// The subjectAltName value (openssl.cnf syntax; `host` was checked to hold no separators).
std::string SubjectAltName(const std::string& host) {
  bool wildcard = host == "0.0.0.0" || host == "::";
  bool loopback = wildcard || host == "localhost" || host == "127.0.0.1" || host == "::1";
  std::vector<std::string> names;
  if (!wildcard) names.push_back((IsIpAddress(host) ? "IP:" : "DNS:") + host);
  if (loopback) {
    for (const char* name : {"DNS:localhost", "IP:127.0.0.1", "IP:::1"}) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.emplace_back(name);
    }
  }
  return fmt::format("{}", fmt::join(names, ","));
}

}  // namespace

std::filesystem::path ServiceFiles::Certificate(const std::filesystem::path& dir) {
  return dir / "service.pem";
}
std::filesystem::path ServiceFiles::Key(const std::filesystem::path& dir) { return dir / "service.key"; }

Result<ServiceIdentity> IssueServiceCertificate(const Factory& factory, const std::string& host) {
  if (host.size() > kCommonNameMaxChars || !(IsIpAddress(host) || IsDnsName(host))) {
    return UsageError(UsageCode::kInvalidArgument,
                      fmt::format("the service host {} is neither an IP address nor a DNS name of at most {} "
                                  "characters",
                                  QuotedDisplayText(host), kCommonNameMaxChars));
  }
  ServiceIdentity identity;
  IDEVID_ASSIGN_OR_RETURN(identity.key, GenerateKey(KeyAlgorithm::kEccP256), "the service key");
  auto not_after = std::chrono::system_clock::now() + kServiceValidity;
  CertificateSpec spec{.subject = {{"O", factory.manufacturer}, {"CN", host}},
                       .not_after = fmt::format("{:%Y%m%d%H%M%SZ}",
                                                fmt::gmtime(std::chrono::system_clock::to_time_t(not_after))),
                       .extensions = {
                           {"basicConstraints", "critical,CA:FALSE"},   // RFC 5280 4.2.1.9
                           {"keyUsage", "critical,digitalSignature"},   // RFC 5280 4.2.1.3
                           {"extendedKeyUsage", "serverAuth"},          // RFC 5280 4.2.1.12
                           {"subjectAltName", SubjectAltName(host)},    // RFC 5280 4.2.1.6; RFC 6125 6.4
                           {"subjectKeyIdentifier", "hash"},            // RFC 5280 4.2.1.2
                           {"authorityKeyIdentifier", "keyid:always"},  // RFC 5280 4.2.1.1
                       }};
  IDEVID_ASSIGN_OR_RETURN(identity.certificate,
                          IssueCertificate(spec, *identity.key, factory.issuing.get(), *factory.issuing_key),
                          "the service certificate for {}", host);
  X509_up_ref(factory.issuing.get());
  identity.chain.emplace_back(factory.issuing.get());
  return identity;
}

Result<void> WriteServiceIdentity(const ServiceIdentity& identity, const std::filesystem::path& dir) {
  IDEVID_ASSIGN_OR_RETURN(std::string pem, CertificatePem(*identity.certificate), "the service certificate");
  for (const auto& ca : identity.chain) {
    IDEVID_ASSIGN_OR_RETURN(std::string ca_pem, CertificatePem(*ca), "the service certificate's chain");
    pem += ca_pem;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoError(ec.value(), "cannot create " + dir.string());
  IDEVID_TRY(WritePrivateKeyPem(ServiceFiles::Key(dir), *identity.key), "the service key");
  return WriteFileAtomic(ServiceFiles::Certificate(dir), pem, 0644);
}

}  // namespace idevid
