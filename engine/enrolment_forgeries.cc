#include "engine/enrolment_forgeries.h"

#include <fmt/format.h>

#include "core/display_text.h"
#include "core/ledger.h"
#include "core/tpm_attest.h"
#include "core/tpm_context.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "engine/process.h"
#include "provisioning/enrolment_authority.h"
#include "provisioning/enrolment_forgery.h"
#include "provisioning/enrolment_station.h"
#include "provisioning/factory.h"
#include "provisioning/unit_tpm.h"

namespace idevid {
namespace {

using Outcome = Result<std::optional<EnrolmentRefusal>>;
using Log = std::vector<std::string>;

constexpr TpmHandle kIdevid = 0x81020000;
constexpr TpmHandle kIak = 0x81020001;
const IdentitySlots kUnitSlots{{kIdevid, kIak}, {0x01C90000, 0x01C90100}};

Result<std::unique_ptr<EnrolmentAuthority>> Authority(
    const ForgeryBench& bench, Log& log, std::vector<std::filesystem::path> vendor_cas,
    std::chrono::milliseconds lifetime = std::chrono::seconds(60)) {
  IDEVID_ASSIGN_OR_RETURN(Factory factory, LoadFactory(bench.factory_dir));
  AuthorityOptions options{
      .tpm_vendor_cas = std::move(vendor_cas), .session_lifetime = lifetime, .ledger = BenchLedger(bench)};
  options.log = [&log](const std::string& line) { log.push_back(line); };
  return EnrolmentAuthority::Create(std::move(factory), std::move(options));
}

EnrolRequest Request(const ForgeryBench& bench, bool force = false) {
  return {.serial = bench.serial, .model = bench.model, .algorithm = bench.algorithm, .force = force};
}

// A session the forger opens by hand; a refusal here means the bench is not what it should be.
Result<EnrolmentSession> Opened(EnrolmentAuthority& authority, const ForgeryBench& bench) {
  IDEVID_ASSIGN_OR_RETURN(auto begun, authority.Begin({bench.serial, bench.model, "forger"}));
  if (auto* refused = std::get_if<EnrolmentRefusal>(&begun)) {
    return UsageError(UsageCode::kWrongState, "the authority refused to open a session: " + refused->detail);
  }
  return std::get<EnrolmentSession>(std::move(begun));
}

Result<Bytes> EkDer(const TpmContext& tpm) {
  IDEVID_ASSIGN_OR_RETURN(EkCertificate ek, RequireEkCertificate(tpm));
  return CertificateDer(*ek.cert);
}

// The station enrols the unit through a channel that `tamper` sets up, against `authority`.
Outcome EnrolTampered(const ForgeryBench& bench, EnrolmentChannel& authority,
                      const std::function<void(TamperingChannel&, const TpmContext&)>& tamper,
                      bool force = false) {
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(bench.unit_tcti));
  TamperingChannel channel(authority);
  tamper(channel, tpm);
  IDEVID_ASSIGN_OR_RETURN(EnrolResult result, EnrolUnit(tpm, channel, Request(bench, force)));
  return result.refusal;
}

// A forgery that alters what the station sends through the authority that trusts the vendor.
Forgery Tampered(std::string name, std::string_view reason,
                 std::function<void(TamperingChannel&, const TpmContext&, const ForgeryBench&)> tamper) {
  return {std::move(name), std::string(reason), false,
          [tamper](const ForgeryBench& bench, Log& log) -> Outcome {
            IDEVID_ASSIGN_OR_RETURN(auto authority, Authority(bench, log, {bench.vendor_ca}));
            return EnrolTampered(bench, *authority, [&](TamperingChannel& channel, const TpmContext& tpm) {
              tamper(channel, tpm, bench);
            });
          }};
}

// Replaces the request with what `change` makes of it, signed again by the unit's IDevID.
void AlterOnSubmit(TamperingChannel& channel, const TpmContext& tpm,
                   std::function<void(TcgCsrContent&)> change) {
  channel.on_submit = [&tpm, change](Bytes& csr) {
    if (auto altered = AlterRequest(tpm, kIdevid, csr, change)) csr = std::move(*altered);
  };
}

// Replaces the request's TPM2_Certify by one of the key at `certified` by the IAK, over what
// `nonce_of` makes of the session's nonce, and signs the request again.
void ReplaceCertify(TamperingChannel& channel, const TpmContext& tpm, TpmHandle certified,
                    std::function<Bytes(const Bytes&)> nonce_of) {
  channel.on_submit = [&tpm, &channel, certified, nonce_of](Bytes& csr) {
    auto iak = ReferencePersistentKey(tpm, kIak);
    auto object = ReferencePersistentKey(tpm, certified);
    if (!iak || !object) return;
    auto certify = Certify(tpm, object->handle(), iak->handle(), nonce_of(channel.last_nonce));
    if (!certify) return;
    auto altered = AlterRequest(tpm, kIdevid, csr, [&](TcgCsrContent& c) {
      c.idevid_certify_info = certify->attest;
      c.idevid_certify_signature = certify->signature;
    });
    if (altered) csr = std::move(*altered);
  };
}

// §6.2: another TPM's EK certificate gets a credential only that TPM can open.
Forgery EkOfAnotherTpm() {
  return Tampered(
      "ek-of-another-tpm", refusal::kActivation,
      [](TamperingChannel& channel, const TpmContext& tpm, const ForgeryBench& bench) {
        auto other =
            bench.other_tcti().and_then([](const std::string& tcti) { return TpmContext::Open(tcti); });
        Bytes other_ek = other ? EkDer(*other).value_or(Bytes{}) : Bytes{};
        AlterOnSubmit(channel, tpm, [other_ek](TcgCsrContent& c) { c.ek_certificate = other_ek; });
      });
}

Forgery EkCertificateGarbage() {
  return Tampered("ek-certificate-garbage", refusal::kEkCertificate,
                  [](TamperingChannel& channel, const TpmContext& tpm, const ForgeryBench&) {
                    AlterOnSubmit(channel, tpm, [](TcgCsrContent& c) { c.ek_certificate = Bytes(64, 0x30); });
                  });
}

// The vendor's own CA certificate given as the EK certificate: it chains, but it is not an EK's.
Forgery EkCertificateIsACa() {
  return Tampered("ek-certificate-is-a-ca", refusal::kEkCertificate,
                  [](TamperingChannel& channel, const TpmContext& tpm, const ForgeryBench& bench) {
                    Bytes ca;
                    if (auto bundle = LoadTrustBundle(bench.vendor_ca); bundle && !bundle->anchors.empty()) {
                      ca = CertificateDer(*bundle->anchors.front()).value_or(Bytes{});
                    }
                    AlterOnSubmit(channel, tpm, [ca](TcgCsrContent& c) { c.ek_certificate = ca; });
                  });
}

// The IDevID's public area given as the IAK: a key that is not restricted cannot be an IAK.
Forgery IakNotRestricted() {
  return Tampered("iak-not-restricted", refusal::kIakAttributes,
                  [](TamperingChannel& channel, const TpmContext& tpm, const ForgeryBench&) {
                    AlterOnSubmit(channel, tpm, [](TcgCsrContent& c) { c.iak_public = c.idevid_public; });
                  });
}

Forgery EkFromUnknownVendor() {
  return {"ek-from-unknown-vendor", std::string(refusal::kEkChain), false,
          [](const ForgeryBench& bench, Log& log) -> Outcome {
            // An authority that trusts only the factory's own CAs as TPM vendors.
            IDEVID_ASSIGN_OR_RETURN(auto authority,
                                    Authority(bench, log, {FactoryFiles::Chain(bench.factory_dir)}));
            return EnrolTampered(bench, *authority, [](TamperingChannel&, const TpmContext&) {});
          }};
}

// A software key imported with TPM2_Import (tpm2-tools) and persisted where the IDevID goes.
Result<void> ImportSoftwareKey(const ForgeryBench& bench) {
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey soft, GenerateKey(bench.algorithm));
  auto path = [&](const char* name) { return (bench.work_dir / name).string(); };
  IDEVID_TRY(WritePrivateKeyPem(path("imported.pem"), *soft));
  std::map<std::string, std::string> env{{"TPM2TOOLS_TCTI", bench.unit_tcti}};
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           // A TPM without a resource manager has three object slots: each step flushes.
           {"tpm2_createprimary", "-C", "o", "-c", path("parent.ctx")},
           {"tpm2_flushcontext", "-t"},
           {"tpm2_import", "-C", path("parent.ctx"), "-G",
            bench.algorithm == KeyAlgorithm::kEccP256 ? "ecc" : "rsa", "-i", path("imported.pem"), "-u",
            path("imported.pub"), "-r", path("imported.priv")},
           {"tpm2_flushcontext", "-t"},
           {"tpm2_load", "-C", path("parent.ctx"), "-u", path("imported.pub"), "-r", path("imported.priv"),
            "-c", path("imported.ctx")},
           {"tpm2_evictcontrol", "-C", "o", "-c", path("imported.ctx"), fmt::format("{:#x}", kIdevid)},
           {"tpm2_flushcontext", "-t"}}) {
    IDEVID_ASSIGN_OR_RETURN(CommandOutput run, RunCommand(argv, env));
    if (run.exit_status != 0) {
      return Fail(ErrorDomain::kProcess, run.status_code,
                  fmt::format("{} failed: {}", argv[0], DisplayText(run.err)));
    }
  }
  return {};
}

