// PCRs (TPM 2.0 Part 3 §22): extend, read and quote (Part 3 §18.4), and the selection of PCRs
// the harness speaks of as "sha256:0,1,2,7".
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tss2/tss2_tpm2_types.h>

#include "core/result.h"
#include "core/tpm_attest.h"
#include "core/tpm_context.h"
#include "core/x509.h"

namespace idevid {

// PCR values of one bank by PCR index.
using PcrValues = std::map<std::uint32_t, Bytes>;

// A set of PCRs of one bank, sorted and without repeats.
struct PcrSelection {
  std::uint16_t hash = TPM2_ALG_SHA256;
  std::vector<std::uint32_t> pcrs;

  // "sha256:0,1,2,7".
  std::string ToString() const;
  // The TPML_PCR_SELECTION with this one bank (sizeofSelect 3).
  TPML_PCR_SELECTION ToTpml() const;
  // True when every PCR of `other` (same bank) is in this selection.
  bool Covers(const PcrSelection& other) const;
  bool operator==(const PcrSelection&) const = default;
};

// Parses "sha256:0,1,2,7" (bank sha256 only; PCRs 0-23, no repeats, at least one). Fails with
// kConfig/kSyntax naming what is wrong.
Result<PcrSelection> ParsePcrSelection(std::string_view text);

// The selection a TPM reported (e.g. in a quote). Fails with kConfig/kSyntax for more than one
// bank, a bank other than SHA-256, or a bitmap over 3 bytes.
Result<PcrSelection> PcrSelectionFromTpml(const TPML_PCR_SELECTION& tpml);

// The digest a quote signs over the selected values (Part 3 §18.4.1): SHA-256 of the values in
// the selection's order. Fails with kConfig/kSyntax when a selected PCR has no value or a value
// is not 32 bytes.
Result<Bytes> PcrCompositeDigest(const PcrSelection& selection, const PcrValues& values);

// TPM2_PCR_Extend of the SHA-256 bank of `pcr` with `digest` (32 bytes), with empty auth (PCRs
// 0-15 need no more). Fails with kUsage for a digest of another size, the TPM's error otherwise.
Result<void> ExtendPcr(const TpmContext& tpm, std::uint32_t pcr, std::span<const std::uint8_t> digest);

// TPM2_PCR_Read of every selected PCR (as many commands as the TPM needs: it returns at most 8
// per call). Fails with the TPM's error, kTss/... when the TPM leaves a selected PCR out.
Result<PcrValues> ReadPcrs(const TpmContext& tpm, const PcrSelection& selection);

// TPM2_Quote by `signer` (empty auth; a restricted key such as the IAK, or any signing key) over
// `selection` with `qualifying_data` (at most 64 bytes) as extraData, in the signer's scheme
// (ECDSA-SHA256 / RSASSA-SHA256). Fails with kUsage for oversize qualifying data, the TPM's
// error otherwise.
Result<Attestation> Quote(const TpmContext& tpm, ESYS_TR signer, const PcrSelection& selection,
                          std::span<const std::uint8_t> qualifying_data);

}  // namespace idevid
