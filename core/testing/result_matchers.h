// GoogleTest matchers for Result and Error (as abseil's status_matchers.h):
//   EXPECT_THAT(ParseX(...), ResultIs(ErrorDomain::kConfig, ConfigCode::kSyntax, HasSubstr("line 3")));
//   EXPECT_THAT(error, ErrorIs(ErrorDomain::kPeer, PeerCode::kTimeout, _));
//   ASSERT_THAT(LoadY(...), IsOk());
// A failure prints the whole error, so a negative test says which error it got instead.
#pragma once

#include <cstdint>
#include <string>

#include <gmock/gmock.h>

#include "core/result.h"

namespace idevid::testing {

namespace matchers_detail {

template <typename MessageMatcher>
bool ErrorMatches(const Error& error, ErrorDomain domain, std::uint64_t code, const MessageMatcher& message,
                  ::testing::MatchResultListener* listener) {
  *listener << "which is the error " << error.ToString();
  if (error.domain() != domain || error.code() != code) return false;
  return ::testing::ExplainMatchResult(message, error.message(), listener);
}

}  // namespace matchers_detail

// Matches an Error with this domain and code whose message (the whole chain) matches `message`.
MATCHER_P3(ErrorIs, domain, code, message,
           std::string(negation ? "is not" : "is") + " an error in domain " +
               std::string(DomainName(domain)) + " with code " +
               std::to_string(static_cast<std::uint64_t>(code))) {
  return matchers_detail::ErrorMatches(arg, domain, static_cast<std::uint64_t>(code), message,
                                       result_listener);
}

// Matches a failed Result whose error is ErrorIs(domain, code, message).
MATCHER_P3(ResultIs, domain, code, message,
           std::string(negation ? "is not" : "is") + " a failed Result in domain " +
               std::string(DomainName(domain)) + " with code " +
               std::to_string(static_cast<std::uint64_t>(code))) {
  if (arg.has_value()) {
    *result_listener << "which succeeded";
    return false;
  }
  return matchers_detail::ErrorMatches(arg.error(), domain, static_cast<std::uint64_t>(code), message,
                                       result_listener);
}

// Matches a failed Result in `domain` whose message matches `message`, whatever its code (for the
// domains whose codes come from a library and differ between its versions, as OpenSSL's).
MATCHER_P2(ResultInDomain, domain, message,
           std::string(negation ? "is not" : "is") + " a failed Result in domain " +
               std::string(DomainName(domain))) {
  if (arg.has_value()) {
    *result_listener << "which succeeded";
    return false;
  }
  return matchers_detail::ErrorMatches(arg.error(), domain, arg.error().code(), message, result_listener);
}

// Matches a Result that succeeded; otherwise prints its error.
MATCHER(IsOk, std::string(negation ? "failed" : "succeeded")) {
  if (arg.has_value()) return true;
  *result_listener << "which failed with " << arg.error().ToString();
  return false;
}

}  // namespace idevid::testing