// The station's steps by hand, with the imported key in place of a fresh IDevID.
Forgery ImportedIdevidKey() {
  return {"imported-idevid-key", std::string(refusal::kIdevidAttributes), false,
          [](const ForgeryBench& bench, Log& log) -> Outcome {
            IDEVID_TRY(ImportSoftwareKey(bench));
            IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(bench.unit_tcti));
            IDEVID_ASSIGN_OR_RETURN(
                PrimaryKey iak, CreatePrimary(tpm, ESYS_TR_RH_ENDORSEMENT, IakKeyTemplate(bench.algorithm)));
            IDEVID_TRY(PersistKey(tpm, iak.object, kIak));
            IDEVID_ASSIGN_OR_RETURN(auto authority, Authority(bench, log, {bench.vendor_ca}));
            IDEVID_ASSIGN_OR_RETURN(EnrolmentSession session, Opened(*authority, bench));
            IDEVID_ASSIGN_OR_RETURN(Bytes ek, EkDer(tpm));
            IDEVID_ASSIGN_OR_RETURN(Bytes csr, MakeEnrolmentRequest(tpm, Request(bench), ek, session.nonce));
            IDEVID_ASSIGN_OR_RETURN(auto answer, authority->Submit(session.id, csr));
            IDEVID_TRY(RemoveIdentity(tpm, kUnitSlots));
            if (auto* refused = std::get_if<EnrolmentRefusal>(&answer)) return *refused;
            return std::nullopt;
          }};
}

