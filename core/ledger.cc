#include "core/ledger.h"

#include <openssl/sha.h>

#include <array>
#include <utility>

#include <fmt/format.h>

#include "core/display_text.h"

namespace idevid {
namespace {

constexpr std::array<std::pair<RevocationReason, std::string_view>, 10> kReasonNames = {{
    {RevocationReason::kUnspecified, "unspecified"},
    {RevocationReason::kKeyCompromise, "keyCompromise"},
    {RevocationReason::kCaCompromise, "cACompromise"},
    {RevocationReason::kAffiliationChanged, "affiliationChanged"},
    {RevocationReason::kSuperseded, "superseded"},
    {RevocationReason::kCessationOfOperation, "cessationOfOperation"},
    {RevocationReason::kCertificateHold, "certificateHold"},
    {RevocationReason::kRemoveFromCrl, "removeFromCRL"},
    {RevocationReason::kPrivilegeWithdrawn, "privilegeWithdrawn"},
    {RevocationReason::kAaCompromise, "aACompromise"},
}};

}  // namespace

std::string_view UnitStateName(UnitState state) {
  switch (state) {
    case UnitState::kReserved: return "reserved";
    case UnitState::kIssued: return "issued";
    case UnitState::kCommitted: return "committed";
  }
  return "unknown";
}

std::string_view RevocationReasonName(RevocationReason reason) {
  for (const auto& [value, name] : kReasonNames) {
    if (value == reason) return name;
  }
  return "unspecified";
}

Result<RevocationReason> ParseRevocationReason(std::string_view name) {
  std::string known;
  for (const auto& [value, text] : kReasonNames) {
    if (text == name) return value;
    known += (known.empty() ? "" : ", ") + std::string(text);
  }
  return UsageError(UsageCode::kInvalidArgument,
                    fmt::format("{} is not a revocation reason (RFC 5280 5.3.1); use one of {}",
                                QuotedDisplayText(name), known));
}

std::string DefaultLedgerSpec(const std::filesystem::path& factory_dir) {
  return "sqlite:" + (factory_dir / "ledger.sqlite").string();
}

Result<std::string> PublicKeySha256(const EVP_PKEY& key) {
  IDEVID_ASSIGN_OR_RETURN(Bytes der, PublicKeyDer(key), "cannot encode the public key");
  std::uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(der.data(), der.size(), digest);
  return Hex(digest);
}

}  // namespace idevid
