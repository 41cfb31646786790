// Errors as values: Result<T> and the Error every fallible operation of the project returns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace idevid {

// Where an error came from; decides how a person reads its code.
enum class ErrorDomain {
  kOpenSsl,  // code: the first OpenSSL error code of the drained queue
  kTss,      // code: the TSS2_RC as returned by tpm2-tss
  kIo,       // code: errno
  kUsage,    // code: 0; the caller asked for something impossible
  kConfig,   // code: 0; a configuration or input file is wrong
  kTls,      // code: the SSL_get_error() value
  kVerify,   // code: the X509_V_ERR_* value
  kProcess,  // code: exit status or signal of a child process
};

// Stable lower-case name of a domain ("openssl", "tss", ...), for logs and records.
std::string_view DomainName(ErrorDomain domain);

// An error: domain, numeric code and a message that says what went wrong and what to do.
class [[nodiscard]] Error {
 public:
  Error(ErrorDomain domain, std::uint64_t code, std::string message)
      : domain_(domain), code_(code), message_(std::move(message)) {}

  ErrorDomain domain() const { return domain_; }
  std::uint64_t code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "context: message"; domain and code stay.
  Error WithContext(std::string_view context) const;
  // "[domain 0x1234] message", for logs and the command line.
  std::string ToString() const;

 private:
  ErrorDomain domain_;
  std::uint64_t code_;
  std::string message_;
};

template <typename T>
using Result = tl::expected<T, Error>;

// Shorthand for the failed side of a Result.
inline tl::unexpected<Error> Fail(ErrorDomain domain, std::uint64_t code, std::string message) {
  return tl::unexpected<Error>(Error(domain, code, std::move(message)));
}
inline tl::unexpected<Error> Fail(Error error) { return tl::unexpected<Error>(std::move(error)); }

// Usage and configuration errors carry no code.
inline tl::unexpected<Error> UsageError(std::string message) {
  return Fail(ErrorDomain::kUsage, 0, std::move(message));
}
inline tl::unexpected<Error> ConfigError(std::string message) {
  return Fail(ErrorDomain::kConfig, 0, std::move(message));
}
// An I/O error from errno, with what was being done.
tl::unexpected<Error> ErrnoError(int errno_value, std::string_view what);

}  // namespace idevid
