#include "cloud/crl_watch.h"

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "core/utc_time.h"

namespace idevid {

bool CrlWatch::FileStamp::operator==(const FileStamp& other) const {
  return device == other.device && inode == other.inode && size == other.size &&
         modified.tv_sec == other.modified.tv_sec && modified.tv_nsec == other.modified.tv_nsec;
}

std::optional<CrlWatch::FileStamp> CrlWatch::Stamp(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileStamp{st.st_dev, st.st_ino, st.st_size, st.st_mtim};
}

Result<std::shared_ptr<const HeldCrl>> CrlWatch::ReadChecked() const {
  auto read = [&]() -> Result<std::shared_ptr<const HeldCrl>> {
    IDEVID_ASSIGN_OR_RETURN(ossl::Crl crl, LoadCrlFile(path_));
    std::vector<const X509*> cas;
    for (const auto& ca : cas_) cas.push_back(ca.get());
    IDEVID_TRY(CheckCrl(*crl, cas, CrlClock::now()));
    IDEVID_ASSIGN_OR_RETURN(CrlContent content, ReadCrl(*crl));
    return std::make_shared<const HeldCrl>(HeldCrl{std::move(crl), std::move(content)});
  };
  auto held = read();
  if (!held) {
    return ConfigError(ConfigCode::kFile,
                       fmt::format("the CRL {} is not taken: {}", path_.string(), held.error().message()));
  }
  return held;
}

Result<std::unique_ptr<CrlWatch>> CrlWatch::Load(const std::filesystem::path& path,
                                                 const std::vector<const X509*>& cas) {
  std::unique_ptr<CrlWatch> watch(new CrlWatch());
  watch->path_ = path;
  for (const X509* ca : cas) {
    X509_up_ref(const_cast<X509*>(ca));
    watch->cas_.emplace_back(const_cast<X509*>(ca));
  }
  watch->seen_ = Stamp(path);
  IDEVID_ASSIGN_OR_RETURN(watch->current_, watch->ReadChecked());
  return watch;
}

std::shared_ptr<const HeldCrl> CrlWatch::Current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

void CrlWatch::RefreshIfChanged() {
  auto unchanged = [&](const std::optional<FileStamp>& stamp) {
    std::lock_guard lock(mutex_);
    return stamp == seen_;
  };
  if (unchanged(Stamp(path_))) return;
  // Connections that see the change together wait for the one that reads it, and are judged by
  // what it read.
  std::lock_guard reading(reload_mutex_);
  auto stamp = Stamp(path_);
  if (unchanged(stamp)) return;
  {
    std::lock_guard lock(mutex_);
    seen_ = stamp;  // a bad version is not tried again until the file changes
  }
  if (!stamp) {
    spdlog::warn("the CRL {} is gone; the CRL number {} stays in force", path_.string(),
                 Current()->content.number);
    return;
  }
  auto held = ReadChecked();
  if (!held) {
    spdlog::warn("{}; the CRL number {} stays in force", held.error().message(), Current()->content.number);
    return;
  }
  spdlog::info("CRL {} taken: number {}, {} entries, next update {}", path_.string(), (*held)->content.number,
               (*held)->content.entries.size(), UtcTimestamp((*held)->content.next_update));
  std::lock_guard lock(mutex_);
  current_ = std::move(*held);
}

Result<void> CrlWatch::Reload() {
  std::lock_guard reading(reload_mutex_);
  auto stamp = Stamp(path_);
  {
    std::lock_guard lock(mutex_);
    seen_ = stamp;
  }
  IDEVID_ASSIGN_OR_RETURN(auto held, ReadChecked());
  std::lock_guard lock(mutex_);
  current_ = std::move(held);
  return {};
}

}  // namespace idevid
