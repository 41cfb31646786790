// The verifier against evidence made in software: a software ECDSA P-256 key stands in for the
// IAK and signs TPMS_ATTEST structures marshalled here, so that every rule can be broken alone.
#include "cloud/attestation_verifier.h"

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloud/testing/event_data.h"
#include "core/event_log.h"
#include "core/testing/result_matchers.h"
#include "core/tpm_wire.h"
#include "core/x509.h"
#include "core/x509_build.h"

namespace idevid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kSerial = "CW0001";

ossl::PKey NewKey() {
  auto key = GenerateKey(KeyAlgorithm::kEccP256);
  EXPECT_TRUE(key.has_value());
  return *std::move(key);
}

// A CA and the certificates it issues.
struct TestCa {
  ossl::PKey key = NewKey();
  ossl::Cert cert;

  explicit TestCa(const std::string& name) {
    CertificateSpec spec;
    spec.subject = {{"CN", name}};
    spec.not_after = "20500101000000Z";
    spec.extensions = {{"basicConstraints", "critical,CA:TRUE"}, {"keyUsage", "critical,keyCertSign"}};
    auto issued = IssueCertificate(spec, *key, nullptr, *key);
    EXPECT_TRUE(issued.has_value());
    cert = *std::move(issued);
  }

  // An IAK certificate as the factory issues it; without the IAK policy, an IDevID certificate.
  Bytes IakCertificate(EVP_PKEY& iak, const std::string& serial, bool iak_policy = true) {
    CertificateSpec spec;
    spec.subject = {{"serialNumber", serial}, {"CN", "SRX4300"}};
    spec.not_after = "20500101000000Z";
    spec.extensions = {{"keyUsage", "critical,digitalSignature"},
                       {"certificatePolicies", iak_policy ? "2.23.133.11.1.1,2.23.133.11.1.2,2.23.133.11.1.3"
                                                          : "2.23.133.11.1.1,2.23.133.11.1.2"}};
    auto issued = IssueCertificate(spec, iak, cert.get(), *key);
    EXPECT_TRUE(issued.has_value());
    return *CertificateDer(**issued);
  }
};

LogEvent Event(std::uint32_t pcr, std::uint32_t type, std::uint8_t fill, std::string data) {
  return LogEvent{pcr, type, {{kAlgSha256, Bytes(32, fill)}}, Bytes(data.begin(), data.end())};
}

// An image load into PCR 4 of `file`, with data as firmware writes it.
LogEvent Image(std::uint8_t fill, std::string_view file) {
  return LogEvent{
      4, kEvEfiBootServicesApplication, {{kAlgSha256, Bytes(32, fill)}}, testing::ImageLoadData(file)};
}

std::vector<LogEvent> GoldenEvents() {
  return {Event(0, kEvSCrtmVersion, 0x01, "firmware 1.2"),
          Event(0, kEvSeparator, 0x02, ""),
          Image(0x04, "grubx64.efi"),
          Image(0x05, "vmlinuz-6.1"),
          Event(4, kEvSeparator, 0x02, ""),
          Event(7, kEvSeparator, 0x02, "")};
}

PcrSelection Selection(std::vector<std::uint32_t> pcrs) {
  return PcrSelection{TPM2_ALG_SHA256, std::move(pcrs)};
}

// PCR := SHA-256(PCR || digest).
Bytes Extend(const Bytes& pcr, const Bytes& digest) {
  Bytes input = pcr;
  input.insert(input.end(), digest.begin(), digest.end());
  Bytes out(32);
  unsigned int length = 0;
  EXPECT_EQ(EVP_Digest(input.data(), input.size(), out.data(), &length, EVP_sha256(), nullptr), 1);
  return out;
}

// What the unit measured and reports: its log, the selection and values it quotes, its counters.
struct Boot {
  std::vector<LogEvent> events = GoldenEvents();
  PcrSelection quoted = Selection({0, 4, 7});
  std::function<void(PcrValues&)> after_boot;  // extends PCRs past the log
  std::uint32_t reset_count = 5;
  std::uint32_t restart_count = 0;
};

