// Errors as values: Result<T>, the Error every fallible operation of the project returns, and
// IDEVID_TRY / IDEVID_ASSIGN_OR_RETURN, the one way to pass an error up with context.
//
// An error is infrastructure or misuse: a TPM that does not answer, a file that cannot be read,
// a peer that went away, an option that makes no sense. That a unit was refused is not an
// error: checks answer a Verdict (core/verdict.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <tl/expected.hpp>

namespace idevid {

// Where an error came from; decides how a person reads its code.
enum class ErrorDomain {
  kOpenSsl,   // code: the first OpenSSL error code of the drained queue
  kTss,       // code: the TSS2_RC as returned by tpm2-tss
  kIo,        // code: errno
  kUsage,     // code: a UsageCode; the caller asked for something impossible
  kConfig,    // code: a ConfigCode; a configuration or input file is wrong
  kTls,       // code: the SSL_get_error() value; the TLS layer failed (not a refusal)
  kVerify,    // code: the X509_V_ERR_* value
  kProcess,   // code: exit status or signal of a child process
  kPeer,      // code: a PeerCode; the other end of a connection is gone, silent or unreachable
  kDatabase,  // code: the back end's own (SQLite's extended result code; PostgreSQL's SQLSTATE as
              // base-36 number); the ledger's database failed or is unreachable
  kPkcs11,    // code: the CK_RV a PKCS#11 module returned (CKR_PIN_INCORRECT, CKR_TOKEN_NOT_PRESENT)
};

// Stable codes of the domains whose errors come from us rather than from a library.
enum class UsageCode : std::uint64_t {
  kInvalidArgument = 1,  // a value that is not one of those allowed
  kMissingArgument = 2,  // something required was not given
  kConflict = 3,         // two things given that exclude each other
  kUnsupported = 4,      // asked of a target or key that cannot do it
  kWrongState = 5,       // not possible now (already done, not loaded, in use)
};
enum class ConfigCode : std::uint64_t {
  kSyntax = 1,            // a statement or line that does not parse
  kUnknownStatement = 2,  // a statement or key we do not know
  kBadValue = 3,          // a value out of range or of the wrong kind
  kMissing = 4,           // a required statement or field is absent
  kConflict = 5,          // statements that contradict each other
  kReference = 6,         // names something that is not defined
  kFile = 7,              // a file it names is missing, unreadable or not what it should be
  kLimit = 8,             // too large or too many
};
enum class PeerCode : std::uint64_t {
  kUnreachable = 1,  // no address, or every address refused the connection
  kClosed = 2,       // closed the connection before it answered in full
  kTimeout = 3,      // said nothing within the deadline
  kMalformed = 4,    // answered something that is not what the protocol allows
  kTooLarge = 5,     // answered more than we accept
};

// Stable lower-case name of a domain ("openssl", "tss", ...), for logs and records.
std::string_view DomainName(ErrorDomain domain);
// Stable name of a code of the usage, config and peer domains ("bad-value"); empty for the
// domains whose codes come from a library.
std::string_view CodeName(ErrorDomain domain, std::uint64_t code);

// An error: domain, numeric code, the root cause's message, and the context it was passed up
// through (outermost first). It reads as a chain: "outer: inner: root cause".
class [[nodiscard]] Error {
 public:
  Error(ErrorDomain domain, std::uint64_t code, std::string message)
      : domain_(domain), code_(code), root_message_(std::move(message)) {}

  ErrorDomain domain() const { return domain_; }
  std::uint64_t code() const { return code_; }
  // Whether this is `domain` with `code` (a number or one of the code enums above).
  template <typename Code>
  bool Is(ErrorDomain domain, Code code) const {
    return domain_ == domain && code_ == static_cast<std::uint64_t>(code);
  }
  // The whole chain, outer context first and the root cause last.
  std::string message() const;
  // The root cause alone.
  const std::string& root_message() const { return root_message_; }
  // The contexts it was passed up through, outermost first.
  const std::vector<std::string>& context() const { return context_; }

