// Raw TPM2_Sign through core/ (ECDSA P-256, RSA-2048): the target's own limit; and the idev-id
// key signing through our OpenSSL provider, as TLS makes it sign, to show the signer's overhead.
#include <openssl/evp.h>

#include <algorithm>

#include <fmt/format.h>

#include "core/openssl_error.h"
#include "core/tpm_sign.h"
#include "harness/bench/benchmarks.h"

namespace idevid {
namespace {

const std::vector<std::uint8_t> kDigest(32, 0x42);

void RawSign(benchmark::State& state, BenchContext& context, KeyAlgorithm alg) {
  auto key = context.RawKey(alg);
  SignatureAlgorithm scheme{alg == KeyAlgorithm::kRsa2048 ? SignatureScheme::kRsaPkcs1 : SignatureScheme::kEcdsa};
  Usable(state, key);  // on failure the loop below runs no iteration
  for (auto _ : state) {
    if (!Continue(state, SignDigest((*key)->tpm, (*key)->handle(), scheme, kDigest))) break;
  }
  CountRate(state);
}

// EVP_PKEY_sign of a SHA-256 digest: our provider's signature operation and TpmKeySigner.
Result<void> ProviderSign(OSSL_LIB_CTX* libctx, EVP_PKEY* key, bool rsa) {
  ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(libctx, key, nullptr));
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1 ||
      (rsa && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1)) {
    return FailOpenSsl("cannot set up a signature with the provider's key");
  }
  std::uint8_t signature[512];
  std::size_t length = sizeof signature;
  if (EVP_PKEY_sign(ctx.get(), signature, &length, kDigest.data(), kDigest.size()) != 1) {
    return FailOpenSsl("the provider's signature failed");
  }
  return {};
}

void OurSigner(benchmark::State& state, BenchContext& context) {
  auto key = context.ProviderKey();
  bool rsa = context.identity_algorithm() == KeyAlgorithm::kRsa2048;
  Usable(state, key);  // on failure the loop below runs no iteration
  for (auto _ : state) {
    if (!Continue(state, ProviderSign((*key)->library.get(), (*key)->key.get(), rsa))) break;
  }
  CountRate(state);
}

}  // namespace

void RegisterSignBenchmarks(BenchContext& context) {
  // The signer's overhead is a few percent of a signature: at least a second each, even in a
  // quick run, so that the ratio is not noise.
  double min_time = std::max(1.0, context.options().min_time_seconds);
  for (KeyAlgorithm alg : {KeyAlgorithm::kEccP256, KeyAlgorithm::kRsa2048}) {
    AddBenchmark(context, fmt::format("raw_sign/{}", KeyAlgorithmName(alg)), "signatures",
                 [&context, alg](benchmark::State& s) { RawSign(s, context, alg); })
        ->MinTime(min_time);
  }
  AddBenchmark(context, fmt::format("signer/{}", KeyAlgorithmName(context.identity_algorithm())), "signatures",
               [&context](benchmark::State& s) { OurSigner(s, context); })
      ->MinTime(min_time);
}

}  // namespace idevid
