#include "cloud/attestation_exchange.h"

#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cloud/tls_io.h"
#include "core/display_text.h"
#include "core/openssl_error.h"

namespace idevid {
namespace {

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The values of every header field `name` of `head` (RFC 9112 §5: name ":" OWS value OWS).
std::vector<std::string_view> HeaderValues(std::string_view head, std::string_view name) {
  std::vector<std::string_view> values;
  std::size_t at = head.find("\r\n");
  while (at != std::string_view::npos && at + 2 < head.size()) {
    std::size_t end = head.find("\r\n", at + 2);
    std::string_view line = head.substr(at + 2, end == std::string_view::npos ? end : end - at - 2);
    std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && EqualsIgnoringCase(line.substr(0, colon), name)) {
      values.push_back(Trim(line.substr(colon + 1)));
    }
    at = end;
  }
  return values;
}

Result<Bytes> SessionExporter(SSL* ssl) {
  Bytes value(kAttestationExporterBytes);
  // RFC 8446 §7.5 / RFC 5705: the device exports the same value with no context.
  if (SSL_export_keying_material(ssl, value.data(), value.size(), kAttestationExporterLabel.data(),
                                 kAttestationExporterLabel.size(), nullptr, 0, 0) != 1) {
    return FailOpenSsl("cannot export the session's attestation value");
  }
  return value;
}

IoBounds Within(std::chrono::milliseconds deadline, std::chrono::milliseconds idle) {
  return {Clock::now() + deadline, idle};
}

// Writes `response` on the session within one wait.
void Send(const AttestationExchange& x, const HttpResponse& response) {
  std::string bytes = FormatResponse(response);
  int written = 0;
  (void)DriveSsl(
      x.ssl, x.fd, [&] { return SSL_write(x.ssl, bytes.data(), static_cast<int>(bytes.size())); },
      Within(x.io_timeout, x.io_timeout), &written);
  ClearOpenSslErrors();
}

// Reads into `data` until `done(data)` holds or past `limit` bytes, within `bounds`.
IoOutcome ReadUntil(const AttestationExchange& x, const IoBounds& bounds, std::string& data,
                    std::size_t limit, const std::function<bool(const std::string&)>& done) {
  std::string buffer(16384, '\0');
  while (!done(data) && data.size() <= limit) {
    int n = 0;
    IoOutcome how = DriveSsl(
        x.ssl, x.fd, [&] { return SSL_read(x.ssl, buffer.data(), static_cast<int>(buffer.size())); }, bounds,
        &n);
    if (how != IoOutcome::kDone) return how;
    data.append(buffer.data(), static_cast<std::size_t>(n));
  }
  return IoOutcome::kDone;
}

// "the client closed the connection" / "stalled" for a read of the evidence that did not end.
std::string Unfinished(IoOutcome how, const AttestationExchange& x) {
  switch (how) {
    case IoOutcome::kClosed: return "the client closed the connection without sending evidence";
    case IoOutcome::kIdle:
      return fmt::format("the client stalled: nothing for {} ms while the cloud waited for evidence",
                         x.io_timeout.count());
    case IoOutcome::kDeadline:
      return fmt::format("the client stalled: no evidence within the request deadline of {} ms",
                         x.request_deadline.count());
    default: return OpenSslError("reading the evidence failed").message();
  }
}

// Ends the exchange without an answer: the record says why.
void EndedWithoutEvidence(IoOutcome how, const AttestationExchange& x, ConnectionRecord& r) {
  r.phase = "attestation";
  r.outcome = how == IoOutcome::kClosed ? "closed" : how == IoOutcome::kFailed ? "failed" : "stalled";
  RecordAttestation(RefusedEvidence(x.service->policy, "evidence-missing", Unfinished(how, x)), r);
  ClearOpenSslErrors();
}

// Answers and records a verdict on the evidence request; a refusal of the request itself gives
// its status and headers (405's Allow).
void Conclude(const AttestationExchange& x, const AttestationVerdict& verdict,
              const IdentityVerdict& identity, ConnectionRecord& r, const HttpResponse* refusal = nullptr) {
  HttpResponse response = AttestationResponse(verdict, identity, refusal ? refusal->status : 0);
  if (refusal) response.headers = refusal->headers;
  r.status = response.status;
  r.outcome = response.outcome;
  r.served = response.served;
  RecordAttestation(verdict, r);
  Send(x, response);
}

// Reads and judges the evidence request; `head` starts with what was read of it.
void JudgeEvidenceRequest(const AttestationExchange& x, const AttestationContext& context,
                          const IdentityVerdict& identity, ConnectionRecord& r) {
  IoBounds bounds = Within(x.request_deadline, x.io_timeout);
  std::string data;
  auto head_done = [](const std::string& d) { return d.find("\r\n\r\n") != std::string::npos; };
  if (IoOutcome how = ReadUntil(x, bounds, data, kMaxRequestHeadBytes, head_done); how != IoOutcome::kDone) {
    return EndedWithoutEvidence(how, x, r);
  }
  r.request = DisplayText(RequestLine(data));
  std::size_t head_end = data.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    HttpResponse too_large = HeadTooLarge();
    return Conclude(x, RefusedEvidence(*context.policy, "evidence-request", too_large.reason), identity, r,
                    &too_large);
  }
  auto length = EvidenceBodyLength(std::string_view(data).substr(0, head_end + 4));
  if (auto* refusal = std::get_if<HttpResponse>(&length)) {
    std::string id = refusal->status == 413 ? "evidence-too-large" : "evidence-request";
    return Conclude(x, RefusedEvidence(*context.policy, id, refusal->reason), identity, r, refusal);
  }
  std::size_t total = head_end + 4 + std::get<std::size_t>(length);
  auto body_done = [total](const std::string& d) { return d.size() >= total; };
  if (IoOutcome how = ReadUntil(x, bounds, data, total, body_done); how != IoOutcome::kDone) {
    return EndedWithoutEvidence(how, x, r);
  }
  AttestationVerdict verdict =
      JudgeEvidence(std::string_view(data).substr(head_end + 4, total - head_end - 4), context);
  bool malformed = !verdict.attested && verdict.findings.first_failure() != nullptr &&
                   verdict.findings.first_failure()->id == "evidence-malformed";
  HttpResponse bad_request;
  bad_request.status = 400;
  Conclude(x, verdict, identity, r, malformed ? &bad_request : nullptr);
}

}  // namespace

