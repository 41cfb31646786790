#include "core/result.h"

#include <cstring>

#include <fmt/format.h>

namespace idevid {

std::string_view DomainName(ErrorDomain domain) {
  switch (domain) {
    case ErrorDomain::kOpenSsl: return "openssl";
    case ErrorDomain::kTss: return "tss";
    case ErrorDomain::kIo: return "io";
    case ErrorDomain::kUsage: return "usage";
    case ErrorDomain::kConfig: return "config";
    case ErrorDomain::kTls: return "tls";
    case ErrorDomain::kVerify: return "verify";
    case ErrorDomain::kProcess: return "process";
  }
  return "unknown";
}

Error Error::WithContext(std::string_view context) const {
  return Error(domain_, code_, fmt::format("{}: {}", context, message_));
}

std::string Error::ToString() const {
  return fmt::format("[{} {:#x}] {}", DomainName(domain_), code_, message_);
}

tl::unexpected<Error> ErrnoError(int errno_value, std::string_view what) {
  return Fail(ErrorDomain::kIo, static_cast<std::uint64_t>(errno_value),
              fmt::format("{}: {}", what, std::strerror(errno_value)));
}

}  // namespace idevid