  // Returns a copy with `context` as its new outermost context; domain and code stay.
  Error WithContext(std::string context) const&;
  Error WithContext(std::string context) &&;
  // "[domain 0x1234] message" ("[config 3 bad-value] message"), for logs and the command line.
  std::string ToString() const;

 private:
  ErrorDomain domain_;
  std::uint64_t code_;
  std::string root_message_;
  std::vector<std::string> context_;
};

// A value or the Error that prevented it. Must be used: a call whose Result is dropped does not
// compile under -Werror (the class, not only Error, is [[nodiscard]]).
template <typename T>
class [[nodiscard]] Result : public tl::expected<T, Error> {
 public:
  using Base = tl::expected<T, Error>;
  using Base::Base;
  Result() = default;
  Result(Base other) : Base(std::move(other)) {}  // NOLINT: from and_then/map/transform
};

}  // namespace idevid

// tl::expected's and_then/or_else accept a function that returns a Result.
template <typename T>
struct tl::detail::is_expected_impl<idevid::Result<T>> : std::true_type {};

namespace idevid {

// Shorthand for the failed side of a Result.
inline tl::unexpected<Error> Fail(ErrorDomain domain, std::uint64_t code, std::string message) {
  return tl::unexpected<Error>(Error(domain, code, std::move(message)));
}
inline tl::unexpected<Error> Fail(Error error) { return tl::unexpected<Error>(std::move(error)); }

inline tl::unexpected<Error> UsageError(UsageCode code, std::string message) {
  return Fail(ErrorDomain::kUsage, static_cast<std::uint64_t>(code), std::move(message));
}
inline tl::unexpected<Error> ConfigError(ConfigCode code, std::string message) {
  return Fail(ErrorDomain::kConfig, static_cast<std::uint64_t>(code), std::move(message));
}
inline tl::unexpected<Error> PeerError(PeerCode code, std::string message) {
  return Fail(ErrorDomain::kPeer, static_cast<std::uint64_t>(code), std::move(message));
}
// An I/O error from errno, with what was being done.
tl::unexpected<Error> ErrnoError(int errno_value, std::string_view what);

namespace result_detail {

// The error of a failed Result, moved out, with the macro's optional context added.
inline Error WithOptionalContext(Error error) { return error; }
template <typename... Args>
Error WithOptionalContext(Error error, fmt::format_string<Args...> format, Args&&... args) {
  return std::move(error).WithContext(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace result_detail
}  // namespace idevid

#define IDEVID_RESULT_CONCAT_INNER(a, b) a##b
#define IDEVID_RESULT_CONCAT(a, b) IDEVID_RESULT_CONCAT_INNER(a, b)

// IDEVID_TRY(expr[, "what we were doing with {}", arg...]): evaluates `expr` (a Result); when it
// failed, returns its error from the enclosing function, with the formatted context as the
// error's new outermost context.
#define IDEVID_TRY(expr, ...)                                                \
  do {                                                                       \
    auto&& idevid_try_result = (expr);                                       \
    if (!idevid_try_result)                                                  \
      return ::idevid::Fail(::idevid::result_detail::WithOptionalContext(    \
          std::move(idevid_try_result).error() __VA_OPT__(, ) __VA_ARGS__)); \
  } while (false)

// IDEVID_ASSIGN_OR_RETURN(lhs, expr[, "context {}", arg...]): as IDEVID_TRY, and on success
// moves the value into `lhs` ("auto key", "Cert cert" or an existing variable).
#define IDEVID_ASSIGN_OR_RETURN(lhs, expr, ...)                                     \
  IDEVID_ASSIGN_OR_RETURN_IMPL(IDEVID_RESULT_CONCAT(idevid_result_, __LINE__), lhs, \
                               expr __VA_OPT__(, ) __VA_ARGS__)
#define IDEVID_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr, ...)                                                 \
  auto tmp = (expr);                                                                                      \
  if (!tmp)                                                                                               \
    return ::idevid::Fail(                                                                                \
        ::idevid::result_detail::WithOptionalContext(std::move(tmp).error() __VA_OPT__(, ) __VA_ARGS__)); \
  lhs = std::move(tmp).value()
