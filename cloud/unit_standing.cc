#include "cloud/unit_standing.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/utc_time.h"
#include "core/x509.h"
#include "core/x509_crl.h"

namespace idevid {
namespace {

std::string RevokedEvidence(RevocationReason reason, LedgerClock::time_point since) {
  return fmt::format("revoked: {} since {}", RevocationReasonName(reason), UtcTimestamp(since));
}

bool HasFinding(const IdentityVerdict& verdict, std::string_view id) {
  const auto& all = verdict.findings.findings();
  return std::any_of(all.begin(), all.end(), [&](const Finding& f) { return f.id == id; });
}

// RFC 5280 6.3.3 (i): a certificate listed in the issuing CA's CRL is revoked.
void JudgeByCrl(const X509& cert, const HeldCrl& held, IdentityVerdict& verdict) {
  // RFC 5280 6.3.3 (a)(2): past its nextUpdate the CRL may miss revocations since; the cloud keeps
  // applying it until a new one comes, and says so.
  if (held.content.next_update < CrlClock::now()) {
    verdict.findings.Add(
        "crl-stale",
        fmt::format("the CRL number {} is stale since {}: revocations after it are not known",
                    held.content.number, UtcTimestamp(held.content.next_update)),
        Severity::kWarning);
  }
  if (auto revoked = FindRevocation(*held.crl, cert)) {
    verdict.Refuse("revoked", RevokedEvidence(revoked->reason, revoked->revoked_at));
  }
}

// Whether the ledger's row names this certificate: its DER when recorded, else its serial.
bool IsTheLedgersCertificate(const UnitRow& row, const X509& cert) {
  if (!row.certificate.empty()) {
    auto der = CertificateDer(cert);
    return der && *der == row.certificate;
  }
  return !row.certificate_serial.empty() &&
         SameCertificateSerial(row.certificate_serial, CertificateSerialHex(cert));
}

void JudgeByLedger(const X509& cert, Ledger& ledger, IdentityVerdict& verdict) {
  if (verdict.serial.empty()) return;  // nothing to look up; the subject's finding says so
  auto row = ledger.FindBySerial(verdict.serial);
  if (!row) {
    verdict.CannotDecide("ledger-unavailable",
                         fmt::format("the ledger {} cannot be asked about serial {}: {}", ledger.location(),
                                     DisplayText(verdict.serial), row.error().message()));
    return;
  }
  if (!row->has_value()) {
    verdict.Refuse("unknown-to-ledger",
                   fmt::format("serial {} is unknown to the ledger", DisplayText(verdict.serial)));
    return;
  }
  const UnitRow& unit = **row;
  if (!IsTheLedgersCertificate(unit, cert)) {
    verdict.Refuse(
        "clone",
        fmt::format("clone: serial {} is held by another identity (certificate serial {}, "
                    "EK sha256 {})",
                    DisplayText(verdict.serial),
                    unit.certificate_serial.empty() ? "none yet" : unit.certificate_serial, unit.ek_sha256));
    return;
  }
  if (unit.revocation && !HasFinding(verdict, "revoked")) {
    verdict.Refuse("revoked", RevokedEvidence(unit.revocation->reason, unit.revocation->since));
  }
}

}  // namespace

void JudgeUnitStanding(const X509& cert, const UnitStandingSources& sources, IdentityVerdict& verdict) {
  if (sources.crl != nullptr) JudgeByCrl(cert, *sources.crl, verdict);
  if (sources.ledger != nullptr) JudgeByLedger(cert, *sources.ledger, verdict);
}

}  // namespace idevid
