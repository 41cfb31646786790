// The enrolment service's own TLS identity, issued by the factory's issuing CA: a station that
// trusts factory-ca.pem (FactoryFiles::Chain) trusts the service it talks to.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "provisioning/factory.h"

namespace idevid {

// A server certificate, its private key and the CA certificates that follow it in service.pem.
struct ServiceIdentity {
  ossl::Cert certificate;
  ossl::PKey key;
  std::vector<ossl::Cert> chain;  // the issuing CA
};

// Files of a service identity directory.
struct ServiceFiles {
  static std::filesystem::path Certificate(const std::filesystem::path& dir);  // service.pem
  static std::filesystem::path Key(const std::filesystem::path& dir);          // service.key
};

// Issues the service's certificate for `host` (a DNS name or an IP address) from the factory's
// issuing CA: a fresh EC P-256 key, CN = host, subjectAltName IP:host or DNS:host (a wildcard
// address such as 0.0.0.0 or :: is not named; it and localhost/127.0.0.1/::1 add DNS:localhost,
// IP:127.0.0.1 and IP:::1), EKU serverAuth, KeyUsage digitalSignature, CA:FALSE, valid for two
// years from now. Fails with kUsage/kInvalidArgument for a host that is neither an IP address
// nor a DNS name of at most 64 characters.
Result<ServiceIdentity> IssueServiceCertificate(const Factory& factory, const std::string& host);

// Creates DIR when missing and writes DIR/service.pem (the certificate, then the chain) and DIR/service.key
// (mode 0600), each atomically. Fails with kIo naming the file.
Result<void> WriteServiceIdentity(const ServiceIdentity& identity, const std::filesystem::path& dir);

}  // namespace idevid