TPMT_SIGNATURE SignAsTpm(EVP_PKEY& key, const Bytes& message) {
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, &key), 1);
  std::size_t length = 0;
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &length, message.data(), message.size()), 1);
  Bytes der(length);
  EXPECT_EQ(EVP_DigestSign(ctx.get(), der.data(), &length, message.data(), message.size()), 1);
  const unsigned char* p = der.data();
  ossl::EcdsaSig parsed(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(length)));
  TPMT_SIGNATURE sig{};
  sig.sigAlg = TPM2_ALG_ECDSA;
  sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
  sig.signature.ecdsa.signatureR.size = 32;
  sig.signature.ecdsa.signatureS.size = 32;
  BN_bn2binpad(ECDSA_SIG_get0_r(parsed.get()), sig.signature.ecdsa.signatureR.buffer, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(parsed.get()), sig.signature.ecdsa.signatureS.buffer, 32);
  return sig;
}

class AttestationVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(X509_STORE_add_cert(store_.get(), ca_.cert.get()), 1);
    iak_certificate_ = ca_.IakCertificate(*iak_, kSerial);
    EventLog log{{kAlgSha256}, GoldenEvents()};
    policy_ = PolicyFromLog(log, "srx4300-golden", Selection({0, 4, 7}));
  }

  AttestationContext Context() {
    return AttestationContext{kSerial, nonce_, exporter_, store_.get(), &policy_, &counters_};
  }

  // The evidence of `boot`, its quote made by `edit_quote` from the honest one and signed by `signer`.
  AttestationEvidence Evidence(const Boot& boot, const std::function<void(TPMS_ATTEST&)>& edit_quote = {},
                               EVP_PKEY* signer = nullptr) {
    AttestationEvidence evidence;
    evidence.event_log = EncodeEventLog(boot.events);
    auto log = ParseEventLog(evidence.event_log);
    EXPECT_TRUE(log.has_value());
    auto replay = ReplayEventLog(*log);
    EXPECT_TRUE(replay.has_value());
    PcrValues values;
    for (std::uint32_t pcr : boot.quoted.pcrs) {
      values[pcr] = replay->contains(pcr) ? replay->at(pcr) : Bytes(32, 0);
    }
    if (boot.after_boot) boot.after_boot(values);
    evidence.pcrs = boot.quoted;
    evidence.pcr_values = values;

    TPMS_ATTEST attest{};
    attest.magic = TPM2_GENERATED_VALUE;
    attest.type = TPM2_ST_ATTEST_QUOTE;
    Bytes binding = SessionBinding(nonce_, exporter_);
    attest.extraData.size = static_cast<UINT16>(binding.size());
    std::memcpy(attest.extraData.buffer, binding.data(), binding.size());
    attest.clockInfo.clock = 123456;
    attest.clockInfo.resetCount = boot.reset_count;
    attest.clockInfo.restartCount = boot.restart_count;
    attest.clockInfo.safe = TPM2_YES;
    attest.attested.quote.pcrSelect = boot.quoted.ToTpml();
    auto digest = PcrCompositeDigest(boot.quoted, values);
    EXPECT_TRUE(digest.has_value());
    attest.attested.quote.pcrDigest.size = static_cast<UINT16>(digest->size());
    std::memcpy(attest.attested.quote.pcrDigest.buffer, digest->data(), digest->size());
    if (edit_quote) edit_quote(attest);
    evidence.quote = MarshalAttest(attest);
    evidence.signature = MarshalSignature(SignAsTpm(signer ? *signer : *iak_, evidence.quote));
    evidence.iak_certificate = iak_certificate_;
    return evidence;
  }

  // The verdict's failures as "id: evidence".
  static std::vector<std::string> Failures(const AttestationVerdict& verdict) {
    std::vector<std::string> out;
    for (const Finding& f : verdict.findings.findings()) {
      if (f.severity == Severity::kFailure) out.push_back(f.id + ": " + f.evidence);
    }
    return out;
  }

  TestCa ca_{"Factory CA"};
  ossl::UniquePtr<X509_STORE> store_{X509_STORE_new()};
  ossl::PKey iak_ = NewKey();
  Bytes iak_certificate_;
  AttestPolicy policy_;
  BootCounters counters_;
  Bytes nonce_ = Bytes(32, 0x11);
  Bytes exporter_ = Bytes(32, 0x22);
};

TEST_F(AttestationVerifierTest, AGoodUnitIsAttested) {
  AttestationVerdict verdict = VerifyAttestation(Evidence(Boot{}), Context());
  EXPECT_TRUE(verdict.attested) << verdict.reason;
  EXPECT_EQ(verdict.reason, "ok");
  EXPECT_EQ(verdict.policy, "srx4300-golden");
  EXPECT_TRUE(verdict.findings.findings().empty());
  nlohmann::json json = verdict.ToJson();
  EXPECT_EQ(json["verdict"], "attested");
  EXPECT_EQ(json["policy"], "srx4300-golden");
  EXPECT_EQ(json["reason"], "ok");
  EXPECT_TRUE(json["findings"].empty());
}

