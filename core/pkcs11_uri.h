// A PKCS#11 URI (RFC 7512) naming a token and a key in it, parsed by p11-kit: "pkcs11:token=
// Factory;object=issuing-ca" (or serial=, id=). The parsed form answers which token and which
// objects it names; no PIN is ever taken from it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <p11-kit/uri.h>

#include "core/result.h"
#include "core/x509.h"

namespace idevid {

// A CK_TOKEN_INFO / CK_SLOT_INFO text field: blank-padded, not NUL-terminated (PKCS#11 v2.40
// 3.2); p11-kit leaves the fields a URI does not name all NUL. Both paddings are cut.
std::string PaddedText(const unsigned char* field, std::size_t size);

class Pkcs11Uri {
 public:
  // Parses `text` with p11-kit. kUsage kInvalidArgument naming the text (escaped) when it is not
  // a PKCS#11 URI, names no token (token= or serial=), no key (object= or id=), or carries a PIN
  // (pin-value=, pin-source=): a PIN comes from IDEVID_PKCS11_PIN or a PIN file only.
  static Result<Pkcs11Uri> Parse(std::string_view text);

  // The URI as given.
  const std::string& text() const { return text_; }
  // Whether a token's CK_TOKEN_INFO has the label, serial, manufacturer and model the URI names.
  bool MatchesToken(const CK_TOKEN_INFO& token) const;
  // The token the URI names, for messages ("token \"Factory\"").
  std::string TokenDescription() const;
  // The key's CKA_LABEL (object=) and CKA_ID (id=), when given.
  std::optional<std::string> object() const { return object_; }
  std::optional<Bytes> id() const { return id_; }

 private:
  struct Free {
    void operator()(P11KitUri* uri) const { p11_kit_uri_free(uri); }
  };
  std::string text_;
  std::shared_ptr<P11KitUri> uri_;  // read-only after parsing, so copies share it
  std::optional<std::string> object_;
  std::optional<Bytes> id_;
};

}  // namespace idevid
