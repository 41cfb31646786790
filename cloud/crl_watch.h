// The factory's CRL as the cloud holds it: loaded from a file and checked against the factory CA,
// read again when the file changes (its inode, size or modification time, looked at before each
// connection is judged) or when asked (SIGHUP). A new CRL that does not verify is not taken: the
// one held stays, and the reason is logged.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/openssl_ptr.h"
#include "core/result.h"
#include "core/x509_crl.h"

namespace idevid {

// One CRL the cloud took, with what it states.
struct HeldCrl {
  ossl::Crl crl;
  CrlContent content;
};

class CrlWatch {
 public:
  // Reads `path` and checks it against `cas` (the factory CA bundle; copied). kConfig naming the
  // file when it cannot be read, is not a CRL, or does not verify (another signer, stale).
  static Result<std::unique_ptr<CrlWatch>> Load(const std::filesystem::path& path,
                                                const std::vector<const X509*>& cas);

  // The CRL held now; never null. Thread-safe; the CRL stays alive while the pointer is held.
  std::shared_ptr<const HeldCrl> Current() const;
  // Reads the file again when it changed since it was last read (a stat: cheap); a bad new one is
  // logged and kept out, and not read again until the file changes again. Thread-safe: callers
  // that see the change together wait for the one that reads it.
  void RefreshIfChanged();
  // Reads the file again whatever its state. kConfig (the CRL held stays) as Load. Thread-safe.
  [[nodiscard]] Result<void> Reload();

 private:
  // What identifies one version of the file.
  struct FileStamp {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    timespec modified{};
    bool operator==(const FileStamp& other) const;
  };
  static std::optional<FileStamp> Stamp(const std::filesystem::path& path);
  Result<std::shared_ptr<const HeldCrl>> ReadChecked() const;

  CrlWatch() = default;
  std::filesystem::path path_;
  std::vector<ossl::Cert> cas_;
  mutable std::mutex mutex_;  // guards current_ and seen_
  std::shared_ptr<const HeldCrl> current_;
  std::optional<FileStamp> seen_;  // the version of the file last read, taken or not
  std::mutex reload_mutex_;        // one reader of the file at a time
};

}  // namespace idevid
