#include "cloud/connection_log.h"

#include <cerrno>
#include <chrono>
#include <ctime>

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/idevid_profile.h"
#include "core/x509.h"

namespace idevid {
namespace {

std::string Now() {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

template <typename T>
nlohmann::json OrNull(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

std::string FirstAttribute(const X509& cert, std::string_view oid) {
  auto values = SubjectAttribute(cert, oid);
  return values && !values->empty() ? DisplayText(values->front()) : "";
}

}  // namespace

void ConnectionRecord::DescribeCertificate(const X509& cert) {
  if (auto sha256 = Sha256Fingerprint(cert)) fingerprint = *sha256;
  serial = FirstAttribute(cert, kOidSubjectSerialNumber);
  model = FirstAttribute(cert, "CN");
  auto hwmn = FindHardwareModuleName(cert);
  // Hex is printable; DisplayText only cuts an oversize one short (stating its length).
  if (hwmn && hwmn->has_value()) hw_serial = DisplayText(Hex((*hwmn)->hw_serial), 2 * 64);
}

nlohmann::json ConnectionRecord::ToJson() const {
  nlohmann::json line = {{"time", Now()},
                         {"peer", peer},
                         {"outcome", outcome},
                         {"phase", OrNull(phase)},
                         {"status", OrNull(status)},
                         {"served", OrNull(served)},
                         {"verdict", OrNull(verdict)},
                         {"reason", reason},
                         {"findings", OrNull(findings)},
                         {"request", OrNull(request)},
                         {"resumed", resumed},
                         {"protocol", protocol},
                         {"cipher", cipher},
                         {"serial", serial},
                         {"model", model},
                         {"hw_serial", OrNull(hw_serial)},
                         {"fingerprint", OrNull(fingerprint)}};
  if (attestation) {
    line["attestation"] = *attestation;
    line["attestation_policy"] = OrNull(attestation_policy);
    line["attestation_findings"] = OrNull(attestation_findings);
  }
  return line;
}

ConnectionLog::~ConnectionLog() { Close(); }

Result<void> ConnectionLog::Open(const std::filesystem::path& path) {
  std::lock_guard lock(mutex_);
  file_ = std::fopen(path.c_str(), "a");
  if (file_ == nullptr) return ErrnoError(errno, "cannot open the log " + path.string());
  return {};
}

void ConnectionLog::Write(const ConnectionRecord& record) {
  std::lock_guard lock(mutex_);
  if (file_ == nullptr) return;
  // Invalid UTF-8 from outside becomes U+FFFD rather than an exception.
  std::string line = record.ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fputs((line + "\n").c_str(), file_);
  std::fflush(file_);
}

void ConnectionLog::Close() {
  std::lock_guard lock(mutex_);
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
}

}  // namespace idevid
