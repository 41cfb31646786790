#include "device/pkid/certificate_view.h"

#include <openssl/bn.h>

#include <ctime>

#include <fmt/format.h>

#include "core/x509.h"

namespace idevid {
namespace {

std::string Attribute(const X509& cert, bool subject, const char* name) {
  auto values = subject ? SubjectAttribute(cert, name) : IssuerAttribute(cert, name);
  return values && !values->empty() ? values->front() : "";
}

// "Organization: O, Common name: CN, Serial number: S" with the parts that exist.
std::string NameText(const X509& cert, bool subject) {
  std::vector<std::string> parts;
  for (auto [label, attr] : {std::pair{"Organization", "O"}, std::pair{"Common name", "CN"},
                             std::pair{"Serial number", "2.5.4.5"}}) {
    std::string value = Attribute(cert, subject, attr);
    if (!value.empty()) parts.push_back(fmt::format("{}: {}", label, value));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

// "11-28-2026 12:00 UTC", the appliance's date style.
std::string TimeText(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return "invalid";
  return fmt::format("{:02}-{:02}-{:04} {:02}:{:02} UTC", tm.tm_mon + 1, tm.tm_mday, tm.tm_year + 1900,
                     tm.tm_hour, tm.tm_min);
}

std::string SerialText(const X509& cert) {
  ossl::Bignum serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(&cert), nullptr));
  char* hex = serial ? BN_bn2hex(serial.get()) : nullptr;
  std::string text = hex ? hex : "";
  OPENSSL_free(hex);
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string KeyText(const X509& cert) {
  const EVP_PKEY* key = X509_get0_pubkey(&cert);
  if (key == nullptr) return "unknown";
  const char* name = EVP_PKEY_is_a(key, "EC")    ? "ecdsaEncryption"
                     : EVP_PKEY_is_a(key, "RSA") ? "rsaEncryption"
                                                 : EVP_PKEY_get0_type_name(key);
  return fmt::format("{} ({} bits)", name, EVP_PKEY_get_bits(key));
}

std::string DetailText(const StoreEntry& e, const X509& c) {
  return fmt::format(
      "Certificate identifier: {}\n"
      "  Certificate version: {}\n"
      "  Serial number: {}\n"
      "  Issuer:\n    {}\n"
      "  Subject:\n    {}\n"
      "  Validity:\n    Not before: {}\n    Not after: {}\n"
      "  Public key algorithm: {}\n"
      "  Key location: {}\n"
      "  Fingerprint: {}\n"
      "  Load status: {}\n",
      e.id, X509_get_version(&c) + 1, SerialText(c), NameText(c, false), NameText(c, true),
      TimeText(X509_get0_notBefore(&c)), TimeText(X509_get0_notAfter(&c)), KeyText(c), e.key.ToString(),
      Sha256Fingerprint(c).value_or(""), e.status.ToString());
}

std::string BriefText(const StoreEntry& e, const X509& c) {
  return fmt::format(
      "Certificate identifier: {}\n"
      "  Issued to: {}, Issued by: {}\n"
      "  Validity:\n    Not before: {}\n    Not after: {}\n"
      "  Key location: {}\n"
      "  Load status: {}\n",
      e.id, NameText(c, true), NameText(c, false), TimeText(X509_get0_notBefore(&c)),
      TimeText(X509_get0_notAfter(&c)), e.key.ToString(), e.status.ToString());
}

nlohmann::json NameJson(const X509& cert, bool subject) {
  return {{"organization", Attribute(cert, subject, "O")},
          {"common_name", Attribute(cert, subject, "CN")},
          {"serial_number", Attribute(cert, subject, "2.5.4.5")}};
}

}  // namespace

std::string FormatEntry(const StoreEntry& entry, ViewDetail detail) {
  if (!entry.certificate) {
    return fmt::format("Certificate identifier: {}\n  Key location: {}\n  Load status: {}\n", entry.id,
                       entry.key.ToString(), entry.status.ToString());
  }
  return detail == ViewDetail::kDetail ? DetailText(entry, *entry.certificate)
                                       : BriefText(entry, *entry.certificate);
}

nlohmann::json EntryJson(const StoreEntry& entry) {
  nlohmann::json j = {{"certificate_id", entry.id},
                      {"loaded", entry.status.loaded},
                      {"load_status", entry.status.ToString()},
                      {"load_error", entry.status.error},
                      {"key_location", entry.key.ToString()}};
  if (!entry.certificate) return j;
  const X509& c = *entry.certificate;
  const EVP_PKEY* key = X509_get0_pubkey(&c);
  j["version"] = X509_get_version(&c) + 1;
  j["serial_number"] = SerialText(c);
  j["issuer"] = NameJson(c, false);
  j["subject"] = NameJson(c, true);
  j["not_before"] = TimeText(X509_get0_notBefore(&c));
  j["not_after"] = TimeText(X509_get0_notAfter(&c));
  j["public_key_algorithm"] = key ? EVP_PKEY_get0_type_name(key) : "";
  j["public_key_bits"] = key ? EVP_PKEY_get_bits(key) : 0;
  j["fingerprint_sha256"] = Sha256Fingerprint(c).value_or("");
  return j;
}

}  // namespace idevid
