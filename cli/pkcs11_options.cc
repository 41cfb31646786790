#include "cli/pkcs11_options.h"

#include "cli/option_checks.h"
#include "core/pkcs11_pin.h"
#include "core/pkcs11_token.h"

namespace idevid::cli {

void AddPkcs11PinFileOption(CLI::App& cmd, std::string& pin_file) {
  cmd.add_option(
         "--pkcs11-pin-file", pin_file,
         std::string("For a factory whose CA keys are in a PKCS#11 token: the file whose first line is "
                     "the token's user PIN (default: the environment variable ") +
             kPkcs11PinVariable + ")")
      ->check(ExistingFileCheck());
}

void AddPkcs11InitOptions(CLI::App& cmd, Pkcs11InitArgs& args) {
  auto* uri =
      cmd.add_option("--pkcs11", args.uri,
                     "Generate the CA keys inside this PKCS#11 token instead of files: an RFC 7512 URI, "
                     "e.g. 'pkcs11:token=Factory;object=issuing-ca' (the root CA's key is "
                     "OBJECT-root)");
  cmd.add_option("--pkcs11-module", args.module,
                 "The PKCS#11 module (default: p11-kit's proxy " + DefaultPkcs11Module() +
                     ", which loads the registered modules)")
      ->needs(uri);
  AddPkcs11PinFileOption(cmd, args.pin_file);
}

}  // namespace idevid::cli
