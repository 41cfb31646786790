// Raw TPM2_Sign through core/ (ECDSA P-256, RSA-2048): the target's own limit; and the idev-id
// key signing through our OpenSSL provider, as TLS makes it sign, to show the signer's overhead.
#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>

#include "bench/bench_registry.h"
#include "core/openssl_error.h"
#include "core/tpm_sign.h"

namespace idevid {
namespace {

const std::vector<std::uint8_t> kDigest(32, 0x42);

// TPM2_Sign of the digest through core/: ECDSA, or RSA PKCS#1 v1.5.
Result<std::vector<std::uint8_t>> RawSignature(const RawSignKey& key, KeyAlgorithm alg) {
  SignatureScheme scheme =
      alg == KeyAlgorithm::kRsa2048 ? SignatureScheme::kRsaPkcs1 : SignatureScheme::kEcdsa;
  return SignDigest(key.tpm, key.handle(), {scheme}, kDigest);
}

void RawSign(benchmark::State& state, BenchContext& context, KeyAlgorithm alg) {
  auto key = context.RawKey(alg);
  Usable(state, key);  // on failure the loop below runs no iteration
  for (auto _ : state) {
    if (!Continue(state, RawSignature(**key, alg))) break;
  }
  CountRate(state);
}

// A signature context on the provider's key, set up once for SHA-256 digests (PKCS#1 v1.5 for RSA).
Result<ossl::PKeyCtx> ProviderSignContext(const ProviderSignKey& key, bool rsa) {
  ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(key.library.get(), key.key.get(), nullptr));
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1 ||
      (rsa && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1)) {
    return FailOpenSsl("cannot set up a signature with the provider's key");
  }
  return ctx;
}

// EVP_PKEY_sign of the digest: our provider's signature function, TpmKeySigner, TPM2_Sign.
Result<void> ProviderSign(EVP_PKEY_CTX* ctx) {
  std::uint8_t signature[512];
  std::size_t length = sizeof signature;
  if (EVP_PKEY_sign(ctx, signature, &length, kDigest.data(), kDigest.size()) != 1) {
    return FailOpenSsl("the provider's signature failed");
  }
  return {};
}

// Our signer and raw TPM2_Sign with the same key, alternating signature by signature (the first
// of each pair alternates too), so that whatever else the machine does weighs on both alike. The
// rate of ours is the benchmark's; the raw rate of the same run is the figure raw_sign_paired/ALG.
void OurSigner(benchmark::State& state, BenchContext& context) {
  KeyAlgorithm alg = context.identity_algorithm();
  auto key = context.ProviderKey();
  auto ctx = key ? ProviderSignContext(**key, alg == KeyAlgorithm::kRsa2048) : Fail(key.error());
  auto raw = context.RawKey(alg);
  if (Usable(state, ctx)) Usable(state, raw);  // on failure the loop below runs no iteration
  std::chrono::duration<double> ours{0}, theirs{0};
  auto sign_ours = [&] { return Timed(ours, [&] { return ProviderSign(ctx->get()); }); };
  auto sign_raw = [&] { return Timed(theirs, [&] { return RawSignature(**raw, alg); }); };
  bool ours_first = true;
  for (auto _ : state) {
    bool ok = ours_first ? Continue(state, sign_ours()) && Continue(state, sign_raw())
                         : Continue(state, sign_raw()) && Continue(state, sign_ours());
    if (!ok) break;
    ours_first = !ours_first;
  }
  if (ours.count() <= 0 || theirs.count() <= 0) return;
  auto n = static_cast<double>(state.iterations());
  state.counters[kRateCounter] = n / ours.count();
  state.counters[PairedRateCounter(fmt::format("raw_sign_paired/{}", KeyAlgorithmName(alg)))] =
      n / theirs.count();
}

}  // namespace

void RegisterSignBenchmarks(BenchContext& context) {
  // The signer's overhead is a few percent of a signature: at least a second each, even in a
  // quick run.
  double min_time = std::max(1.0, context.options().min_time_seconds);
  for (KeyAlgorithm alg : {KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048}) {
    AddBenchmark(context, fmt::format("raw_sign/{}", KeyAlgorithmName(alg)), "signatures",
                 [&context, alg](benchmark::State& s) { RawSign(s, context, alg); })
        ->MinTime(min_time);
  }
  AddBenchmark(context, fmt::format("signer/{}", KeyAlgorithmName(context.identity_algorithm())),
               "signatures", [&context](benchmark::State& s) { OurSigner(s, context); })
      ->MinTime(min_time);
}

}  // namespace idevid