// The IAK of another TPM: its credential cannot be opened by this unit's EK and IAK.
Forgery IakOfAnotherTpm() {
  return {"iak-of-another-tpm", std::string(refusal::kActivation), false,
          [](const ForgeryBench& bench, Log& log) -> Outcome {
            IDEVID_ASSIGN_OR_RETURN(std::string other_tcti, bench.other_tcti());
            IDEVID_ASSIGN_OR_RETURN(TpmContext other, TpmContext::Open(other_tcti));
            IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(bench.unit_tcti));
            EnrolRequest request = Request(bench);
            IDEVID_TRY(CreateUnitKeys(other, request));
            IDEVID_TRY(CreateUnitKeys(tpm, request));
            IDEVID_ASSIGN_OR_RETURN(auto authority, Authority(bench, log, {bench.vendor_ca}));
            IDEVID_ASSIGN_OR_RETURN(EnrolmentSession session, Opened(*authority, bench));
            IDEVID_ASSIGN_OR_RETURN(Bytes ek, EkDer(tpm));
            IDEVID_ASSIGN_OR_RETURN(Bytes csr, MakeEnrolmentRequest(other, request, ek, session.nonce));
            IDEVID_ASSIGN_OR_RETURN(auto challenge, authority->Submit(session.id, csr));
            IDEVID_TRY(RemoveIdentity(other, kUnitSlots));
            Outcome outcome = std::nullopt;
            if (auto* refused = std::get_if<EnrolmentRefusal>(&challenge)) {
              outcome = *refused;
            } else {
              // This unit's TPM cannot open it; a guess is all a forger has left.
              auto opened = AnswerCredential(tpm, request.iak_handle, std::get<Credential>(challenge));
              Bytes answer = opened ? *opened : Bytes(32, 0x5a);
              IDEVID_ASSIGN_OR_RETURN(auto issued, authority->Activate(session.id, answer));
              if (auto* late = std::get_if<EnrolmentRefusal>(&issued)) outcome = *late;
            }
            IDEVID_TRY(RemoveIdentity(tpm, kUnitSlots));
            return outcome;
          }};
}

