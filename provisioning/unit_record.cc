#include "provisioning/unit_record.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "core/file_io.h"
#include "core/utc_time.h"
#include "core/x509.h"

namespace idevid {
namespace {

std::string HandleText(TpmHandle h) { return fmt::format("{:#010x}", h); }

nlohmann::json Envelope(const std::string& kind, const std::string& outcome, const StationContext& c) {
  return {{"record_version", kUnitRecordVersion},
          {"kind", kind},
          {"outcome", outcome},
          {"station", c.station},
          {"operator", c.operator_name},
          {"software_version", c.software_version},
          {"started_at", UtcTimestamp(c.started)},
          {"ended_at", UtcTimestamp(c.ended)}};
}

nlohmann::json TpmJson(const TpmInfo& tpm) {
  return {{"manufacturer", tpm.manufacturer},
          {"vendor_string", tpm.vendor_string},
          {"firmware_version", tpm.firmware_version}};
}

}  // namespace

nlohmann::json ProvisionRecord(const ProvisionRequest& request, const ProvisionResult& result,
                               const StationContext& context) {
  nlohmann::json j = Envelope("provision", result.refusal ? "FAIL" : "PASS", context);
  j["unit"] = {{"serial", request.serial}, {"model", request.model}};
  j["key"] = {{"algorithm", KeyAlgorithmName(request.algorithm)}, {"handle", HandleText(request.key_handle)}};
  if (!result.ek_sha256.empty()) {
    j["ledger"] = {{"ek_sha256", result.ek_sha256},
                   {"resumed", result.resumed},
                   {"certificate_reused", result.certificate_reused}};
  }
  if (result.refusal) {
    j["refusal"] = {{"reason", result.refusal->reason}, {"detail", result.refusal->detail}};
    j["tpm"] = TpmJson(result.tpm);
    return j;
  }
  j["certificate"] = {{"nv_index", HandleText(request.nv_index)},
                      {"fingerprint_sha256", result.certificate_fingerprint},
                      {"subject", SubjectLine(*result.certificate)},
                      {"issuer", IssuerLine(*result.certificate)}};
  j["ek_certificate"] = {{"nv_index", HandleText(result.ek_certificate_index)},
                         {"fingerprint_sha256", result.ek_certificate_fingerprint}};
  j["tpm"] = TpmJson(result.tpm);
  j["replaced"] = result.replaced;
  j["timings_ms"] = result.timings_ms;
  return j;
}

nlohmann::json EnrolRecord(const EnrolRequest& request, const EnrolResult& result,
                           const StationContext& context) {
  nlohmann::json j = Envelope("enrol", result.refusal ? "FAIL" : "PASS", context);
  j["unit"] = {{"serial", request.serial}, {"model", request.model}};
  j["keys"] = {{"algorithm", KeyAlgorithmName(request.algorithm)},
               {"idevid_handle", HandleText(request.idevid_handle)},
               {"iak_handle", HandleText(request.iak_handle)}};
  if (result.refusal) {
    j["refusal"] = {{"reason", result.refusal->reason}, {"detail", result.refusal->detail}};
  } else {
    auto describe = [](const X509& cert, TpmHandle index) {
      auto fingerprint = Sha256Fingerprint(cert);
      return nlohmann::json{{"nv_index", HandleText(index)},
                            {"fingerprint_sha256", fingerprint ? *fingerprint : ""},
                            {"subject", SubjectLine(cert)},
                            {"issuer", IssuerLine(cert)}};
    };
    j["idevid_certificate"] = describe(*result.idevid_certificate, request.idevid_nv_index);
    j["iak_certificate"] = describe(*result.iak_certificate, request.iak_nv_index);
  }
  j["replaced"] = result.replaced;
  j["timings_ms"] = result.timings_ms;
  return j;
}

nlohmann::json CheckRecord(const CheckRequest& request, const CheckReport& report,
                           const StationContext& context) {
  nlohmann::json j = Envelope("line-check", report.passed() ? "PASS" : "FAIL", context);
  const IdentityFacts& id = report.identity;
  j["unit"] = {{"serial", id.serial}, {"model", id.model}};
  j["expected"] = {{"serial", request.expect_serial.value_or("")},
                   {"model", request.expect_model.value_or("")}};
  j["identity"] = {{"fingerprint_sha256", id.fingerprint},
                   {"subject", id.subject},
                   {"issuer", id.issuer},
                   {"key_algorithm", id.key_algorithm},
                   {"ek_certificate_fingerprint_sha256", id.ek_certificate_fingerprint},
                   {"key_handle", HandleText(request.key_handle)},
                   {"nv_index", HandleText(request.nv_index)}};
  j["tpm"] = TpmJson(report.tpm);
  nlohmann::json measurements = nlohmann::json::array();
  for (const auto& m : report.measurements) {
    measurements.push_back({{"name", m.name},
                            {"outcome", m.passed ? "PASS" : "FAIL"},
                            {"value", m.value},
                            {"expected", m.expected}});
  }
  j["measurements"] = measurements;
  j["failure_codes"] = report.failures();
  j["timings_ms"] = report.timings_ms;
  return j;
}

nlohmann::json ErrorRecord(const std::string& kind, const Error& error, const StationContext& context) {
  nlohmann::json j = Envelope(kind, "ERROR", context);
  j["error"] = {{"domain", DomainName(error.domain())}, {"code", error.code()}, {"message", error.message()}};
  return j;
}

Result<void> WriteRecord(const std::filesystem::path& path, const nlohmann::json& record) {
  return WriteFileAtomic(path, record.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                         0644);
}

}  // namespace idevid
