// Opening a TPM that is not there: each way gives an error that names the TCTI.
#include "core/tpm_context.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace idevid {
namespace {

// A loopback port that refuses connections for as long as this object lives: bound, not listening.
class RefusingPort {
 public:
  RefusingPort() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~RefusingPort() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

TEST(TpmContextTest, UnreachableSimulatorIsATssErrorNamingTheTcti) {
  RefusingPort port;
  for (const char* kind : {"swtpm", "mssim"}) {
    std::string tcti = fmt::format("{}:host=127.0.0.1,port={}", kind, port.port());
    auto tpm = TpmContext::Open(tcti);
    ASSERT_FALSE(tpm) << tcti;
    EXPECT_EQ(tpm.error().domain(), ErrorDomain::kTss);
    EXPECT_NE(tpm.error().message().find("'" + tcti + "'"), std::string::npos)
        << tpm.error().message();
    EXPECT_NE(tpm.error().message().find("is running"), std::string::npos);
  }
}

TEST(TpmContextTest, MissingDeviceAndUnknownTctiAreErrorsNamingThem) {
  for (const char* tcti : {"device:/dev/idevid-no-such-tpm", "no-such-tcti:x=1"}) {
    auto tpm = TpmContext::Open(tcti);
    ASSERT_FALSE(tpm) << tcti;
    EXPECT_EQ(tpm.error().domain(), ErrorDomain::kTss);
    EXPECT_NE(tpm.error().message().find(tcti), std::string::npos) << tpm.error().message();
  }
}

TEST(TpmContextTest, EmptyTctiIsAUsageErrorListingTheForms) {
  auto tpm = TpmContext::Open("");
  ASSERT_FALSE(tpm);
  EXPECT_EQ(tpm.error().domain(), ErrorDomain::kUsage);
  EXPECT_NE(tpm.error().message().find("device:/dev/tpmrm0"), std::string::npos);
}

}  // namespace
}  // namespace idevid