TEST_F(AttestationVerifierTest, ACertificateThatDoesNotParseIsRefused) {
  AttestationEvidence evidence = Evidence(Boot{});
  evidence.iak_certificate = Bytes{0x30, 0x03, 0x02, 0x01, 0x00};
  AttestationVerdict verdict = VerifyAttestation(evidence, Context());
  EXPECT_FALSE(verdict.attested);
  EXPECT_THAT(verdict.reason, StartsWith("iak-certificate: the IAK certificate does not parse: "));
  EXPECT_THAT(Failures(verdict), ElementsAre(StartsWith("iak-certificate: ")));
  EXPECT_EQ(verdict.ToJson()["verdict"], "refused");
}

TEST_F(AttestationVerifierTest, AnIakFromAnotherFactoryIsRefused) {
  TestCa other("Other CA");
  AttestationEvidence evidence = Evidence(Boot{});
  evidence.iak_certificate = other.IakCertificate(*iak_, kSerial);
  AttestationVerdict verdict = VerifyAttestation(evidence, Context());
  EXPECT_THAT(
      Failures(verdict),
      ElementsAre("iak-certificate: the IAK certificate \"CN=SRX4300,serialNumber=CW0001\" does not chain to "
                  "the factory CA: unable to get local issuer certificate (depth 0)"));
}

// An IDevID key is not restricted: it signs any bytes, a TPMS_ATTEST made up by its holder too.
TEST_F(AttestationVerifierTest, AnIdevidCertificateCannotVouchForAQuote) {
  AttestationEvidence evidence = Evidence(Boot{});
  evidence.iak_certificate = ca_.IakCertificate(*iak_, kSerial, /*iak_policy=*/false);
  AttestationVerdict verdict = VerifyAttestation(evidence, Context());
  EXPECT_FALSE(verdict.attested);
  EXPECT_THAT(Failures(verdict),
              ElementsAre("iak-certificate: the certificate \"CN=SRX4300,serialNumber=CW0001\" is not an IAK "
                          "certificate: it lacks the policy 2.23.133.11.1.3 (verifiedTPMRestricted) of a "
                          "restricted key verified in the TPM"));
}

TEST_F(AttestationVerifierTest, AnIakOfAnotherSerialIsRefused) {
  AttestationEvidence evidence = Evidence(Boot{});
  evidence.iak_certificate = ca_.IakCertificate(*iak_, "CW0002");
  AttestationVerdict verdict = VerifyAttestation(evidence, Context());
  EXPECT_THAT(
      Failures(verdict),
      ElementsAre("iak-serial: the IAK certificate names serial \"CW0002\", the TLS identity \"CW0001\""));
}

TEST_F(AttestationVerifierTest, AQuoteThatDoesNotParseIsRefused) {
  AttestationEvidence evidence = Evidence(Boot{});
  evidence.quote.resize(evidence.quote.size() - 3);
  evidence.signature = MarshalSignature(SignAsTpm(*iak_, evidence.quote));
  AttestationVerdict verdict = VerifyAttestation(evidence, Context());
  EXPECT_THAT(Failures(verdict), ElementsAre(StartsWith("quote-malformed: the quote (")));
}

TEST_F(AttestationVerifierTest, AStructureTheTpmDidNotGenerateIsRefused) {
  AttestationVerdict forged =
      VerifyAttestation(Evidence(Boot{}, [](TPMS_ATTEST& a) { a.magic = 0x12345678; }), Context());
  EXPECT_THAT(Failures(forged),
              ElementsAre("quote-type: magic 0x12345678 is not TPM_GENERATED_VALUE (0xff544347)"));
  AttestationVerdict certify =
      VerifyAttestation(Evidence(Boot{}, [](TPMS_ATTEST& a) { a.type = TPM2_ST_ATTEST_CERTIFY; }), Context());
  EXPECT_THAT(Failures(certify),
              ElementsAre(StartsWith("quote-type: type 0x8017 is not TPM_ST_ATTEST_QUOTE (0x8018)")));
}