Forgery CertifyByAnotherKey() {
  return Tampered("certify-by-another-key", refusal::kCertify,
                  [](TamperingChannel& channel, const TpmContext& tpm, const ForgeryBench&) {
                    channel.on_submit = [&tpm, &channel](Bytes& csr) {
                      auto idevid = ReferencePersistentKey(tpm, kIdevid);
                      if (!idevid) return;
                      // The IDevID certifies itself: a TPM-made attestation, but not by the IAK.
                      auto self = Certify(tpm, idevid->handle(), idevid->handle(), channel.last_nonce);
                      if (!self) return;
                      auto altered = AlterRequest(tpm, kIdevid, csr, [&](TcgCsrContent& c) {
                        c.idevid_certify_info = self->attest;
                        c.idevid_certify_signature = self->signature;
                      });
                      if (altered) csr = std::move(*altered);
                    };
                  });
}

// A TPM2_Certify by the IAK made for another nonce (an earlier session's, or one the forger
// chose): TPM-made and signed by the IAK, but not fresh.
Forgery WithDetail(Forgery forgery, std::string part) {
  forgery.detail_part = std::move(part);
  return forgery;
}

Forgery StaleNonce() {
  return Tampered("stale-nonce", refusal::kCertify,
                  [](TamperingChannel& channel, const TpmContext& tpm, const ForgeryBench&) {
                    ReplaceCertify(channel, tpm, kIdevid, [](const Bytes& nonce) {
                      Bytes stale = nonce;
                      stale.at(0) ^= 0x01;
                      return stale;
                    });
                  });
}

// The IAK certifies itself instead of the IDevID: fresh and signed by the IAK, for another key.
Forgery CertifiesAnotherKey() {
  return Tampered("certifies-another-key", refusal::kCertify,
                  [](TamperingChannel& channel, const TpmContext& tpm, const ForgeryBench&) {
                    ReplaceCertify(channel, tpm, kIak, [](const Bytes& nonce) { return nonce; });
                  });
}

Forgery ChangedAfterSigning() {
  return Tampered("request-changed-after-signing", refusal::kRequestSignature,
                  [](TamperingChannel& channel, const TpmContext&, const ForgeryBench&) {
                    // 12 bytes of TCG_CSR_IDEVID header and 64 of content sizes, then prodModel.
                    channel.on_submit = [](Bytes& csr) {
                      if (csr.size() > 76) csr[76] ^= 0x01;
                    };
                  });
}

