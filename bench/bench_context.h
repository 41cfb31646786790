// What the benchmarks of `idevid bench` share: the unit under test (the embedded swtpm behind
// its tpm2-abrmd, or a --target TPM with its identity), its cloud, one SSL-I client per
// benchmark thread, and disposable swtpm stations for the provisioning benchmarks, so that a
// target's identity is never replaced. Benchmark threads ask for their resources concurrently.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bench/tpm2_openssl_client.h"
#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/signer_provider.h"
#include "core/tpm_context.h"
#include "core/tpm_key_signer.h"
#include "core/tpm_keys.h"
#include "device/ssli/ssli_client.h"
#include "engine/postgres_instance.h"
#include "engine/softhsm_token.h"
#include "engine/swtpm_instance.h"
#include "engine/tested_unit.h"
#include "provisioning/factory.h"

namespace idevid {

struct BenchOptions {
  std::filesystem::path work_dir;    // created; removed by the caller
  std::string tcti;                  // empty: the embedded swtpm
  std::filesystem::path factory_ca;  // the target's factory CA (with a tcti)
  double min_time_seconds = 0.5;     // per benchmark
  bool quick = false;                // fewer clients and stations: the perf test's short run
  bool include_run = true;           // time a whole `idevid run`
};

enum class ClientMode { kOurs, kTpm2Openssl, kFile };
const char* ClientModeName(ClientMode mode);  // "ours", "tpm2-openssl", "file"

// A swtpm with an EK certificate and its own connection, for provisioning units on.
struct Station {
  SwtpmInstance swtpm;
  TpmContext tpm;
};

// A key signed with by raw TPM2_Sign through core/: the idev-id key when it has this algorithm,
// else a transient primary from the same TCG template. Its own TPM connection.
struct RawSignKey {
  TpmContext tpm;
  std::optional<EsysReference> persistent;
  std::optional<PrimaryKey> primary;
  ESYS_TR handle() const { return persistent ? persistent->handle() : primary->object.handle(); }
};

// The idev-id key as TLS uses it: an EVP_PKEY of our provider whose signatures are TPM2_Sign.
struct ProviderSignKey {
  SignerProviderLibrary library;
  ossl::PKey key;  // freed before the library
};

class BenchContext {
 public:
  static Result<std::unique_ptr<BenchContext>> Prepare(const BenchOptions& options);

  const BenchOptions& options() const { return options_; }
  TestedUnit& unit() { return *unit_; }
  KeyAlgorithm identity_algorithm() const { return identity_algorithm_; }
  const TrustBundle& factory_bundle() const { return *bundle_; }

  // The session of benchmark thread `index` (created on first use, then kept). `tls_version`:
  // 13 or 12. Sessions are kept for one mode and version at a time (all threads of a benchmark
  // ask for the same): asking for another closes the others first, so that the TPM connections
  // stay within tpm2-abrmd's limit.
  Result<SsliClient*> OurClient(ClientMode mode, int tls_version, int index);
  Result<Tpm2OpensslClient*> Tpm2Client(int tls_version, int index);
  Result<RawSignKey*> RawKey(KeyAlgorithm alg);
  Result<ProviderSignKey*> ProviderKey();
  // Starts stations 0..count-1 that are not running yet. Call it from benchmark thread 0, which
  // Google Benchmark runs on the main thread: a child process dies with the thread that started it
  // (PR_SET_PDEATHSIG), and the other benchmark threads end with each run.
  Result<void> StartStations(int count);
  // Station `index`, waiting (at most two minutes) for thread 0 to have started it.
  Result<Station*> StationAt(int index);
  // Starts the private PostgreSQL cluster of the line benchmarks (fsync on, as a line runs it) with
  // a database for their ledger, unless it runs: from benchmark thread 0, as StartStations.
  Result<void> StartPostgres();
  // The ledger spec of that database, waiting (at most two minutes) for thread 0 to have started it.
  Result<std::string> PostgresLedger();
  // A factory like the unit's issuer whose issuing CA's key is in a SoftHSM2 token (made on first
  // use; the token is this process's).
  Result<const Factory*> TokenFactory();

 private:
  BenchContext() = default;
  BenchOptions options_;
  std::unique_ptr<TestedUnit> unit_;
  KeyAlgorithm identity_algorithm_ = KeyAlgorithm::kEccP256;
  std::optional<TrustBundle> bundle_;
  ossl::Cert idevid_certificate_;  // the unit's, for the tpm2-openssl clients
  std::mutex mutex_;
  std::map<int, std::unique_ptr<SsliClient>> ours_;  // by thread
  std::map<int, std::unique_ptr<Tpm2OpensslClient>> tpm2_;
  std::string sessions_for_;                               // "mode/version" of the sessions kept
  void KeepSessionsFor(ClientMode mode, int tls_version);  // with mutex_ held
  std::map<int, std::unique_ptr<Station>> stations_;
  std::optional<Error> station_error_;  // why the last StartStations failed
  std::condition_variable started_;     // a station or the cluster started, or failed to
  std::map<KeyAlgorithm, std::unique_ptr<RawSignKey>> raw_keys_;
  std::unique_ptr<ProviderSignKey> provider_key_;
  std::optional<PostgresInstance> postgres_;
  std::string postgres_ledger_;
  std::optional<Error> postgres_error_;  // why the last StartPostgres failed
  std::optional<SoftHsmToken> token_;
  std::optional<Factory> token_factory_;  // signs in token_
};

}  // namespace idevid
