#include "bench/bench_context.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include "core/display_text.h"
#include "core/file_io.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "engine/process.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

// The SSL-I profiles of the unit's device configuration, by mode and TLS version.
std::string ProfileFor(ClientMode mode, int tls_version) {
  std::string base = mode == ClientMode::kFile ? "aamw-file" : "aamw-tpm";
  return tls_version == 12 ? base + "12" : base;
}

Result<KeyAlgorithm> IdentityAlgorithm(const std::string& tcti) {
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(tcti));
  IDEVID_ASSIGN_OR_RETURN(auto pub, ReadPersistentPublic(tpm, kDefaultIdevidKeyHandle),
                          "the target has no idev-id key at {:#010x}", kDefaultIdevidKeyHandle);
  return pub.publicArea.type == TPM2_ALG_RSA ? KeyAlgorithm::kRsa2048 : KeyAlgorithm::kEccP256;
}

}  // namespace

const char* ClientModeName(ClientMode mode) {
  switch (mode) {
    case ClientMode::kOurs: return "ours";
    case ClientMode::kTpm2Openssl: return "tpm2-openssl";
    case ClientMode::kFile: return "file";
  }
  return "?";
}

Result<std::unique_ptr<BenchContext>> BenchContext::Prepare(const BenchOptions& options) {
  std::unique_ptr<BenchContext> context(new BenchContext());
  context->options_ = options;
  IDEVID_ASSIGN_OR_RETURN(context->unit_,
                          TestedUnit::Prepare({.work_dir = options.work_dir / "unit",
                                               .tcti = options.tcti,
                                               .provision = options.tcti.empty(),
                                               .factory_ca = options.factory_ca}),
                          "preparing the unit under test");
  const std::string& tcti = context->unit_->tcti();
  ::setenv("TPM2OPENSSL_TCTI", tcti.c_str(), 1);  // the comparator's TPM
  IDEVID_ASSIGN_OR_RETURN(context->identity_algorithm_, IdentityAlgorithm(tcti), "reading the identity on {}",
                          QuotedDisplayText(tcti));
  IDEVID_ASSIGN_OR_RETURN(context->idevid_certificate_,
                          LoadCertificateFile(context->unit_->dir() / "idevid.pem"));
  IDEVID_ASSIGN_OR_RETURN(context->bundle_,
                          LoadTrustBundle(FactoryFiles::Chain(context->unit_->issuer().dir)));
  return context;
}

void BenchContext::KeepSessionsFor(ClientMode mode, int tls_version) {
  auto wanted = fmt::format("{}/{}", ClientModeName(mode), tls_version);
  if (wanted == sessions_for_) return;
  ours_.clear();
  tpm2_.clear();
  sessions_for_ = wanted;
}

Result<SsliClient*> BenchContext::OurClient(ClientMode mode, int tls_version, int index) {
  std::lock_guard lock(mutex_);
  KeepSessionsFor(mode, tls_version);
  auto& slot = ours_[index];
  if (!slot) {
    IDEVID_ASSIGN_OR_RETURN(slot,
                            SsliClient::Create({&unit_->config(), ProfileFor(mode, tls_version), std::nullopt,
                                                unit_->tcti(), "127.0.0.1", unit_->cloud().port()}),
                            "the {} client of thread {} (profile {})", ClientModeName(mode), index,
                            ProfileFor(mode, tls_version));
  }
  return slot.get();
}

Result<Tpm2OpensslClient*> BenchContext::Tpm2Client(int tls_version, int index) {
  std::lock_guard lock(mutex_);
  KeepSessionsFor(ClientMode::kTpm2Openssl, tls_version);
  auto& slot = tpm2_[index];
  if (!slot) {
    IDEVID_ASSIGN_OR_RETURN(slot,
                            Tpm2OpensslClient::Create(
                                idevid_certificate_.get(), FactoryFiles::Chain(unit_->issuer().dir).string(),
                                tls_version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION, unit_->cloud().port()),
                            "the tpm2-openssl client of thread {}", index);
  }
  return slot.get();
}

Result<RawSignKey*> BenchContext::RawKey(KeyAlgorithm alg) {
  std::lock_guard lock(mutex_);
  auto& slot = raw_keys_[alg];
  if (slot) return slot.get();
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(unit_->tcti()));
  auto key = std::make_unique<RawSignKey>(RawSignKey{std::move(tpm), std::nullopt, std::nullopt});
  if (alg == identity_algorithm_) {
    IDEVID_ASSIGN_OR_RETURN(key->persistent, ReferenceTpmHandle(key->tpm, kDefaultIdevidKeyHandle),
                            "the idev-id key at {:#010x}", kDefaultIdevidKeyHandle);
  } else {
    IDEVID_ASSIGN_OR_RETURN(key->primary,
                            CreatePrimary(key->tpm, ESYS_TR_RH_ENDORSEMENT, IdevidKeyTemplate(alg)),
                            "creating a {} key to sign with", KeyAlgorithmName(alg));
  }
  slot = std::move(key);
  return slot.get();
}

