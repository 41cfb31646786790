#include "device/pkid/command_handler.h"

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/x509.h"
#include "core/x509_verify.h"
#include "device/pkid/certificate_view.h"

namespace idevid {
namespace {

CommandResponse Failure(int status, std::string text) {
  nlohmann::json data = {{"error", text}};
  return {status, std::move(text), std::move(data)};
}

ViewDetail DetailOf(const OperationalCommand& c) {
  return c.detail == OperationalCommand::Detail::kDetail ? ViewDetail::kDetail : ViewDetail::kBrief;
}

}  // namespace

const StoreEntry* CommandHandler::Find(const std::string& id) const {
  auto it = store_.entries.find(id);
  return it == store_.entries.end() ? nullptr : &it->second;
}

CommandResponse CommandHandler::Execute(std::string_view line) const {
  auto command = ParseOperationalCommand(line);
  if (!command) return Failure(kStatusMalformed, command.error().message());
  switch (command->kind) {
    case OperationalCommand::Kind::kShow: return Show(*command);
    case OperationalCommand::Kind::kVerify: return Verify(*command->certificate_id);
    case OperationalCommand::Kind::kExport: return Export(*command->certificate_id);
    case OperationalCommand::Kind::kReload: return Reload();
  }
  return Failure(kStatusMalformed, "unhandled command");
}

CommandResponse CommandHandler::Reload() const {
  auto reloaded = reload_();
  if (reloaded) return {kStatusOk, "node-local certificates reloaded\n", {{"reloaded", true}}};
  std::string text = fmt::format(
      "configuration rejected: {}; the previous configuration is still "
      "in use\n",
      reloaded.error().message());
  return {kStatusConfigRejected, text, {{"reloaded", false}, {"error", reloaded.error().message()}}};
}

CommandResponse CommandHandler::Show(const OperationalCommand& command) const {
  CommandResponse response{0, "", nlohmann::json::array()};
  if (command.certificate_id && !Find(*command.certificate_id)) {
    return Failure(
        1, fmt::format("certificate-id {} is not configured\n", DisplayText(*command.certificate_id)));
  }
  for (const auto& [id, entry] : store_.entries) {
    if (command.certificate_id && id != *command.certificate_id) continue;
    if (!response.text.empty()) response.text += "\n";
    response.text += FormatEntry(entry, DetailOf(command));
    response.data.push_back(EntryJson(entry));
  }
  return response;
}

CommandResponse CommandHandler::Verify(const std::string& id) const {
  if (id == kIdevidCertificateId) {
    return {1,
            std::string(kIdevidVerifyRefusal) + "\n",
            {{"certificate_id", id}, {"verified", false}, {"reason", kIdevidVerifyRefusal}}};
  }
  const StoreEntry* entry = Find(id);
  if (entry == nullptr)
    return Failure(1, fmt::format("certificate-id {} is not configured\n", DisplayText(id)));
  if (!entry->certificate) {
    return Failure(1, fmt::format("Local certificate {} is not loaded: {}\n", id, entry->status.error));
  }
  auto profile = store_.ca_profiles.find(entry->ca_profile);
  if (entry->ca_profile.empty() || profile == store_.ca_profiles.end() || !profile->second.status.loaded) {
    return Failure(1, fmt::format("Local certificate {} cannot be verified: its ca-profile '{}' "
                                  "is not configured or not loaded\n",
                                  id, entry->ca_profile));
  }
  std::vector<const X509*> anchors, intermediates;
  for (const auto& c : profile->second.certificates) {
    bool self_signed = X509_check_issued(c.get(), c.get()) == X509_V_OK;
    (self_signed ? anchors : intermediates).push_back(c.get());
  }
  auto verdict = VerifyChain(*entry->certificate, intermediates, anchors);
  if (!verdict) return Failure(2, verdict.error().message());
  nlohmann::json data = {{"certificate_id", id},
                         {"verified", verdict->valid},
                         {"ca_profile", entry->ca_profile},
                         {"reason", verdict->error}};
  if (verdict->valid) return {0, fmt::format("Local certificate {} verification success\n", id), data};
  return {1, fmt::format("Local certificate {} verification failed: {}\n", id, verdict->error), data};
}

CommandResponse CommandHandler::Export(const std::string& id) const {
  const StoreEntry* entry = Find(id);
  if (entry == nullptr)
    return Failure(1, fmt::format("certificate-id {} is not configured\n", DisplayText(id)));
  if (!entry->certificate) {
    return Failure(1, fmt::format("certificate-id {} is not loaded: {}\n", id, entry->status.error));
  }
  auto pem = CertificatePem(*entry->certificate);
  if (!pem) return Failure(2, pem.error().message());
  nlohmann::json key = entry->key.in_tpm
                           ? nlohmann::json{{"location", "tpm"}, {"handle", entry->key.tpm_handle}}
                           : nlohmann::json{{"location", "file"}, {"path", entry->key.file}};
  return {0, *pem, {{"certificate_id", id}, {"certificate_pem", *pem}, {"key", key}}};
}

}  // namespace idevid
