#include "provisioning/revocation.h"

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/file_io.h"
#include "core/x509.h"

namespace idevid {
namespace {

// A row's certificate serial: as the ledger records it, else read from its certificate.
Result<std::string> RowCertificateSerial(const UnitRow& row) {
  if (!row.certificate_serial.empty()) return row.certificate_serial;
  IDEVID_ASSIGN_OR_RETURN(auto cert, ParseCertificate(row.certificate), "the ledger's certificate of unit {}",
                          QuotedDisplayText(row.serial));
  return CertificateSerialHex(*cert);
}

}  // namespace

std::filesystem::path FactoryCrlPath(const std::filesystem::path& factory_dir) {
  return factory_dir / "crl.pem";
}

Result<std::unique_ptr<Ledger>> OpenFactoryLedger(const Factory& factory, const std::string& spec) {
  return OpenLedger(spec.empty() ? factory.ledger : spec);
}

Result<ossl::Crl> MakeFactoryCrl(const Factory& factory, Ledger& ledger, const CrlTiming& timing) {
  if (timing.validity < std::chrono::days(1)) {
    return UsageError(UsageCode::kInvalidArgument, "a CRL must hold for at least one day (its nextUpdate)");
  }
  IDEVID_ASSIGN_OR_RETURN(auto revoked, ledger.Revoked(), "reading the revoked units of {}",
                          ledger.location());
  CrlContent content{.this_update = timing.now, .next_update = timing.now + timing.validity};
  for (const UnitRow& row : revoked) {
    if (!row.revocation) continue;
    IDEVID_ASSIGN_OR_RETURN(std::string serial, RowCertificateSerial(row));
    content.entries.push_back({serial, row.revocation->reason, row.revocation->since});
  }
  IDEVID_ASSIGN_OR_RETURN(content.number, ledger.NextCrlNumber(), "taking a CRL number from {}",
                          ledger.location());
  return BuildCrl(content, *factory.issuing, *factory.issuing_key);
}

Result<LedgerAnswer<RevokeOutcome>> RevokeUnit(const Factory& factory, Ledger& ledger,
                                               const std::string& serial, RevocationReason reason,
                                               const CrlTiming& timing) {
  if (reason == RevocationReason::kRemoveFromCrl) {
    return UsageError(UsageCode::kInvalidArgument,
                      "removeFromCRL takes an entry out of a delta CRL (RFC 5280 5.3.1); it is not a "
                      "reason to revoke");
  }
  IDEVID_ASSIGN_OR_RETURN(auto before, ledger.FindBySerial(serial), "looking up {} in {}",
                          QuotedDisplayText(serial), ledger.location());
  IDEVID_ASSIGN_OR_RETURN(auto answer, ledger.Revoke(serial, reason, timing.now), "revoking {} in {}",
                          QuotedDisplayText(serial), ledger.location());
  if (auto* refusal = std::get_if<LedgerRefusal>(&answer)) return *refusal;
  RevokeOutcome outcome;
  outcome.unit = std::move(std::get<UnitRow>(answer));
  outcome.earlier = before.has_value() && before->revocation.has_value();
  IDEVID_ASSIGN_OR_RETURN(auto crl, MakeFactoryCrl(factory, ledger, timing));
  IDEVID_ASSIGN_OR_RETURN(std::string pem, CrlPem(*crl));
  outcome.crl_path = FactoryCrlPath(factory.dir);
  IDEVID_TRY(WriteFileAtomic(outcome.crl_path, pem), "writing the factory's CRL");
  IDEVID_ASSIGN_OR_RETURN(outcome.crl, ReadCrl(*crl));
  return outcome;
}

}  // namespace idevid
