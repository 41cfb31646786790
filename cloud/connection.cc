#include "cloud/connection.h"

#include <openssl/x509.h>
#include <sys/socket.h>

#include <string_view>

#include <fmt/format.h>

#include "cloud/http_exchange.h"
#include "cloud/identity_verdict.h"
#include "cloud/tls_io.h"
#include "cloud/unit_standing.h"
#include "core/display_text.h"
#include "core/openssl_error.h"

namespace idevid {
namespace {

using ossl::Ssl;

IoBounds Within(std::chrono::milliseconds deadline, std::chrono::milliseconds idle) {
  return {Clock::now() + deadline, idle};
}

// Records a connection that ended in `phase` without completing it.
void Unfinished(ConnectionRecord& r, std::string_view phase, IoOutcome how, const ConnectionSettings& s) {
  r.phase = std::string(phase);
  auto deadline = phase == "handshake" ? s.handshake_deadline : s.request_deadline;
  if (how == IoOutcome::kIdle || how == IoOutcome::kDeadline) {
    r.outcome = "stalled";
    r.reason =
        how == IoOutcome::kIdle
            ? fmt::format("the client stalled: nothing for {} ms during the {}", s.io_timeout.count(), phase)
            : fmt::format("the client stalled: the {} took longer than its deadline of {} ms", phase,
                          deadline.count());
    return;
  }
  r.outcome = how == IoOutcome::kClosed ? "closed" : "failed";
  r.reason = how == IoOutcome::kClosed ? fmt::format("the client closed the connection during the {}", phase)
                                       : OpenSslError(fmt::format("the {} failed", phase)).message();
  ClearOpenSslErrors();
}

// Plain HTTP on the TLS port gets the 400 an HTTPS server gives. True when it was that.
bool RefusePlainHttp(int fd, ConnectionRecord& r) {
  char first = 0;
  if (::recv(fd, &first, 1, MSG_PEEK) != 1 || !LooksLikePlainHttp({&first, 1})) return false;
  std::string data(kMaxRequestHeadBytes, '\0');
  ssize_t n = ::recv(fd, data.data(), data.size(), 0);
  data.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  HttpResponse response = PlainHttpOnTlsPort();
  std::string bytes = FormatResponse(response);
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  r.outcome = response.outcome;
  r.phase = "handshake";
  r.status = response.status;
  r.reason = response.reason;
  r.request = DisplayText(RequestLine(data));
  return true;
}

// Records a handshake the cloud refused (with an alert): the client's certificate did not verify
// (RFC 8446 4.4.2.4) or the TLS it offered is not acceptable.
void HandshakeRefused(SSL* ssl, ConnectionRecord& r) {
  long verify = SSL_get_verify_result(ssl);
  r.outcome = "handshake-failed";
  r.phase = "handshake";
  r.verdict = "rejected";
  r.reason = verify != X509_V_OK ? fmt::format("handshake refused: {}", X509_verify_cert_error_string(verify))
                                 : OpenSslError("handshake failed").message();
  ClearOpenSslErrors();
}

// The TLS handshake within its deadline. False (with the record saying why) when it failed.
bool Handshake(SSL* ssl, int fd, const ConnectionSettings& s, ConnectionRecord& r) {
  IoBounds bounds = Within(s.handshake_deadline, s.io_timeout);
  if (IoOutcome first = WaitReadable(fd, bounds); first != IoOutcome::kDone) {
    Unfinished(r, "handshake", first, s);
    return false;
  }
  if (char first = 0; ::recv(fd, &first, 1, MSG_PEEK) <= 0) {  // a connection opened and closed
    Unfinished(r, "handshake", IoOutcome::kClosed, s);
    return false;
  }
  if (RefusePlainHttp(fd, r)) return false;
  int done = 0;
  IoOutcome how = DriveSsl(
      ssl, fd, [ssl] { return SSL_accept(ssl); }, bounds, &done);
  if (how == IoOutcome::kDone) return true;
  if (how == IoOutcome::kFailed || SSL_get_verify_result(ssl) != X509_V_OK) {
    HandshakeRefused(ssl, r);
  } else {
    Unfinished(r, "handshake", how, s);
  }
  return false;
}

// Reads the request head (up to the empty line, or past kMaxRequestHeadBytes) within the
// request deadline.
IoOutcome ReadHead(SSL* ssl, int fd, const ConnectionSettings& s, std::string& head) {
  IoBounds bounds = Within(s.request_deadline, s.io_timeout);
  char buffer[1024];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() <= kMaxRequestHeadBytes) {
    int n = 0;
    IoOutcome how = DriveSsl(
        ssl, fd, [&] { return SSL_read(ssl, buffer, sizeof buffer); }, bounds, &n);
    if (how != IoOutcome::kDone) return how;
    head.append(buffer, static_cast<std::size_t>(n));
  }
  return IoOutcome::kDone;
}

// Judges the client certificate of the session: the one of this handshake, or on resumption
// the one the full handshake verified, against the inventory, the CRL and the ledger as they are
// now.
IdentityVerdict JudgeSession(SSL* ssl, const ConnectionSettings& s, ConnectionRecord& r) {
  r.resumed = SSL_session_reused(ssl) == 1;
  r.protocol = SSL_get_version(ssl);
  r.cipher = SSL_get_cipher_name(ssl);
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) {
    return IdentityVerdict::Refused("client-certificate-missing",
                                    "the session carries no client certificate");
  }
  r.DescribeCertificate(*cert);
  // RFC 5280 6.1.3 (a)(2): the full handshake checked the validity period when it began; a session
  // resumed later must still be within it.
  if (r.resumed && X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    return IdentityVerdict::Refused("resumed-certificate-expired",
                                    "the certificate of the resumed session has expired");
  }
  IdentityVerdict verdict = JudgeDeviceCertificate(*cert, *s.inventory);
  std::shared_ptr<const HeldCrl> crl;
  if (s.crl != nullptr) {
    s.crl->RefreshIfChanged();
    crl = s.crl->Current();
  }
  JudgeUnitStanding(*cert, {crl.get(), s.ledger}, verdict);
  return verdict;
}