Forgery ReplayedActivationAnswer() {
  return {"replayed-activation-answer", std::string(refusal::kActivation), false,
          [](const ForgeryBench& bench, Log& log) -> Outcome {
            IDEVID_ASSIGN_OR_RETURN(auto authority, Authority(bench, log, {bench.vendor_ca}));
            ForgeryBench earlier_unit = bench;
            earlier_unit.serial = bench.serial + "-EARLIER";
            Bytes earlier;
            IDEVID_ASSIGN_OR_RETURN(
                auto first,
                EnrolTampered(earlier_unit, *authority, [&](TamperingChannel& channel, const TpmContext&) {
                  channel.on_activate = [&](Bytes& s) { earlier = s; };
                }));
            if (first)
              return UsageError(UsageCode::kWrongState,
                                "the earlier enrolment was refused: " + first->detail);
            return EnrolTampered(
                bench, *authority,
                [&](TamperingChannel& channel, const TpmContext&) {
                  channel.on_activate = [&](Bytes& secret) { secret = earlier; };
                },
                /*force=*/true);
          }};
}

Forgery OrderChanged(std::string name, std::function<void(EnrolmentOrder&)> change) {
  return Tampered(std::move(name), refusal::kOrder,
                  [change](TamperingChannel& channel, const TpmContext&, const ForgeryBench&) {
                    channel.on_begin = change;
                  });
}

// The serial is enrolled on the other TPM first, committed (`commit`: the line finished that
// unit) or not (it is in the middle of its enrolment); this unit asks for it again.
Forgery SerialTaken(std::string name, std::string_view reason, bool commit) {
  return {
      std::move(name), std::string(reason), true, [commit](const ForgeryBench& bench, Log& log) -> Outcome {
        IDEVID_ASSIGN_OR_RETURN(auto authority, Authority(bench, log, {bench.vendor_ca}));
        IDEVID_ASSIGN_OR_RETURN(std::string other_tcti, bench.other_tcti());
        {
          IDEVID_ASSIGN_OR_RETURN(TpmContext other, TpmContext::Open(other_tcti));
          EnrolRequest request = Request(bench, true);
          IDEVID_ASSIGN_OR_RETURN(EnrolResult first, EnrolUnit(other, *authority, request));
          if (first.refusal) {
            return UsageError(UsageCode::kWrongState, "the first unit was refused: " + first.refusal->detail);
          }
          if (commit) {
            IDEVID_ASSIGN_OR_RETURN(auto committed, CommitEnrolment(*authority, request, first, "PASS",
                                                                    nlohmann::json::object()));
            if (auto* refused = std::get_if<EnrolmentRefusal>(&committed)) {
              return UsageError(UsageCode::kWrongState,
                                "the first unit's commit was refused: " + refused->detail);
            }
          }
          IDEVID_TRY(RemoveIdentity(other, kUnitSlots));
        }
        return EnrolTampered(bench, *authority, [](TamperingChannel&, const TpmContext&) {});
      }};
}

Forgery Mangled(std::string name, std::function<void(Bytes&)> mangle) {
  return Tampered(std::move(name), refusal::kMalformedRequest,
                  [mangle](TamperingChannel& channel, const TpmContext&, const ForgeryBench&) {
                    channel.on_submit = mangle;
                  });
}

Forgery SessionTimedOut() {
  return {"session-timed-out", std::string(refusal::kSession), false,
          [](const ForgeryBench& bench, Log& log) -> Outcome {
            IDEVID_ASSIGN_OR_RETURN(auto authority,
                                    Authority(bench, log, {bench.vendor_ca}, std::chrono::milliseconds(1)));
            return EnrolTampered(bench, *authority, [](TamperingChannel&, const TpmContext&) {});
          }};
}