TEST_F(AttestationVerifierTest, AQuoteByAnotherKeyIsRefused) {
  ossl::PKey idevid = NewKey();
  AttestationVerdict verdict = VerifyAttestation(Evidence(Boot{}, {}, idevid.get()), Context());
  EXPECT_THAT(Failures(verdict),
              ElementsAre(StartsWith("quote-signature: the quote is not signed by the IAK of the "
                                     "certificate: the TPM signature does not verify")));
  AttestationEvidence garbled = Evidence(Boot{});
  garbled.signature = Bytes{0x00, 0x18};
  EXPECT_THAT(Failures(VerifyAttestation(garbled, Context())),
              ElementsAre(StartsWith("quote-signature: the signature does not parse: ")));
}

TEST_F(AttestationVerifierTest, AQuoteReplayedFromAnEarlierChallengeIsRefused) {
  AttestationEvidence evidence = Evidence(Boot{});
  nonce_ = Bytes(32, 0x33);  // the next challenge
  AttestationVerdict verdict = VerifyAttestation(evidence, Context());
  EXPECT_THAT(Failures(verdict),
              ElementsAre("qualifying-data: the quote's qualifying data " +
                          Hex(SessionBinding(Bytes(32, 0x11), exporter_)) + " is not " +
                          Hex(SessionBinding(nonce_, exporter_)) +
                          ", the binding of this challenge's nonce to this TLS session: a quote "
                          "made for another challenge or session"));
}

TEST_F(AttestationVerifierTest, AQuoteRelayedFromAnotherSessionIsRefused) {
  AttestationEvidence evidence = Evidence(Boot{});
  exporter_ = Bytes(32, 0x44);  // the same nonce, another TLS session
  EXPECT_THAT(Failures(VerifyAttestation(evidence, Context())), ElementsAre(StartsWith("qualifying-data: ")));
}

TEST_F(AttestationVerifierTest, ASelectionNarrowerThanThePolicysIsRefused) {
  Boot boot;
  boot.quoted = Selection({0, 4});
  AttestationVerdict verdict = VerifyAttestation(Evidence(boot), Context());
  EXPECT_THAT(Failures(verdict),
              ElementsAre("pcr-selection: the quote selects sha256:0,4, which does not cover policy "
                          "\"srx4300-golden\"'s sha256:0,4,7",
                          "pcr-selection: the evidence selects sha256:0,4, which does not cover policy "
                          "\"srx4300-golden\"'s sha256:0,4,7"));
}

TEST_F(AttestationVerifierTest, ValuesThatAreNotTheQuotedOnesAreRefused) {
  AttestationEvidence evidence =
      Evidence(Boot{}, [](TPMS_ATTEST& a) { a.attested.quote.pcrDigest.buffer[0] ^= 1; });
  AttestationVerdict verdict = VerifyAttestation(evidence, Context());
  EXPECT_THAT(Failures(verdict), ElementsAre(StartsWith("pcr-digest: the quote's PCR digest is ")));
  AttestationEvidence wider = Evidence(Boot{});
  wider.pcrs = Selection({0, 4, 7, 9});
  wider.pcr_values[9] = Bytes(32, 0);
  EXPECT_THAT(
      Failures(VerifyAttestation(wider, Context())),
      ElementsAre("pcr-selection: the quote selects sha256:0,4,7, the values sent are for sha256:0,4,7,9"));
}

TEST_F(AttestationVerifierTest, AMalformedEventLogIsRefused) {
  AttestationEvidence evidence = Evidence(Boot{});
  evidence.event_log.resize(evidence.event_log.size() - 5);
  AttestationVerdict verdict = VerifyAttestation(evidence, Context());
  EXPECT_THAT(Failures(verdict), ElementsAre(StartsWith("event-log: the event log (")));
}

TEST_F(AttestationVerifierTest, APcrExtendedAfterBootIsRefusedNamingThePcr) {
  Boot boot;
  Bytes logged;
  boot.after_boot = [&](PcrValues& values) {
    logged = values[4];
    values[4] = Extend(values[4], Bytes(32, 0x99));
  };
  AttestationEvidence evidence = Evidence(boot);
  AttestationVerdict verdict = VerifyAttestation(evidence, Context());
  EXPECT_THAT(Failures(verdict), ElementsAre("event-log-replay: PCR 4: the log gives " + Hex(logged) +
                                             ", the unit sent " + Hex(evidence.pcr_values.at(4))));
}

