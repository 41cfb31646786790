#include "cloud/http_exchange.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/display_text.h"

namespace idevid {
namespace {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

}  // namespace

std::string JsonText(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HttpResponse ErrorResponse(int status, std::string outcome, std::string reason) {
  HttpResponse r;
  r.status = status;
  r.body = JsonText({{"error", reason}});
  r.outcome = std::move(outcome);
  r.reason = std::move(reason);
  return r;
}

std::optional<RequestLineParts> SplitRequestLine(std::string_view line) {
  auto first = line.find(' ');
  auto second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos || line.find(' ', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  RequestLineParts parts{line.substr(0, first), line.substr(first + 1, second - first - 1),
                         line.substr(second + 1)};
  if (parts.method.empty() || parts.target.empty() || parts.version.rfind("HTTP/1.", 0) != 0) {
    return std::nullopt;
  }
  return parts;
}

std::string_view RequestLine(std::string_view head) { return head.substr(0, head.find("\r\n")); }

std::optional<HttpResponse> RefuseOtherRequests(std::string_view line, std::string_view method,
                                                std::string_view path, std::string_view when) {
  auto parts = SplitRequestLine(line);
  if (!parts) {
    return ErrorResponse(
        400, "bad-request",
        fmt::format("the request line {} is not METHOD TARGET HTTP/1.x", QuotedDisplayText(line)));
  }
  if (parts->target != path) {
    return ErrorResponse(404, "not-found",
                         fmt::format("no resource {}{}; only {} {} is served",
                                     QuotedDisplayText(parts->target), when, method, path));
  }
  if (parts->method != method) {  // RFC 9110 15.5.6: 405 names the methods allowed
    HttpResponse r = ErrorResponse(405, "method-not-allowed",
                                   fmt::format("method {} is not allowed on {}; only {} is",
                                               QuotedDisplayText(parts->method), path, method));
    r.headers.emplace_back("Allow", std::string(method));
    return r;
  }
  return std::nullopt;
}

HttpResponse Answer(std::string_view head, const IdentityVerdict& verdict) {
  if (auto refused = RefuseOtherRequests(RequestLine(head), "GET", kIdentityPath)) return *std::move(refused);
  HttpResponse r;
  r.status = verdict.accepted ? 200 : 403;
  if (verdict.unavailable) {  // RFC 9110 15.6.4, 10.2.3: the cloud cannot decide now; ask again later
    r.status = 503;
    r.headers.emplace_back("Retry-After", std::to_string(kUnavailableRetrySeconds));
  }
  r.body = JsonText(verdict.ToJson());
  r.outcome = "served";
  r.served = std::string(kIdentityPath);
  r.reason = verdict.reason;
  return r;
}

HttpResponse HeadTooLarge() {
  return ErrorResponse(400, "bad-request",
                       fmt::format("the request head is larger than {} bytes", kMaxRequestHeadBytes));
}

bool LooksLikePlainHttp(std::string_view first) {
  return !first.empty() && first.front() >= 'A' && first.front() <= 'Z';
}

HttpResponse PlainHttpOnTlsPort() {
  HttpResponse r;
  r.status = 400;
  r.content_type = "text/plain";
  r.body = "400 Bad Request: plain HTTP sent to the HTTPS port\n";
  r.outcome = "plain-http";
  r.reason = "plain HTTP sent to the HTTPS port";
  return r;
}

std::string FormatResponse(const HttpResponse& response) {
  std::string text =
      fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n", response.status,
                  ReasonPhrase(response.status), response.content_type, response.body.size());
  for (const auto& [name, value] : response.headers) text += fmt::format("{}: {}\r\n", name, value);
  return text + (response.keep_open ? "\r\n" : "Connection: close\r\n\r\n") + response.body;
}

}  // namespace idevid