Result<AttestationChallenge> NewChallenge(const AttestPolicy& policy) {
  AttestationChallenge challenge{Bytes(kAttestationNonceBytes), policy.pcrs};
  if (RAND_bytes(challenge.nonce.data(), static_cast<int>(challenge.nonce.size())) != 1) {
    return FailOpenSsl("cannot draw an attestation nonce");
  }
  return challenge;
}

HttpResponse ChallengeResponse(const AttestationChallenge& challenge, bool close) {
  HttpResponse r;
  r.status = 401;  // RFC 9110 §15.5.2: with a WWW-Authenticate challenge
  r.headers.emplace_back("WWW-Authenticate",
                         fmt::format("IDevID-Attestation version=\"{}\"", kAttestationVersion));
  r.body = ChallengeJson(challenge);
  r.outcome = "challenged";
  r.served = std::string(kIdentityPath);
  r.reason = fmt::format("attestation challenge for {}", challenge.pcrs.ToString());
  r.keep_open = !close;
  return r;
}

bool AsksToClose(std::string_view head) {
  for (std::string_view value : HeaderValues(head, "Connection")) {
    // RFC 9110 §7.6.1: a comma-separated list of connection options.
    for (std::size_t start = 0; start <= value.size();) {
      std::size_t comma = std::min(value.find(',', start), value.size());
      if (EqualsIgnoringCase(Trim(value.substr(start, comma - start)), "close")) return true;
      start = comma + 1;
    }
  }
  return false;
}

