#include "bench/bench_units.h"

#include <fmt/format.h>
#include <openssl/x509_vfy.h>

#include <atomic>

namespace idevid {

std::string NextBenchSerial(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return fmt::format("{}{:06}", prefix, counter++);
}

Error RefusalError(const std::string& serial, const std::string& reason, const std::string& detail) {
  return Error(ErrorDomain::kVerify, X509_V_ERR_APPLICATION_VERIFICATION,
               fmt::format("{} was refused: {}: {}", serial, reason, detail));
}

Result<void> RetireUnit(benchmark::State& state, Ledger& ledger, const std::string& serial) {
  state.PauseTiming();
  auto revoked = ledger.Revoke(serial, RevocationReason::kSuperseded, LedgerClock::now());
  state.ResumeTiming();
  IDEVID_ASSIGN_OR_RETURN(auto answer, std::move(revoked), "retiring {}", serial);
  if (auto* refused = std::get_if<LedgerRefusal>(&answer)) {
    return Fail(RefusalError(serial, refused->reason, refused->detail)
                    .WithContext(fmt::format("retiring {}", serial)));
  }
  return {};
}

}  // namespace idevid
