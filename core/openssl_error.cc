#include "core/openssl_error.h"

#include <openssl/err.h>

#include <fmt/format.h>

namespace idevid {

Error OpenSslError(std::string_view what) {
  std::string details;
  unsigned long first = 0;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    if (first == 0) first = code;
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    details += fmt::format("; {}", text);
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      details += fmt::format(" ({})", data);
    }
  }
  if (details.empty()) details = "; no OpenSSL error was queued";
  return Error(ErrorDomain::kOpenSsl, first, fmt::format("{}{}", what, details));
}

void ClearOpenSslErrors() { ERR_clear_error(); }

}  // namespace idevid
