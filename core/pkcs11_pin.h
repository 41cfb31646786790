// The user PIN of a PKCS#11 token: from a PIN file (its first line) or IDEVID_PKCS11_PIN, never
// from a command line; held in one heap buffer that is zeroed when it is destroyed.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace idevid {

inline constexpr const char* kPkcs11PinVariable = "IDEVID_PKCS11_PIN";

class Pkcs11Pin {
 public:
  explicit Pkcs11Pin(std::string_view value);
  Pkcs11Pin(Pkcs11Pin&&) noexcept = default;
  Pkcs11Pin& operator=(Pkcs11Pin&&) noexcept = default;
  ~Pkcs11Pin();

  // The PIN; valid while this object lives. Never log it.
  std::string_view value() const { return *value_; }

 private:
  std::unique_ptr<std::string> value_;  // on the heap, so that a move does not copy the bytes
};

// The PIN: the first line of `pin_file` when it is not empty, else IDEVID_PKCS11_PIN. kUsage
// kMissingArgument when neither gives one; kIo naming the file (never its content) when it cannot
// be read.
Result<Pkcs11Pin> ReadPkcs11Pin(const std::filesystem::path& pin_file);

}  // namespace idevid
