#include "core/result.h"

#include <cstring>

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
    case ErrorDomain::kPeer: return "peer";
    case ErrorDomain::kDatabase: return "database";
    case ErrorDomain::kPkcs11: return "pkcs11";
  }
  return "unknown";
}

namespace {

std::string_view UsageCodeName(UsageCode code) {
  switch (code) {
    case UsageCode::kInvalidArgument: return "invalid-argument";
    case UsageCode::kMissingArgument: return "missing-argument";
    case UsageCode::kConflict: return "conflict";
    case UsageCode::kUnsupported: return "unsupported";
    case UsageCode::kWrongState: return "wrong-state";
  }
  return "";
}

std::string_view ConfigCodeName(ConfigCode code) {
  switch (code) {
    case ConfigCode::kSyntax: return "syntax";
    case ConfigCode::kUnknownStatement: return "unknown-statement";
    case ConfigCode::kBadValue: return "bad-value";
    case ConfigCode::kMissing: return "missing";
    case ConfigCode::kConflict: return "conflict";
    case ConfigCode::kReference: return "reference";
    case ConfigCode::kFile: return "file";
    case ConfigCode::kLimit: return "limit";
  }
  return "";
}

std::string_view PeerCodeName(PeerCode code) {
  switch (code) {
    case PeerCode::kUnreachable: return "unreachable";
    case PeerCode::kClosed: return "closed";
    case PeerCode::kTimeout: return "timeout";
    case PeerCode::kMalformed: return "malformed";
    case PeerCode::kTooLarge: return "too-large";
  }
  return "";
}

}  // namespace

std::string_view CodeName(ErrorDomain domain, std::uint64_t code) {
  switch (domain) {
    case ErrorDomain::kUsage: return UsageCodeName(static_cast<UsageCode>(code));
    case ErrorDomain::kConfig: return ConfigCodeName(static_cast<ConfigCode>(code));
    case ErrorDomain::kPeer: return PeerCodeName(static_cast<PeerCode>(code));
    default: return "";
  }
}

std::string Error::message() const {
  std::string chain;
  for (const std::string& outer : context_) chain += outer + ": ";
  return chain + root_message_;
}

Error Error::WithContext(std::string context) const& {
  Error copy = *this;
  return std::move(copy).WithContext(std::move(context));
}

Error Error::WithContext(std::string context) && {
  context_.insert(context_.begin(), std::move(context));
  return std::move(*this);
}

std::string Error::ToString() const {
  std::string_view name = CodeName(domain_, code_);
  if (name.empty()) return fmt::format("[{} {:#x}] {}", DomainName(domain_), code_, message());
  return fmt::format("[{} {} {}] {}", DomainName(domain_), code_, name, message());
}

tl::unexpected<Error> ErrnoError(int errno_value, std::string_view what) {
  return Fail(ErrorDomain::kIo, static_cast<std::uint64_t>(errno_value),
              fmt::format("{}: {}", what, std::strerror(errno_value)));
}

}  // namespace idevid
