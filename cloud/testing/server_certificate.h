// The cloud's own certificate for tests: issued by a test CA to cloud.example and 127.0.0.1 (the
// names SSL-I checks), written as DIR/server.pem (with the issuing CA) and DIR/server.key.
#pragma once

#include <filesystem>

#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "provisioning/factory.h"

namespace idevid::testing {

// Fails the calling test (gtest assertion) when a step fails.
inline void WriteCloudServerCertificate(const Factory& ca, const std::filesystem::path& dir) {
  auto key = GenerateKey(KeyAlgorithm::kEccP256);
  ASSERT_TRUE(key);
  auto cert = IssueCertificate({.subject = {{"CN", "cloud.example"}},
                                .not_after = "20991231235959Z",
                                .extensions = {{"subjectAltName", "DNS:cloud.example,IP:127.0.0.1"}}},
                               **key, ca.issuing.get(), *ca.issuing_key);
  ASSERT_TRUE(cert);
  ASSERT_TRUE(WriteFileAtomic(dir / "server.pem", *CertificatePem(**cert) + *CertificatePem(*ca.issuing)));
  ASSERT_TRUE(WritePrivateKeyPem(dir / "server.key", **key));
}

}  // namespace idevid::testing
