// Device certificate specs whose identity the cloud must doubt (an empty, an oversize or a
// twice-given hwSerialNum), shared by the cloud's tests, the bad-input catalogue and the
// program that writes the device_certificate fuzzer corpus.
#pragma once

#include <openssl/x509v3.h>

#include <string>
#include <utility>
#include <vector>

#include "core/idevid_profile.h"
#include "core/x509_build.h"

namespace idevid::testing {

// subjectAltName (GeneralNames DER, RFC 5280 4.2.1.6) with one hardwareModuleName otherName
// per entry of `hw_serials`, all of the TPM 2.0 hwType. Empty on failure.
inline Bytes HardwareModuleNamesSan(const std::vector<Bytes>& hw_serials) {
  ossl::GeneralNames all(GENERAL_NAMES_new());
  for (const Bytes& serial : hw_serials) {
    auto one = EncodeHardwareModuleNameSan(kOidTpm2HwType, serial);
    if (!one) return {};
    const unsigned char* p = one->data();
    ossl::GeneralNames names(d2i_GENERAL_NAMES(nullptr, &p, static_cast<long>(one->size())));
    while (names && sk_GENERAL_NAME_num(names.get()) > 0) {
      sk_GENERAL_NAME_push(all.get(), sk_GENERAL_NAME_shift(names.get()));
    }
  }
  unsigned char* der = nullptr;
  int length = i2d_GENERAL_NAMES(all.get(), &der);
  if (length <= 0) return {};
  Bytes out(der, der + length);
  OPENSSL_free(der);
  return out;
}

// The idev-id spec of unit `serial` (an SRX4300) whose subjectAltName names `hw_serials`.
inline CertificateSpec IdevidSpecWithHwSerials(const std::string& serial,
                                               const std::vector<Bytes>& hw_serials) {
  CertificateSpec spec = *IdevidCertificateSpec({serial, "SRX4300", "Example Networks", Bytes(32, 7)});
  spec.der_extensions = {{"2.5.29.17", false, HardwareModuleNamesSan(hw_serials)}};
  return spec;
}

// The doubtful identities by name, with the start of the reason the cloud refuses each with.
struct DoubtfulIdentity {
  std::string name;
  std::vector<Bytes> hw_serials;
  std::string reason;
};
inline std::vector<DoubtfulIdentity> DoubtfulIdentities() {
  return {
      {"EmptyHwSerialNum", {Bytes{}}, "hardwareModuleName hwSerialNum is empty"},
      {"TwoHardwareModuleNamesThatDiffer",
       {Bytes(32, 1), Bytes(32, 2)},
       "subjectAltName holds 2 hardwareModuleName entries that differ"},
      {"HwSerialNumOf60KB",
       {Bytes(60000, 0x5a)},
       "hardwareModuleName hwSerialNum is 60000 bytes, more than 64"},
  };
}

}  // namespace idevid::testing
