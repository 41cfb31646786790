// Revocation at the factory: a unit's certificate revoked in the ledger, and the factory's CRL
// (RFC 5280) of every revoked unit, signed by the issuing CA with a new CRL number each time and
// written where the cloud reads it (DIR/crl.pem).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "core/ledger.h"
#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/x509_crl.h"
#include "provisioning/factory.h"

namespace idevid {

// The factory's CRL in its directory: DIR/crl.pem.
std::filesystem::path FactoryCrlPath(const std::filesystem::path& factory_dir);

// Opens the factory's ledger: `spec` when given, else the one its factory.json names.
Result<std::unique_ptr<Ledger>> OpenFactoryLedger(const Factory& factory, const std::string& spec = "");

// How long a CRL holds and when it is made (injected for tests).
struct CrlTiming {
  std::chrono::days validity{7};  // nextUpdate = now + validity (RFC 5280 5.1.2.5)
  CrlClock::time_point now = CrlClock::now();
};

// The factory's current CRL: every unit the ledger holds revoked, with the next CRL number of the
// ledger, signed by the issuing CA. kDatabase when the ledger fails, kUsage for a validity of
// less than a day, kOpenSsl when signing fails.
Result<ossl::Crl> MakeFactoryCrl(const Factory& factory, Ledger& ledger, const CrlTiming& timing = {});

// A revocation done: the unit (with the first reason and time when it was revoked before) and the
// CRL written since.
struct RevokeOutcome {
  UnitRow unit;
  bool earlier = false;  // it was revoked before; its first reason and time stand
  std::filesystem::path crl_path;
  CrlContent crl;
};

// Revokes unit `serial` for `reason` in `ledger` and writes the factory's current CRL to
// FactoryCrlPath atomically. A serial the ledger does not know or never issued a certificate to is
// its refusal (nothing is written). kUsage for removeFromCRL (not a reason to revoke), kDatabase,
// kOpenSsl, kIo as MakeFactoryCrl and the write.
Result<LedgerAnswer<RevokeOutcome>> RevokeUnit(const Factory& factory, Ledger& ledger,
                                               const std::string& serial, RevocationReason reason,
                                               const CrlTiming& timing = {});

}  // namespace idevid
