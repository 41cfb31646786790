// The device configuration: the typed model of the `set ...` statements an appliance is
// configured with (CA profiles, node-local certificates, the idev-id location, SSL-I profiles).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/tpm_pcr.h"

namespace idevid {

// Where a statement came from, for messages: "device.conf:12:45".
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  std::string ToString() const;
};

// Where each attribute of one configured object was set ("certificate" -> device.conf:3:1):
// every attribute is set by one statement, and messages about it point at that statement.
using AttributeLocations = std::map<std::string, SourceLocation>;

// set security pki ca-profile NAME ...
struct CaProfile {
  std::string name;
  std::string ca_identity;
  std::string certificate;  // PEM file: the CA (and optionally its chain)
  SourceLocation defined_at;
  AttributeLocations set_at;
};

// set security pki node-local local-certificate ID ...
struct LocalCertificate {
  std::string id;
  std::string certificate;  // PEM or DER file
  std::string private_key;  // PEM file
  std::string ca_profile;   // the profile its verification uses
  SourceLocation defined_at;
  AttributeLocations set_at;
};

// set security pki node-local idev-id ...
struct IdevidLocation {
  std::uint32_t nv_index = 0x01C90000;
  std::uint32_t key_handle = 0x81020000;
  AttributeLocations set_at;  // "nv-index", "key-handle" when configured
};

// set security pki node-local attestation ...: what the device answers a cloud's attestation
// challenge with (TPM2_Quote by the IAK over its measured boot).
struct AttestationConfig {
  std::string event_log;  // the measured-boot log, e.g. /sys/kernel/security/tpm0/binary_bios_measurements
  // The PCRs the device agrees to quote; a challenge for others is refused. nullopt: whatever
  // the cloud asks for.
  std::optional<PcrSelection> pcrs;
  std::uint32_t key_handle = 0x81020001;  // the IAK (persistent)
  std::uint32_t nv_index = 0x01C90100;    // its certificate (DER)
  SourceLocation defined_at;              // the first attestation statement
  AttributeLocations set_at;
};

enum class TlsVersions { kAll, kTls12, kTls13 };

// set services ssl initiation profile NAME ...
struct SslInitiationProfile {
  std::string name;
  std::string client_certificate;  // "idev-id" or a local-certificate id
  bool tpm_offload = false;        // crypto-hardware-offload tpm
  std::string trusted_ca;          // a ca-profile name
  std::string server_name;         // SNI and the name the server certificate must carry
  TlsVersions versions = TlsVersions::kAll;
  int handshake_timeout_seconds = 10;
  SourceLocation defined_at;
  AttributeLocations set_at;
};

inline constexpr const char* kIdevidCertificateId = "idev-id";

struct DeviceConfig {
  std::map<std::string, CaProfile> ca_profiles;
  std::map<std::string, LocalCertificate> local_certificates;
  IdevidLocation idevid;
  std::map<std::string, SslInitiationProfile> ssl_profiles;
  std::optional<AttestationConfig> attestation;  // nullopt: the device does not attest
  std::optional<std::string> socket_group;       // set security pki node-local socket-group GROUP
  AttributeLocations node_local_set_at;          // "socket-group" when configured
};

}  // namespace idevid