// What the unit's TPM holds of an identity after the play.
Result<std::vector<std::string>> LeftBehind(const ForgeryBench& bench) {
  IDEVID_ASSIGN_OR_RETURN(TpmContext tpm, TpmContext::Open(bench.unit_tcti));
  return ExistingIdentity(tpm, kUnitSlots);
}

}  // namespace

std::string BenchLedger(const ForgeryBench& bench) {
  return "sqlite:" + (bench.work_dir / "ledger.sqlite").string();
}

std::vector<Forgery> EnrolmentForgeries() {
  return {EkOfAnotherTpm(),
          EkFromUnknownVendor(),
          EkCertificateGarbage(),
          EkCertificateIsACa(),
          IakNotRestricted(),
          ImportedIdevidKey(),
          IakOfAnotherTpm(),
          WithDetail(CertifyByAnotherKey(), "not signed by the IAK"),
          WithDetail(StaleNonce(), "not this enrolment's nonce"),
          WithDetail(CertifiesAnotherKey(), "certifies another key"),
          ChangedAfterSigning(),
          ReplayedActivationAnswer(),
          OrderChanged("serial-not-ordered", [](EnrolmentOrder& o) { o.serial += "-OTHER"; }),
          OrderChanged("model-not-ordered", [](EnrolmentOrder& o) { o.model += "-OTHER"; }),
          SerialTaken("serial-issued", refusal::kSerialIssued, /*commit=*/true),
          SerialTaken("serial-of-another-tpm", ledger_refusal::kClone, /*commit=*/false),
          Mangled("truncated-request", [](Bytes& csr) { csr.resize(csr.size() / 2); }),
          Mangled("oversize-request", [](Bytes& csr) { csr.resize(kTcgCsrMaxBytes + 1, 0); }),
          Mangled("trailing-garbage", [](Bytes& csr) { csr.push_back(0); }),
          SessionTimedOut()};
}

Result<Verdict> JudgeForgery(const Forgery& forgery, const ForgeryBench& bench) {
  std::vector<std::string> log;
  IDEVID_ASSIGN_OR_RETURN(std::optional<EnrolmentRefusal> refusal, forgery.play(bench, log),
                          "playing the forgery {}", forgery.name);
  Verdict verdict;
  if (!refusal) {
    verdict.Add("forgery-accepted", fmt::format("the authority enrolled the unit despite {}", forgery.name));
  } else if (refusal->reason != forgery.reason) {
    verdict.Add("wrong-reason", fmt::format("refused as {} ({}); expected {}", refusal->reason,
                                            DisplayText(refusal->detail), forgery.reason));
  } else if (!forgery.detail_part.empty() && refusal->detail.find(forgery.detail_part) == std::string::npos) {
    verdict.Add("wrong-detail",
                fmt::format("refused as {} for {}; expected it to say {}", refusal->reason,
                            DisplayText(refusal->detail), QuotedDisplayText(forgery.detail_part)));
  }
  bool logged = std::any_of(log.begin(), log.end(), [&](const std::string& line) {
    return line.find(": " + forgery.reason + ": ") != std::string::npos;
  });
  if (refusal && !logged)
    verdict.Add("refusal-not-logged", "the authority's log does not name " + forgery.reason);
  IDEVID_ASSIGN_OR_RETURN(auto left, LeftBehind(bench), "looking at the unit after the forgery");
  if (!left.empty()) verdict.Add("identity-left-behind", fmt::format("{}", fmt::join(left, "; ")));
  if (!forgery.serial_issued_before) {
    IDEVID_ASSIGN_OR_RETURN(auto ledger, OpenLedger(BenchLedger(bench)), "the bench's ledger");
    IDEVID_ASSIGN_OR_RETURN(std::optional<UnitRow> row, ledger->FindBySerial(bench.serial));
    if (row) {
      verdict.Add("serial-recorded", fmt::format("serial {} is in the ledger ({})",
                                                 QuotedDisplayText(bench.serial), UnitStateName(row->state)));
    }
  }
  return verdict;
}

}  // namespace idevid
