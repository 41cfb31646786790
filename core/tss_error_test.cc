#include "core/tss_error.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <tss2/tss2_tpm2_types.h>

namespace idevid {
namespace {

struct RcCase {
  TSS2_RC rc;
  TSS2_RC base;
  bool retryable;
  const char* hint;  // part of the message a person acts on; "" for none
};

class TssErrorTest : public ::testing::TestWithParam<RcCase> {};

TEST_P(TssErrorTest, ClassifiesDecodesAndHints) {
  const RcCase& c = GetParam();
  EXPECT_EQ(BaseTpmRc(c.rc), c.base);
  EXPECT_EQ(IsRetryableTpmRc(c.rc), c.retryable);
  Error e = TssError(c.rc, "doing it");
  EXPECT_EQ(e.domain(), ErrorDomain::kTss);
  EXPECT_EQ(e.code(), c.rc);
  EXPECT_EQ(e.message().rfind("doing it: ", 0), 0u) << e.message();
  EXPECT_NE(e.message().find(fmt::format("{:#x}", c.rc)), std::string::npos) << e.message();
  EXPECT_NE(e.message().find(c.hint), std::string::npos) << e.message();
}

INSTANTIATE_TEST_SUITE_P(
    Codes, TssErrorTest,
    ::testing::Values(RcCase{TPM2_RC_RETRY, TPM2_RC_RETRY, true, ""},
                      RcCase{TPM2_RC_YIELDED, TPM2_RC_YIELDED, true, ""},
                      RcCase{TPM2_RC_TESTING, TPM2_RC_TESTING, true, ""},
                      // TPM_RC_HANDLE for handle 1 (format one, handle number in bits 8-10).
                      RcCase{TPM2_RC_HANDLE | TPM2_RC_1, TPM2_RC_HANDLE, false, "does not exist"},
                      RcCase{TPM2_RC_OBJECT_MEMORY, TPM2_RC_OBJECT_MEMORY, false, "tpm2-abrmd"},
                      RcCase{TPM2_RC_NV_LOCKED, TPM2_RC_NV_LOCKED, false, "write-locked"},
                      RcCase{TPM2_RC_NV_DEFINED, TPM2_RC_NV_DEFINED, false, "already defined"},
                      RcCase{TPM2_RC_INITIALIZE, TPM2_RC_INITIALIZE, false, "TPM2_Startup"},
                      // The same code from the TSS's SAPI layer is not the TPM asking to retry.
                      RcCase{TSS2_SYS_RC_LAYER | TPM2_RC_RETRY, TPM2_RC_RETRY, false, ""},
                      // TCTI I/O failure: no TPM rc at all.
                      RcCase{TSS2_TCTI_RC_IO_ERROR, TSS2_TCTI_RC_IO_ERROR & ~TSS2_RC_LAYER_MASK, false, ""}));

struct Case {
  const char* name;
  ErrorDomain domain;
  std::uint64_t code;
  bool unreachable;
};

class TpmUnreachableTest : public ::testing::TestWithParam<Case> {};

TEST_P(TpmUnreachableTest, TellsSilenceFromAnAnswer) {
  EXPECT_EQ(IsTpmUnreachable(Error(GetParam().domain, GetParam().code, "x")), GetParam().unreachable);
}

INSTANTIATE_TEST_SUITE_P(
    Codes, TpmUnreachableTest,
    ::testing::Values(Case{"TctiIoError", ErrorDomain::kTss, TSS2_TCTI_RC_IO_ERROR, true},
                      Case{"TctiNoConnection", ErrorDomain::kTss, TSS2_TCTI_RC_NO_CONNECTION, true},
                      Case{"TctiTimeout", ErrorDomain::kTss, TSS2_TCTI_RC_TRY_AGAIN, true},
                      Case{"EsysIoError", ErrorDomain::kTss, TSS2_ESYS_RC_IO_ERROR, true},
                      Case{"ResourceManagerNoConnection", ErrorDomain::kTss,
                           TSS2_RESMGR_RC_LAYER | TSS2_BASE_RC_NO_CONNECTION, true},
                      Case{"TpmNoSuchHandle", ErrorDomain::kTss, TPM2_RC_HANDLE | TPM2_RC_1, false},
                      Case{"TpmNvUninitialized", ErrorDomain::kTss, TPM2_RC_NV_UNINITIALIZED, false},
                      Case{"RelayedTpmAnswer", ErrorDomain::kTss, TSS2_RESMGR_TPM_RC_LAYER | TPM2_RC_RETRY,
                           false},
                      Case{"EsysBadReference", ErrorDomain::kTss, TSS2_ESYS_RC_BAD_REFERENCE, false},
                      Case{"NotTss", ErrorDomain::kIo, TSS2_TCTI_RC_IO_ERROR, false}),
    [](const auto& test) { return std::string(test.param.name); });

}  // namespace
}  // namespace idevid
