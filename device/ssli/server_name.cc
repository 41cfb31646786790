#include "device/ssli/server_name.h"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/display_text.h"
#include "core/openssl_error.h"
#include "core/x509.h"

namespace idevid {
namespace {

bool IsIpLiteral(const std::string& name) {
  unsigned char address[16];
  return ::inet_pton(AF_INET, name.c_str(), address) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), address) == 1;
}

// "IP:192.0.2.1" / "IP:2001:db8::1" for an iPAddress entry.
std::string IpEntry(const ASN1_OCTET_STRING& ip) {
  char text[INET6_ADDRSTRLEN] = "?";
  int family = ip.length == 4 ? AF_INET : ip.length == 16 ? AF_INET6 : 0;
  if (family != 0) ::inet_ntop(family, ip.data, text, sizeof text);
  return fmt::format("IP:{}", text);
}

}  // namespace

ExpectedServerName ExpectedServerFor(const SslInitiationProfile& profile, const std::string& host) {
  ExpectedServerName expected{profile.server_name.empty() ? host : profile.server_name, false,
                              !profile.server_name.empty()};
  const std::string& n = expected.name;
  if (n.size() > 2 && n.front() == '[' && n.back() == ']') expected.name = n.substr(1, n.size() - 2);
  expected.is_ip = IsIpLiteral(expected.name);
  return expected;
}

Result<void> RequireServerName(SSL* ssl, const ExpectedServerName& expected) {
  if (expected.is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), expected.name.c_str()) != 1) {
      return FailOpenSsl(
          fmt::format("cannot check the server's address {}", QuotedDisplayText(expected.name)));
    }
    return {};
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set_tlsext_host_name(ssl, expected.name.c_str()) != 1 ||
      SSL_set1_host(ssl, expected.name.c_str()) != 1) {
    return FailOpenSsl(fmt::format("cannot check the server's name {}", QuotedDisplayText(expected.name)));
  }
  return {};
}

bool ServerNameMismatched(const SSL* ssl) {
  long verify = SSL_get_verify_result(ssl);
  return verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH;
}

std::string ServerNameMismatch(const SSL* ssl, const ExpectedServerName& expected,
                               const std::string& profile) {
  // The chain the server sent, its certificate first, is kept even when verification failed.
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
  std::string names = chain != nullptr && sk_X509_num(chain) > 0
                          ? fmt::format(" (it is for {})", CertificateNames(*sk_X509_value(chain, 0)))
                          : "";
  std::string fix = expected.from_profile
                        ? fmt::format(
                              "set server-name in ssl initiation profile {} to a name the "
                              "server's certificate carries",
                              profile)
                        : fmt::format(
                              "set server-name in ssl initiation profile {}, or connect to the "
                              "cloud by the name in its certificate",
                              profile);
  return fmt::format("the server's certificate is not for {} {}{}; {}", expected.is_ip ? "address" : "name",
                     QuotedDisplayText(expected.name), names, fix);
}

std::string CertificateNames(const X509& cert) {
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(&cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return DisplayText(SubjectLine(cert));
  std::vector<std::string> entries;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      entries.push_back("DNS:" + std::string(reinterpret_cast<const char*>(dns->data),
                                             static_cast<std::size_t>(dns->length)));
    } else if (name->type == GEN_IPADD) {
      entries.push_back(IpEntry(*name->d.iPAddress));
    }
  }
  GENERAL_NAMES_free(names);
  if (entries.empty()) return "no DNS name or IP address";
  return DisplayText(fmt::format("{}", fmt::join(entries, ", ")));
}

}  // namespace idevid
