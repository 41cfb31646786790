#include "bench/bench_context.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include "core/tpm_nv.h"
#include "core/x509.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

// The SSL-I profiles of the unit's device configuration, by mode and TLS version.
std::string ProfileFor(ClientMode mode, int tls_version) {
  std::string base = mode == ClientMode::kFile ? "aamw-file" : "aamw-tpm";
  return tls_version == 12 ? base + "12" : base;
}

Result<KeyAlgorithm> IdentityAlgorithm(const std::string& tcti) {
  auto tpm = TpmContext::Open(tcti);
  if (!tpm) return Fail(tpm.error());
  auto pub = ReadPersistentPublic(*tpm, kDefaultIdevidKeyHandle);
  if (!pub) {
    return Fail(pub.error().WithContext(fmt::format("the target has no idev-id key at {:#010x}", kDefaultIdevidKeyHandle)));
  }
  return pub->publicArea.type == TPM2_ALG_RSA ? KeyAlgorithm::kRsa2048 : KeyAlgorithm::kEccP256;
}

}  // namespace

const char* ClientModeName(ClientMode mode) {
  switch (mode) {
    case ClientMode::kOurs:
      return "ours";
    case ClientMode::kTpm2Openssl:
      return "tpm2-openssl";
    case ClientMode::kFile:
      return "file";
  }
  return "?";
}

Result<std::unique_ptr<BenchContext>> BenchContext::Prepare(const BenchOptions& options) {
  std::unique_ptr<BenchContext> context(new BenchContext());
  context->options_ = options;
  auto unit = TestedUnit::Prepare({.work_dir = options.work_dir / "unit",
                                      .tcti = options.tcti,
                                      .provision = options.tcti.empty(),
                                      .factory_ca = options.factory_ca});
  if (!unit) return Fail(unit.error());
  context->unit_ = std::move(*unit);
  ::setenv("TPM2OPENSSL_TCTI", context->unit_->tcti().c_str(), 1);  // the comparator's TPM
  auto alg = IdentityAlgorithm(context->unit_->tcti());
  if (!alg) return Fail(alg.error());
  context->identity_algorithm_ = *alg;
  auto cert = LoadCertificateFile(context->unit_->dir() / "idevid.pem");
  if (!cert) return Fail(cert.error());
  context->idevid_certificate_ = std::move(*cert);
  auto bundle = LoadTrustBundle(FactoryFiles::Chain(context->unit_->issuer().dir));
  if (!bundle) return Fail(bundle.error());
  context->bundle_ = std::move(*bundle);
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
    auto client = SsliClient::Create({&unit_->config(), ProfileFor(mode, tls_version), std::nullopt,
                                      unit_->tcti(), "127.0.0.1", unit_->cloud().port()});
    if (!client) return Fail(client.error());
    slot = std::move(*client);
  }
  return slot.get();
}

Result<Tpm2OpensslClient*> BenchContext::Tpm2Client(int tls_version, int index) {
  std::lock_guard lock(mutex_);
  KeepSessionsFor(ClientMode::kTpm2Openssl, tls_version);
  auto& slot = tpm2_[index];
  if (!slot) {
    auto client = Tpm2OpensslClient::Create(
        idevid_certificate_.get(), FactoryFiles::Chain(unit_->issuer().dir).string(),
        tls_version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION, unit_->cloud().port());
    if (!client) return Fail(client.error());
    slot = std::move(*client);
  }
  return slot.get();
}

Result<RawSignKey*> BenchContext::RawKey(KeyAlgorithm alg) {
  std::lock_guard lock(mutex_);
  auto& slot = raw_keys_[alg];
  if (slot) return slot.get();
  auto tpm = TpmContext::Open(unit_->tcti());
  if (!tpm) return Fail(tpm.error());
  auto key = std::make_unique<RawSignKey>(RawSignKey{std::move(*tpm), std::nullopt, std::nullopt});
  if (alg == identity_algorithm_) {
    auto ref = ReferenceTpmHandle(key->tpm, kDefaultIdevidKeyHandle);
    if (!ref) return Fail(ref.error());
    key->persistent = std::move(*ref);
  } else {
    auto primary = CreatePrimary(key->tpm, ESYS_TR_RH_ENDORSEMENT, IdevidKeyTemplate(alg));
    if (!primary) return Fail(primary.error());
    key->primary = std::move(*primary);
  }
  slot = std::move(key);
  return slot.get();
}

Result<ProviderSignKey*> BenchContext::ProviderKey() {
  std::lock_guard lock(mutex_);
  if (provider_key_) return provider_key_.get();
  auto library = TpmProviderLibrary::Create();
  if (!library) return Fail(library.error());
  auto signer = TpmKeySigner::Open(unit_->tcti(), kDefaultIdevidKeyHandle);
  if (!signer) return Fail(signer.error());
  auto key = MakeTpmPrivateKey(library->get(), *signer);
  if (!key) return Fail(key.error());
  provider_key_ = std::make_unique<ProviderSignKey>(ProviderSignKey{std::move(*library), std::move(*key)});
  return provider_key_.get();
}

Result<Station*> BenchContext::StationAt(int index) {
  std::unique_lock lock(mutex_);
  bool ready = stations_changed_.wait_for(lock, std::chrono::minutes(2), [&] {
    return stations_.count(index) > 0 || station_error_.has_value();
  });
  if (auto found = stations_.find(index); found != stations_.end()) return found->second.get();
  if (station_error_) return Fail(*station_error_);
  return Fail(ErrorDomain::kProcess, 0,
              fmt::format("station {} was not started{}", index, ready ? "" : " within two minutes"));
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
  stations_changed_.notify_all();
  if (station_error_) return Fail(*station_error_);
  return {};
}

}  // namespace idevid
