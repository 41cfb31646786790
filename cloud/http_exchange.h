// The HTTP/1.1 side of the cloud (RFC 9110, RFC 9112): the request it reads over TLS and the
// response it gives, with what each exchange served for the connection log.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cloud/identity_verdict.h"

namespace idevid {

// The largest request head (request line and headers) the cloud reads.
inline constexpr std::size_t kMaxRequestHeadBytes = 8192;
// The Retry-After of a 503 answer when the cloud could not decide (its ledger was down).
inline constexpr int kUnavailableRetrySeconds = 5;
// The one resource the cloud serves.
inline constexpr std::string_view kIdentityPath = "/v1/identity";

// A response and what it means for the log.
struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // besides the framing ones
  std::string content_type = "application/json";
  std::string body;
  std::string outcome;                // "served", "bad-request", "not-found", ...
  std::optional<std::string> served;  // the resource served; nullopt when none was
  std::string reason;                 // what the log says about it (escaped outside input)
  bool keep_open = false;             // the connection stays open for another request
};

// JSON text for a response body; invalid UTF-8 from outside becomes U+FFFD, not an exception.
std::string JsonText(const nlohmann::json& value);

// An error answer: `status` with the body {"error": reason}, and `outcome`/`reason` for the log.
HttpResponse ErrorResponse(int status, std::string outcome, std::string reason);

struct RequestLineParts {
  std::string_view method, target, version;
};
// RFC 9112 §3: request-line = method SP request-target SP HTTP-version (HTTP/1.x), each part
// non-empty; nullopt for anything else.
std::optional<RequestLineParts> SplitRequestLine(std::string_view line);

// The refusal of a request whose line is not `method` `path` HTTP/1.x: 400 (not a request line),
// 404 (another resource; "no resource X<when>; only METHOD PATH is served"), 405 with Allow
// (another method); nullopt for the request that is served.
std::optional<HttpResponse> RefuseOtherRequests(std::string_view line, std::string_view method,
                                                std::string_view path, std::string_view when = "");

// The first line of `head` (up to CRLF, or all of it).
std::string_view RequestLine(std::string_view head);

// The answer to the request whose head is `head` (complete: it ends with an empty line) from a
// client whose identity was judged `verdict`: 200 accepted, 403 refused, 503 with Retry-After when
// the cloud could not decide (verdict.unavailable).
HttpResponse Answer(std::string_view head, const IdentityVerdict& verdict);

// The answer to a request head of more than kMaxRequestHeadBytes bytes.
HttpResponse HeadTooLarge();

// True when `first` (the first bytes a client sent to the TLS port) starts like an HTTP request
// line (a method in capitals) rather than a TLS record (content type 0x14-0x17).
bool LooksLikePlainHttp(std::string_view first);

// What an HTTPS server answers to plain HTTP on its port (as nginx does): 400 with a body that
// says so.
HttpResponse PlainHttpOnTlsPort();

// The response's bytes: status line, headers (Content-Length, Connection: close unless
// keep_open) and body.
std::string FormatResponse(const HttpResponse& response);

}  // namespace idevid