std::variant<std::size_t, HttpResponse> EvidenceBodyLength(std::string_view head) {
  if (auto refused = RefuseOtherRequests(RequestLine(head), "POST", kAttestationPath, " after a challenge")) {
    return *std::move(refused);
  }
  auto values = HeaderValues(head, "Content-Length");
  if (values.empty()) {  // RFC 9110 §15.5.12
    return ErrorResponse(411, "length-required", "the evidence request has no Content-Length");
  }
  // RFC 9112 §6.3 (5): an invalid Content-Length, or several that differ, cannot be recovered from.
  std::string_view value = values.front();
  std::size_t length = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
  bool one_number = !value.empty() && end == value.data() + value.size() &&
                    std::all_of(values.begin(), values.end(), [&](std::string_view v) { return v == value; });
  if (!one_number || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    return ErrorResponse(
        400, "bad-request",
        fmt::format("the evidence request's Content-Length {} is not one number", QuotedDisplayText(value)));
  }
  if (ec == std::errc::result_out_of_range) length = kMaxEvidenceBytes + 1;
  if (length > kMaxEvidenceBytes) {  // RFC 9110 §15.5.14
    return ErrorResponse(413, "too-large",
                         fmt::format("the evidence of {} is larger than {} bytes",
                                     QuotedDisplayText(values.front()), kMaxEvidenceBytes));
  }
  return length;
}

HttpResponse AttestationResponse(const AttestationVerdict& verdict, const IdentityVerdict& identity,
                                 int status) {
  HttpResponse r;
  r.status = status != 0 ? status : verdict.attested ? 200 : 403;
  nlohmann::json body = verdict.ToJson();
  body["serial"] = identity.serial;
  body["model"] = identity.model;
  r.body = JsonText(body);
  r.outcome = verdict.attested ? "attested" : "refused";
  r.served = std::string(kAttestationPath);
  r.reason = verdict.reason;
  return r;
}

AttestationVerdict RefusedEvidence(const AttestPolicy& policy, std::string id, std::string evidence) {
  AttestationVerdict v;
  v.policy = policy.name;
  v.reason = fmt::format("{}: {}", id, evidence);
  v.findings.Add(std::move(id), std::move(evidence));
  return v;
}

AttestationVerdict JudgeEvidence(std::string_view body, const AttestationContext& context) {
  auto evidence = ParseEvidence(body);
  if (!evidence) return RefusedEvidence(*context.policy, "evidence-malformed", evidence.error().message());
  return VerifyAttestation(*evidence, context);
}

void RecordAttestation(const AttestationVerdict& verdict, ConnectionRecord& record) {
  record.attestation = verdict.attested ? "attested" : "refused";
  record.attestation_policy = verdict.policy;
  record.attestation_findings = FindingsJson(verdict.findings);
  record.reason = verdict.reason;
}

void ServeAttestation(const AttestationExchange& x, std::string_view identity_head,
                      const IdentityVerdict& identity, ConnectionRecord& r) {
  AttestationService& service = *x.service;
  auto challenge = NewChallenge(service.policy);
  auto exporter = SessionExporter(x.ssl);
  if (!challenge || !exporter) {
    Error error = challenge ? exporter.error() : challenge.error();
    HttpResponse failed = ErrorResponse(500, "failed", error.message());
    r.status = failed.status;
    r.outcome = failed.outcome;
    r.reason = failed.reason;
    return Send(x, failed);
  }
  bool close = AsksToClose(identity_head);
  HttpResponse asked = ChallengeResponse(*challenge, close);
  r.status = asked.status;
  r.outcome = asked.outcome;
  r.served = asked.served;
  Send(x, asked);
  if (close) {
    return RecordAttestation(RefusedEvidence(service.policy, "evidence-missing",
                                             "the client asked to close the connection after its request"),
                             r);
  }
  AttestationContext context{identity.serial, challenge->nonce, *exporter,
                             x.factory_ca,    &service.policy,  &service.counters};
  JudgeEvidenceRequest(x, context, identity, r);
}

}  // namespace idevid
