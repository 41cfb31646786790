#include "core/pkcs11_pin.h"

#include <openssl/crypto.h>

#include <cstdlib>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/file_io.h"

namespace idevid {

Pkcs11Pin::Pkcs11Pin(std::string_view value) : value_(std::make_unique<std::string>(value)) {}

Pkcs11Pin::~Pkcs11Pin() {
  if (value_ && !value_->empty()) OPENSSL_cleanse(value_->data(), value_->size());
}

Result<Pkcs11Pin> ReadPkcs11Pin(const std::filesystem::path& pin_file) {
  if (!pin_file.empty()) {
    IDEVID_ASSIGN_OR_RETURN(std::string text, ReadFileText(pin_file), "cannot read the PIN file");
    std::size_t end = text.find_first_of("\r\n");
    Pkcs11Pin pin(std::string_view(text).substr(0, end == std::string::npos ? text.size() : end));
    OPENSSL_cleanse(text.data(), text.size());
    if (pin.value().empty()) {
      return UsageError(UsageCode::kMissingArgument,
                        fmt::format("the PIN file {} is empty; its first line is the token's user PIN",
                                    QuotedDisplayText(pin_file.string())));
    }
    return pin;
  }
  const char* value = std::getenv(kPkcs11PinVariable);
  if (value == nullptr || *value == '\0') {
    return UsageError(UsageCode::kMissingArgument,
                      fmt::format("the token needs its user PIN: set {} or give --pkcs11-pin-file FILE "
                                  "(never on the command line)",
                                  kPkcs11PinVariable));
  }
  return Pkcs11Pin(value);
}

}  // namespace idevid
