// TCG enrolment on disposable swtpm stations (never on the target): one unit enrolled in-process,
// ECC and RSA, beside the local provisioning of provisioning_benchmark.cc; and units per minute
// through one enrolment service (`idevid factory serve` in this process, over HTTPS) with N
// stations at once, one benchmark thread each.
#include <mutex>

#include <fmt/format.h>

#include "bench/bench_registry.h"
#include "bench/bench_units.h"
#include "core/ledger.h"
#include "core/work_dir.h"
#include "provisioning/enrolment_authority.h"
#include "provisioning/enrolment_station.h"
#include "provisioning/factory_client.h"
#include "provisioning/factory_service.h"
#include "provisioning/service_certificate.h"

namespace idevid {
namespace {

Result<std::unique_ptr<EnrolmentAuthority>> AuthorityFor(BenchContext& context,
                                                         std::vector<std::filesystem::path> vendor_cas) {
  IDEVID_ASSIGN_OR_RETURN(Factory factory, LoadFactory(context.unit().issuer().dir));
  return EnrolmentAuthority::Create(std::move(factory), {.tpm_vendor_cas = std::move(vendor_cas)});
}

Result<void> Enrol(benchmark::State& state, Station& station, EnrolmentChannel& authority, Ledger& ledger,
                   KeyAlgorithm alg) {
  // The stations enrol unit after unit on one TPM: each unit is retired once enrolled.
  std::string serial = NextBenchSerial("BENCH-E");
  IDEVID_ASSIGN_OR_RETURN(EnrolResult result,
                          EnrolUnit(station.tpm, authority,
                                    {.serial = serial, .model = "SRX4300", .algorithm = alg, .force = true}),
                          "enrolling {}", serial);
  if (result.refusal) return Fail(RefusalError(serial, result.refusal->reason, result.refusal->detail));
  return RetireUnit(state, ledger, serial);
}

// The factory's ledger, one connection per benchmark thread.
Result<std::unique_ptr<Ledger>> FactoryLedger(BenchContext& context) {
  IDEVID_ASSIGN_OR_RETURN(std::string spec, FactoryLedgerSpec(context.unit().issuer().dir));
  return OpenLedger(spec);
}

void EnrolOne(benchmark::State& state, BenchContext& context, KeyAlgorithm alg) {
  auto station = context.StartStations(1).and_then([&] { return context.StationAt(0); });
  std::unique_ptr<EnrolmentAuthority> authority;
  auto ledger = FactoryLedger(context);
  if (Usable(state, station) && Usable(state, ledger)) {
    auto made = AuthorityFor(context, {(*station)->swtpm.vendor_ca()});
    if (Usable(state, made)) authority = std::move(*made);
  }
  for (auto _ : state) {
    if (!Continue(state, Enrol(state, **station, *authority, **ledger, alg))) break;
  }
  CountRate(state);
}

// One enrolment service for the stations of a run, trusting each station's TPM vendor (every
// manufactured swtpm has a CA of its own). Made by the first thread to ask, again when a run
// has more stations than the service trusts.
class ServiceHolder {
 public:
  Result<std::string> UrlFor(BenchContext& context, int stations) {
    std::lock_guard lock(mutex_);
    if (service_ && trusted_ >= stations) return url_;
    service_.reset();
    std::vector<std::filesystem::path> vendor_cas;
    for (int i = 0; i < stations; ++i) {
      IDEVID_ASSIGN_OR_RETURN(Station * station, context.StationAt(i));
      vendor_cas.push_back(station->swtpm.vendor_ca());
    }
    IDEVID_ASSIGN_OR_RETURN(authority_, AuthorityFor(context, std::move(vendor_cas)));
    IDEVID_ASSIGN_OR_RETURN(ServiceIdentity identity,
                            IssueServiceCertificate(authority_->factory(), "127.0.0.1"));
    auto dir = context.unit().dir() / "enrolment-service";
    IDEVID_TRY(WriteServiceIdentity(identity, dir));
    IDEVID_ASSIGN_OR_RETURN(service_, FactoryService::Start({.certificate = ServiceFiles::Certificate(dir),
                                                             .private_key = ServiceFiles::Key(dir)},
                                                            *authority_));
    trusted_ = stations;
    url_ = fmt::format("https://127.0.0.1:{}", service_->port());
    return url_;
  }

 private:
  std::mutex mutex_;
  std::unique_ptr<EnrolmentAuthority> authority_;
  std::unique_ptr<FactoryService> service_;  // stopped before its authority goes
  int trusted_ = 0;
  std::string url_;
};

ServiceHolder& Service() {
  static ServiceHolder holder;
  return holder;
}

// One thread per station, each with its own HTTPS client to the one service.
void UnitsThroughService(benchmark::State& state, BenchContext& context) {
  int index = state.thread_index();
  if (index == 0) (void)context.StartStations(state.threads());  // a failure reaches every StationAt
  auto station = context.StationAt(index);
  std::unique_ptr<HttpsEnrolmentChannel> channel;
  auto ledger = FactoryLedger(context);
  if (Usable(state, station) && Usable(state, ledger)) {
    auto url = Service().UrlFor(context, state.threads());
    auto made = url.and_then([&](const std::string& u) {
      return HttpsEnrolmentChannel::Connect(
          {.url = u, .trust = FactoryFiles::Chain(context.unit().issuer().dir)});
    });
    if (Usable(state, made)) channel = std::move(*made);
  }
  for (auto _ : state) {
    if (!Continue(state, Enrol(state, **station, *channel, **ledger, KeyAlgorithm::kEccP256))) break;
  }
  CountRate(state);
}

}  // namespace

void RegisterEnrolmentBenchmarks(BenchContext& context) {
  for (KeyAlgorithm alg : {KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048}) {
    AddBenchmark(context, fmt::format("enrol/{}", KeyAlgorithmName(alg)), "units",
                 [&context, alg](benchmark::State& s) { EnrolOne(s, context, alg); });
  }
  std::vector<int> instances = context.options().quick ? std::vector<int>{1, 2} : std::vector<int>{1, 2, 4};
  for (int n : instances) {
    AddBenchmark(context, fmt::format("enrol_service/n{}", n), "units", [&context](benchmark::State& s) {
      UnitsThroughService(s, context);
    })->Threads(n);
  }
}

}  // namespace idevid