TEST_F(AttestationVerifierTest, AKernelThePolicyDoesNotAllowIsRefusedNamingTheEvent) {
  Boot boot;
  boot.events[3].digests[kAlgSha256] = Bytes(32, 0x12);
  AttestationVerdict verdict = VerifyAttestation(Evidence(boot), Context());
  EXPECT_THAT(
      Failures(verdict),
      ElementsAre("event-not-allowed: event 4 (PCR 4, EV_EFI_BOOT_SERVICES_APPLICATION \"vmlinuz-6.1\") "
                  "digest " +
                  Hex(Bytes(32, 0x12)) + " is not in policy \"srx4300-golden\""));
  EXPECT_THAT(verdict.reason, StartsWith("event-not-allowed: event 4 "));
}

TEST_F(AttestationVerifierTest, ARebootIsAWarningAndARollbackIsRefused) {
  Boot boot;
  EXPECT_TRUE(VerifyAttestation(Evidence(boot), Context()).attested);
  boot.reset_count = 6;
  AttestationVerdict rebooted = VerifyAttestation(Evidence(boot), Context());
  EXPECT_TRUE(rebooted.attested);
  ASSERT_EQ(rebooted.findings.findings().size(), 1u);
  EXPECT_EQ(rebooted.findings.findings()[0].id, "reboot");
  EXPECT_EQ(rebooted.findings.findings()[0].severity, Severity::kWarning);
  EXPECT_EQ(
      rebooted.findings.findings()[0].evidence,
      "serial \"CW0001\": the TPM reports resetCount 6 restartCount 0, after resetCount 5 restartCount 0 "
      "before: the unit rebooted");
  boot.reset_count = 4;
  boot.restart_count = 9;
  AttestationVerdict rolled_back = VerifyAttestation(Evidence(boot), Context());
  EXPECT_THAT(
      Failures(rolled_back),
      ElementsAre("counter-rollback: serial \"CW0001\": the TPM reports resetCount 4 restartCount 9, after "
                  "resetCount 6 restartCount 0 before: its state was rolled back"));
}

TEST_F(AttestationVerifierTest, AForgedQuoteDoesNotMoveTheCounters) {
  Boot boot;
  boot.reset_count = 1000;
  ossl::PKey forger = NewKey();
  EXPECT_FALSE(VerifyAttestation(Evidence(boot, {}, forger.get()), Context()).attested);
  EXPECT_EQ(counters_.Last(kSerial), std::nullopt);
  boot.reset_count = 5;
  EXPECT_TRUE(VerifyAttestation(Evidence(boot), Context()).attested);
}

TEST_F(AttestationVerifierTest, EmptyEvidenceIsRefusedWithoutACrash) {
  AttestationVerdict verdict = VerifyAttestation(AttestationEvidence{}, Context());
  EXPECT_FALSE(verdict.attested);
  EXPECT_THAT(verdict.reason, StartsWith("iak-certificate: "));
  AttestationVerdict bare = VerifyAttestation(AttestationEvidence{}, AttestationContext{});
  EXPECT_FALSE(bare.attested);
  EXPECT_EQ(bare.policy, "");
  AttestationVerdict no_ca = VerifyAttestation(
      Evidence(Boot{}), AttestationContext{kSerial, nonce_, exporter_, nullptr, nullptr, nullptr});
  EXPECT_THAT(Failures(no_ca), ::testing::Contains(StartsWith("iak-certificate: no factory CA")));
}

TEST(BootCounters, GrowOnRebootAndRefuseToGoBack) {
  BootCounters counters;
  using Change = BootCounters::Change;
  EXPECT_EQ(counters.Observe("a", {5, 2}), Change::kFirst);
  EXPECT_EQ(counters.Observe("a", {5, 2}), Change::kSame);
  EXPECT_EQ(counters.Observe("a", {5, 3}), Change::kReboot);  // TPM Restart or Resume
  EXPECT_EQ(counters.Observe("a", {6, 0}), Change::kReboot);  // TPM Reset: restartCount starts again
  EXPECT_EQ(counters.Observe("a", {5, 9}), Change::kRollback);
  EXPECT_EQ(counters.Observe("a", {6, 0}), Change::kSame);   // the rollback was not remembered
  EXPECT_EQ(counters.Observe("b", {0, 0}), Change::kFirst);  // per serial
  EXPECT_EQ(counters.Last("a")->reset_count, 6u);
  EXPECT_EQ(counters.Last("c"), std::nullopt);
}

}  // namespace
}  // namespace idevid