void ServeRequest(SSL* ssl, int fd, const ConnectionSettings& s, ConnectionRecord& r) {
  IdentityVerdict verdict = JudgeSession(ssl, s, r);
  std::string head;
  IoOutcome how = ReadHead(ssl, fd, s, head);
  if (!head.empty()) r.request = DisplayText(RequestLine(head));
  if (how != IoOutcome::kDone) return Unfinished(r, "request", how, s);
  HttpResponse response = head.find("\r\n\r\n") == std::string::npos ? HeadTooLarge() : Answer(head, verdict);
  if (response.served && verdict.accepted && s.attestation != nullptr) {
    r.verdict = "accepted";
    r.findings = FindingsJson(verdict.findings);
    AttestationExchange exchange{
        ssl, fd, s.io_timeout, s.request_deadline, SSL_CTX_get_cert_store(s.ctx), s.attestation};
    return ServeAttestation(exchange, head, verdict, r);
  }
  r.outcome = response.outcome;
  r.status = response.status;
  r.served = response.served;
  r.reason = response.reason;
  if (response.served) {
    r.verdict = std::string(verdict.Name());
    r.findings = FindingsJson(verdict.findings);
  }
  std::string bytes = FormatResponse(response);
  int written = 0;
  (void)DriveSsl(
      ssl, fd, [&] { return SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size())); },
      Within(s.io_timeout, s.io_timeout), &written);
  ClearOpenSslErrors();
}

}  // namespace

void ServeConnection(UniqueFd socket, std::string peer, const ConnectionSettings& settings,
                     ConnectionLog& log) {
  int fd = socket.get();
  ConnectionRecord record;
  record.peer = std::move(peer);
  Ssl ssl(SSL_new(settings.ctx));
  bool secured = false;
  if (!ssl || !SetNonBlocking(fd) || SSL_set_fd(ssl.get(), fd) != 1) {
    record.outcome = "failed";
    record.reason = OpenSslError("cannot set up the connection").message();
    ClearOpenSslErrors();
  } else if ((secured = Handshake(ssl.get(), fd, settings, record))) {
    ServeRequest(ssl.get(), fd, settings, record);
  }
  log.Write(record);  // before the close, which a client may wait for
  if (secured) (void)SSL_shutdown(ssl.get());
  ClearOpenSslErrors();
  LingeringClose(std::move(socket));
}

}  // namespace idevid
