// What the cloud checks about a unit beyond its certificate's profile: whether the factory revoked
// it (its CRL, or the ledger) and whether the ledger gave this very certificate to the unit's
// serial (a second identity with the same serial is a clone).
#pragma once

#include "cloud/crl_watch.h"
#include "cloud/identity_verdict.h"
#include "core/ledger.h"
#include "core/openssl_ptr.h"

namespace idevid {

// Where the standing of units is read; each may be absent (null). Neither is owned.
struct UnitStandingSources {
  const HeldCrl* crl = nullptr;
  Ledger* ledger = nullptr;  // thread-safe; one indexed query per judgement
};

// Adds to `verdict` (judged from `cert`, its subject serial in verdict.serial) the findings:
//   "revoked"            "revoked: keyCompromise since 2026-11-28T12:00:01Z" (CRL or ledger),
//   "clone"              "clone: serial CW1 is held by another identity (certificate serial ...,
//                         EK sha256 ...)": the ledger's certificate for the serial is another,
//   "unknown-to-ledger"  the ledger has no unit of this serial,
//   "ledger-unavailable" the ledger could not be asked: the verdict is unavailable (answered 503,
//                        the unit neither waved through nor judged refused),
// and the warning "crl-stale" when the CRL held is past its nextUpdate (its entries still apply).
// Never fails.
void JudgeUnitStanding(const X509& cert, const UnitStandingSources& sources, IdentityVerdict& verdict);

}  // namespace idevid