Result<ProviderSignKey*> BenchContext::ProviderKey() {
  std::lock_guard lock(mutex_);
  if (provider_key_) return provider_key_.get();
  IDEVID_ASSIGN_OR_RETURN(SignerProviderLibrary library, SignerProviderLibrary::Create());
  IDEVID_ASSIGN_OR_RETURN(auto signer, TpmKeySigner::Open(unit_->tcti(), kDefaultIdevidKeyHandle),
                          "the idev-id key at {:#010x}", kDefaultIdevidKeyHandle);
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey key, MakeSignerPrivateKey(library.get(), signer));
  provider_key_ = std::make_unique<ProviderSignKey>(ProviderSignKey{std::move(library), std::move(key)});
  return provider_key_.get();
}

Result<Station*> BenchContext::StationAt(int index) {
  std::unique_lock lock(mutex_);
  started_.wait_for(lock, std::chrono::minutes(2),
                    [&] { return stations_.count(index) > 0 || station_error_.has_value(); });
  if (auto found = stations_.find(index); found != stations_.end()) return found->second.get();
  if (station_error_) return Fail(*station_error_);
  return Fail(ErrorDomain::kProcess, kProcessDeadline,
              fmt::format("station {} was not started within two minutes", index));
}

Result<void> BenchContext::StartStations(int count) {
  std::lock_guard lock(mutex_);
  station_error_.reset();
  for (int index = 0; index < count && !station_error_; ++index) {
    if (stations_.count(index) > 0) continue;
    auto swtpm = SwtpmInstance::Start(
        {.state_dir = options_.work_dir / fmt::format("station-{}", index), .manufacture = true});
    auto tpm = swtpm ? TpmContext::Open(swtpm->tcti()) : Result<TpmContext>(Fail(swtpm.error()));
    if (!tpm) {
      station_error_ = tpm.error().WithContext(fmt::format("starting swtpm station {}", index));
    } else {
      stations_[index] = std::make_unique<Station>(Station{std::move(*swtpm), std::move(*tpm)});
    }
  }
  started_.notify_all();
  if (station_error_) return Fail(*station_error_);
  return {};
}

Result<void> BenchContext::StartPostgres() {
  std::lock_guard lock(mutex_);
  if (postgres_) return {};
  postgres_error_.reset();
  auto ledger = PostgresInstance::Start({.fsync = true}).and_then([&](PostgresInstance cluster) {
    postgres_.emplace(std::move(cluster));
    return postgres_->CreateDatabase("line");
  });
  if (ledger) {
    postgres_ledger_ = *ledger;
  } else {
    postgres_.reset();
    postgres_error_ = ledger.error().WithContext("starting the PostgreSQL cluster of the line benchmarks");
  }
  started_.notify_all();
  if (postgres_error_) return Fail(*postgres_error_);
  return {};
}

Result<std::string> BenchContext::PostgresLedger() {
  std::unique_lock lock(mutex_);
  started_.wait_for(lock, std::chrono::minutes(2), [&] { return postgres_ || postgres_error_; });
  if (postgres_) return postgres_ledger_;
  if (postgres_error_) return Fail(*postgres_error_);
  return Fail(ErrorDomain::kProcess, kProcessDeadline,
              "the PostgreSQL cluster was not started within two minutes");
}

Result<const Factory*> BenchContext::TokenFactory() {
  std::lock_guard lock(mutex_);
  if (token_factory_) return &*token_factory_;
  auto dir = options_.work_dir / "token-factory";
  IDEVID_ASSIGN_OR_RETURN(SoftHsmToken token, SoftHsmToken::Create({.dir = dir / "hsm", .label = "line-ca"}),
                          "creating the SoftHSM2 token of the HSM-key benchmark");
  token.UseInThisProcess();
  auto pin_file = dir / "pin";
  IDEVID_TRY(WriteFileAtomic(pin_file, token.pin() + "\n", 0600));
  IDEVID_ASSIGN_OR_RETURN(Factory factory,
                          InitFactory({.dir = dir / "factory",
                                       .algorithm = unit_->issuer().algorithm,
                                       .pkcs11_uri = token.Uri("issuing-ca"),
                                       .pkcs11_module = SoftHsmToken::ModulePath().string(),
                                       .pkcs11_pin_file = pin_file}),
                          "creating the HSM-key factory");
  token_.emplace(std::move(token));
  token_factory_.emplace(std::move(factory));
  return &*token_factory_;
}

}  // namespace idevid
