// Opening a TPM that is not there: each way gives an error that names the TCTI.
#include "core/tpm_context.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "core/unique_fd.h"

namespace idevid {
namespace {

using ::idevid::testing::IsOk;
using ::idevid::testing::ResultInDomain;
using ::idevid::testing::ResultIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A loopback port that refuses connections for as long as this object lives: bound, not listening.
class RefusingPort {
 public:
  RefusingPort() {
    auto socket = OpenSocket(AF_INET, SOCK_STREAM);
    EXPECT_THAT(socket, IsOk());
    if (socket) fd_ = std::move(*socket);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &length), 0);
    port_ = ntohs(addr.sin_port);
  }
  int port() const { return port_; }

 private:
  UniqueFd fd_;
  int port_ = 0;
};

TEST(TpmContextTest, UnreachableSimulatorIsATssErrorNamingTheTcti) {
  RefusingPort port;
  for (const char* kind : {"swtpm", "mssim"}) {
    std::string tcti = fmt::format("{}:host=127.0.0.1,port={}", kind, port.port());
    auto tpm = TpmContext::Open(tcti);
    EXPECT_THAT(
        tpm, ResultInDomain(ErrorDomain::kTss, AllOf(HasSubstr("'" + tcti + "'"), HasSubstr("is running"))))
        << tcti;
  }
}

TEST(TpmContextTest, MissingDeviceAndUnknownTctiAreErrorsNamingThem) {
  for (const char* tcti : {"device:/dev/idevid-no-such-tpm", "no-such-tcti:x=1"}) {
    auto tpm = TpmContext::Open(tcti);
    EXPECT_THAT(tpm, ResultInDomain(ErrorDomain::kTss, HasSubstr(tcti))) << tcti;
  }
}

TEST(TpmContextTest, EmptyTctiIsAUsageErrorListingTheForms) {
  auto tpm = TpmContext::Open("");
  EXPECT_THAT(tpm,
              ResultIs(ErrorDomain::kUsage, UsageCode::kMissingArgument, HasSubstr("device:/dev/tpmrm0")));
}

TEST(OrAbsentTest, NothingAtTheHandleIsAnEmptyValueAndOtherErrorsStayAsTheyWere) {
  EXPECT_EQ(*OrAbsent(Result<int>(5)), std::optional<int>(5));
  auto absent = OrAbsent(Result<int>(Fail(TssError(TPM2_RC_HANDLE | TPM2_RC_1, "reading"))));
  ASSERT_THAT(absent, IsOk());
  EXPECT_FALSE(absent->has_value());
  EXPECT_THAT(OrAbsent(Result<int>(Fail(TssError(TPM2_RC_NV_LOCKED, "writing")))),
              ResultIs(ErrorDomain::kTss, TPM2_RC_NV_LOCKED, StartsWith("writing")));
  EXPECT_THAT(OrAbsent(Result<void>(Fail(TssError(TSS2_RESMGR_TPM_RC_LAYER | TPM2_RC_HANDLE, "removing")))),
              IsOk());
  EXPECT_THAT(OrAbsent(Result<void>(Fail(TssError(TSS2_TCTI_RC_IO_ERROR, "removing")))),
              ResultIs(ErrorDomain::kTss, TSS2_TCTI_RC_IO_ERROR, StartsWith("removing")));
}

TEST(IsTpmAnswerTest, TheTpmsAnswersAreToldFromFailuresToReachIt) {
  EXPECT_TRUE(IsTpmAnswer(TssError(TPM2_RC_NV_UNINITIALIZED, "reading")));
  EXPECT_TRUE(IsTpmAnswer(TssError(TSS2_RESMGR_TPM_RC_LAYER | TPM2_RC_HANDLE, "reading")));
  EXPECT_FALSE(IsTpmAnswer(TssError(TSS2_TCTI_RC_IO_ERROR, "reading")));
  EXPECT_FALSE(IsTpmAnswer(TssError(TSS2_ESYS_RC_BAD_REFERENCE, "reading")));
  EXPECT_FALSE(IsTpmAnswer(Error(ErrorDomain::kIo, TPM2_RC_HANDLE, "not a TPM error")));
}

}  // namespace
}  // namespace idevid
