// The idev-id certificate profile: IEEE 802.1AR-2018 8 with the TCG "TPM 2.0 Keys for Device
// Identity and Attestation" additions. A standard shared by the factory that issues it, the
// line station that checks it and the cloud that reads it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/x509.h"
#include "core/x509_build.h"

namespace idevid {

inline constexpr std::string_view kOidSubjectSerialNumber = "2.5.4.5";           // X.520 serialNumber
inline constexpr std::string_view kOidHardwareModuleName = "1.3.6.1.5.5.7.8.4";  // RFC 4108 5
inline constexpr std::string_view kOidTpm2HwType = "2.23.133.1.2";               // TCG tcg-at-tpm20
inline constexpr std::string_view kOidPolicyIdevid = "2.23.133.11.1.1";          // TCG IDevID policy
inline constexpr std::string_view kOidPolicyIdevidTpm = "2.23.133.11.1.2";       // TCG key in TPM
inline constexpr std::string_view kOidPolicyIakRestricted = "2.23.133.11.1.3";   // TCG verifiedTPMRestricted
inline constexpr std::string_view kIdevidNotAfter = "99991231235959Z";           // 802.1AR 8.5
inline constexpr std::size_t kMaxIdentityLength = 64;                            // X.520 ub-serial-number

// The facts a unit's idev-id certificate states.
struct UnitIdentity {
  std::string serial;        // subject serialNumber
  std::string model;         // subject CN
  std::string manufacturer;  // subject O
  Bytes hw_serial;           // hardwareModuleName hwSerialNum
};

// A serial number or model must be 1-64 characters of the PrintableString set (X.680 41.4).
// Fails with kUsage naming `what` and the offending character.
Result<void> ValidateIdentityField(std::string_view what, std::string_view value);

// SHA-256 of a public key's SubjectPublicKeyInfo DER: the hwSerialNum for a key. Fails with
// kOpenSsl when the key cannot be encoded.
Result<Bytes> HardwareSerialFromPublicKey(const EVP_PKEY& key);
// hwSerialNum derived from the EK: SHA-256 over the EK certificate's SubjectPublicKeyInfo.
Result<Bytes> HardwareSerialFromEk(const X509& ek_certificate);

// The subjectAltName value (GeneralNames DER) holding one otherName hardwareModuleName
// { hwType 2.23.133.1.2, hwSerialNum } (RFC 4108 5).
Result<Bytes> EncodeHardwareModuleNameSan(std::string_view hw_type, const Bytes& hw_serial);

struct HardwareModuleName {
  std::string hw_type;  // dotted OID
  Bytes hw_serial;
};
// The hardwareModuleName in the certificate's subjectAltName; nullopt when there is none;
// kConfig when it is malformed.
Result<std::optional<HardwareModuleName>> FindHardwareModuleName(const X509& cert);

// The CertificateSpec of an idev-id certificate for `unit` issued by the factory's issuing CA.
Result<CertificateSpec> IdevidCertificateSpec(const UnitIdentity& unit);

}  // namespace idevid
