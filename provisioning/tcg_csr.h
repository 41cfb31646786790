// TCG-CSR-IDEVID: the certificate request of TCG "TPM 2.0 Keys for Device Identity and
// Attestation" v1.0 rev 12 §13.1, byte for byte. Every integer is 4 bytes big-endian.
//
//   TCG_CSR_IDEVID          structVer (0x00000100) | contentSz | sigSz |
//                           csrContents (TCG_CSR_IDEVID_CONTENT, contentSz bytes) |
//                           signature (sigSz bytes: a marshalled TPMT_SIGNATURE by the IDevID
//                           over csrContents, hashed with hashAlgoId)
//   TCG_CSR_IDEVID_CONTENT  structVer (0x00000100) | hashAlgoId (a TPM_ALG_ID) |
//                           hashSz (its digest size) |
//                           prodModelSz | prodSerialSz | prodCaDataSz | bootEvntLogSz |
//                           ekCertSz | attestPubSz | atCreateTktSz | atCertifyInfoSz |
//                           atCertifyInfoSignatureSz | signingPubSz | sgnCertifyInfoSz |
//                           sgnCertifyInfoSignatureSz | padSz |
//                           then the fields in that order, then padSz bytes of zero (0-15) so
//                           that the content is a multiple of 16 bytes long.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/result.h"
#include "core/x509.h"

namespace idevid {

inline constexpr std::uint32_t kTcgCsrVersion = 0x00000100;
// The largest request the parser accepts; a real one is 2-4 KiB (the EK certificate dominates).
inline constexpr std::size_t kTcgCsrMaxBytes = 64 * 1024;

// The content of a TCG-CSR-IDEVID, each field as its bytes. Public areas are marshalled
// TPMT_PUBLIC, certify infos marshalled TPMS_ATTEST, signatures marshalled TPMT_SIGNATURE.
struct TcgCsrContent {
  std::uint32_t hash_algorithm = 0x000B;  // TPM_ALG_SHA256
  std::string product_model;              // prodModel
  std::string product_serial;             // prodSerial
  Bytes product_ca_data;                  // prodCaData (optional, may be empty)
  Bytes boot_event_log;                   // bootEvntLog (optional, may be empty)
  Bytes ek_certificate;                   // ekCert: DER
  Bytes iak_public;                       // attestPub
  Bytes iak_creation_ticket;              // atCreateTkt (optional)
  Bytes iak_certify_info;                 // atCertifyInfo (optional)
  Bytes iak_certify_signature;            // atCertifyInfoSig (optional)
  Bytes idevid_public;                    // signingPub
  Bytes idevid_certify_info;              // sgnCertifyInfo: TPM2_Certify of the IDevID by the IAK
  Bytes idevid_certify_signature;         // sgnCertifyInfoSig: the IAK's signature over it
};

// A parsed request: its content, the exact content bytes the signature covers, and the signature.
struct TcgCsr {
  TcgCsrContent content;
  Bytes signed_bytes;  // csrContents as received
  Bytes signature;     // marshalled TPMT_SIGNATURE
};

// The encoded TCG_CSR_IDEVID_CONTENT (with its padding). Fails with kUsage/kInvalidArgument when
// the hash algorithm is not SHA-256, SHA-384 or SHA-512, or a field exceeds kTcgCsrMaxBytes.
Result<Bytes> EncodeTcgCsrContent(const TcgCsrContent& content);

// The encoded TCG_CSR_IDEVID around already encoded content and its signature.
Bytes EncodeTcgCsr(std::span<const std::uint8_t> content, std::span<const std::uint8_t> signature);

// Parses a whole TCG_CSR_IDEVID; every length is hostile. Fails with kConfig/kSyntax naming the
// field and the offset when a version, a length or the padding is wrong, a field runs past its
// container, or bytes are left over; kConfig/kLimit when the request exceeds kTcgCsrMaxBytes.
Result<TcgCsr> ParseTcgCsr(std::span<const std::uint8_t> bytes);

}  // namespace idevid
