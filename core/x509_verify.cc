#include "core/x509_verify.h"

#include <openssl/x509_vfy.h>

#include <fmt/format.h>

#include "core/openssl_error.h"
#include "core/x509.h"

namespace idevid {
namespace {

Result<ossl::UniquePtr<X509_STORE>> TrustStore(const std::vector<const X509*>& trusted) {
  ossl::UniquePtr<X509_STORE> store(X509_STORE_new());
  if (!store) return FailOpenSsl("cannot create a certificate store");
  for (const X509* cert : trusted) {
    if (X509_STORE_add_cert(store.get(), const_cast<X509*>(cert)) != 1) {
      return FailOpenSsl("cannot add a trusted certificate");
    }
  }
  return store;
}

Result<void> ApplyOptions(X509_STORE_CTX& ctx, const ChainCheckOptions& options) {
  if (options.at) X509_STORE_CTX_set_time(&ctx, 0, *options.at);
  if (!options.purpose.empty()) {
    int index = X509_PURPOSE_get_by_sname(options.purpose.c_str());
    if (index < 0)
      return UsageError(UsageCode::kInvalidArgument, fmt::format("unknown purpose '{}'", options.purpose));
    X509_STORE_CTX_set_purpose(&ctx, X509_PURPOSE_get_id(X509_PURPOSE_get0(index)));
  }
  return {};
}

}  // namespace

Result<ChainVerdict> VerifyChain(const X509& leaf, const std::vector<const X509*>& untrusted,
                                 const std::vector<const X509*>& trusted, const ChainCheckOptions& options) {
  IDEVID_ASSIGN_OR_RETURN(auto store, TrustStore(trusted));
  return VerifyChain(leaf, untrusted, *store, options);
}

Result<ChainVerdict> VerifyChain(const X509& leaf, const std::vector<const X509*>& untrusted,
                                 X509_STORE& store, const ChainCheckOptions& options) {
  ossl::CertStack chain(sk_X509_new_null());
  for (const X509* cert : untrusted) {
    X509_up_ref(const_cast<X509*>(cert));
    sk_X509_push(chain.get(), const_cast<X509*>(cert));
  }
  ossl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!chain || !ctx || X509_STORE_CTX_init(ctx.get(), &store, const_cast<X509*>(&leaf), chain.get()) != 1) {
    return FailOpenSsl("cannot prepare certificate verification");
  }
  IDEVID_TRY(ApplyOptions(*ctx, options));
  ChainVerdict verdict;
  verdict.valid = X509_verify_cert(ctx.get()) == 1;
  ClearOpenSslErrors();
  verdict.error_code = X509_STORE_CTX_get_error(ctx.get());
  verdict.error = X509_verify_cert_error_string(verdict.error_code);
  verdict.error_depth = verdict.valid ? -1 : X509_STORE_CTX_get_error_depth(ctx.get());
  if (STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(ctx.get())) {
    for (int i = 0; i < sk_X509_num(built); ++i) {
      verdict.chain_subjects.push_back(SubjectLine(*sk_X509_value(built, i)));
    }
  }
  return verdict;
}

}  // namespace idevid
