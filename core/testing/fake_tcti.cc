#include "core/testing/fake_tcti.h"

#include <cstring>

namespace idevid::testing {
namespace {

constexpr std::size_t kHeaderSize = 10;  // tag(2) size(4) code(4), TPM 2.0 Part 1, 18.2

void PutBigEndian(std::vector<std::uint8_t>& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

std::vector<std::uint8_t> Response(TSS2_RC rc, const std::vector<std::uint8_t>& parameters) {
  std::vector<std::uint8_t> out;
  PutBigEndian(out, TPM2_ST_NO_SESSIONS, 2);
  PutBigEndian(out, kHeaderSize + parameters.size(), 4);
  PutBigEndian(out, rc, 4);
  out.insert(out.end(), parameters.begin(), parameters.end());
  return out;
}

// The parameters of a successful answer: for GetRandom a TPM2B_DIGEST of 32 bytes 0xA5.
std::vector<std::uint8_t> SuccessParameters(TPM2_CC command) {
  std::vector<std::uint8_t> p;
  if (command == TPM2_CC_GetRandom) {
    PutBigEndian(p, 32, 2);
    p.insert(p.end(), 32, 0xA5);
  }
  return p;
}

void NoFinalize(TSS2_TCTI_CONTEXT*) {}

}  // namespace

TctiOwner FakeTcti::Handle() {
  context_.common.v1.magic = 0x46414b45;  // "FAKE"
  context_.common.v1.version = 2;
  context_.common.v1.transmit = Transmit;
  context_.common.v1.receive = Receive;
  context_.self = this;
  return TctiOwner(reinterpret_cast<TSS2_TCTI_CONTEXT*>(&context_), NoFinalize);
}

FakeTcti& FakeTcti::Self(TSS2_TCTI_CONTEXT* tcti) { return *reinterpret_cast<Context*>(tcti)->self; }

TSS2_RC FakeTcti::Transmit(TSS2_TCTI_CONTEXT* tcti, size_t size, const uint8_t* command) {
  if (size < kHeaderSize) return TSS2_TCTI_RC_BAD_VALUE;
  TPM2_CC code = 0;
  for (int i = 6; i < 10; ++i) code = (code << 8) | command[i];
  FakeTcti& self = Self(tcti);
  self.commands_.push_back(code);
  self.pending_ = self.NextResponse();
  return TSS2_RC_SUCCESS;
}

TSS2_RC FakeTcti::Receive(TSS2_TCTI_CONTEXT* tcti, size_t* size, uint8_t* response, int32_t) {
  FakeTcti& self = Self(tcti);
  if (response == nullptr) {
    *size = self.pending_.size();
    return TSS2_RC_SUCCESS;
  }
  if (*size < self.pending_.size()) return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
  std::memcpy(response, self.pending_.data(), self.pending_.size());
  *size = self.pending_.size();
  return TSS2_RC_SUCCESS;
}

std::vector<std::uint8_t> FakeTcti::NextResponse() {
  if (!script_.empty()) {
    TSS2_RC rc = script_.front();
    script_.pop_front();
    if (rc != TSS2_RC_SUCCESS) return Response(rc, {});
  }
  return Response(TSS2_RC_SUCCESS, SuccessParameters(commands_.back()));
}

}  // namespace idevid::testing
