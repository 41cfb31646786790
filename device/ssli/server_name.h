// Who the cloud must prove to be: the profile's server-name, or else the host the device dials,
// checked the way curl checks it (a DNS name against dNSName entries with SNI; an IP address
// against iPAddress entries without SNI).
#pragma once

#include <string>

#include <openssl/types.h>

#include "core/result.h"
#include "device/config/device_config.h"

namespace idevid {

struct ExpectedServerName {
  std::string name;
  bool is_ip = false;
  bool from_profile = false;  // the profile's server-name rather than the host dialled
};

// The name `profile` expects of a server reached at `host` (brackets of an IPv6 literal dropped).
ExpectedServerName ExpectedServerFor(const SslInitiationProfile& profile, const std::string& host);

// Makes the handshake on `ssl` fail, before the client authenticates, unless the server's
// certificate is for `expected` (RFC 6125 6.4, RFC 5280 4.2.1.6); sends it as SNI when it is a
// DNS name (RFC 6066 3 allows no IP literals). kOpenSsl when OpenSSL refuses the name.
Result<void> RequireServerName(SSL* ssl, const ExpectedServerName& expected);

// Whether the handshake on `ssl` failed because the server's certificate is for another name.
bool ServerNameMismatched(const SSL* ssl);

// What to tell the user when the server's certificate is not for `expected`: the name expected,
// the names the certificate carries (escaped) and how to fix the profile `profile`.
std::string ServerNameMismatch(const SSL* ssl, const ExpectedServerName& expected,
                               const std::string& profile);

// The names a certificate is for: "DNS:cloud.example, IP:127.0.0.1", or its subject line when
// it has no subjectAltName; escaped for display.
std::string CertificateNames(const X509& cert);

}  // namespace idevid
