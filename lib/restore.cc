#include "lib/restore.h"

#include <csignal>

#include <dirent.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "lib/pack.h"
#include "lib/snapshot_reader.h"

namespace sqlbak {
namespace {

struct PageSlot {
  uint32_t entry;
  uint32_t page;
};

std::string random_hex() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

Status pwrite_all(int fd, const char* data, size_t size, off_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "cannot write the restored image");
    data += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return Status::Ok();
}

// The hash each written page must have, for pages written before their hash
// was checked. Each page is set by the one thread that restores its pack.
class PendingPageHashes {
 public:
  static constexpr uint32_t kNoPack = UINT32_MAX;

  // Forgets what an earlier rebuild (of a manifest since replaced) expected.
  void reset(const Manifest& m) {
    packs_.clear();
    for (const ManifestPack& p : m.packs) packs_.push_back(p.id);
    page_size_ = m.page_size;
    hash_.assign(m.page_count, Digest{});
    pack_.assign(m.page_count, kNoPack);
  }
  void expect(uint32_t page, const Digest& hash, uint32_t pack) {
    hash_[page - 1] = hash;
    pack_[page - 1] = pack;
  }

  // Reads the image back from FD and checks every page that came from a pack.
  Status check(int fd) const {
    const size_t pages_per_read = std::max<size_t>(1, (1u << 20) / std::max<uint32_t>(page_size_, 1));
    std::string buffer(pages_per_read * page_size_, '\0');
    for (size_t first = 0; first < hash_.size(); first += pages_per_read) {
      const size_t count = std::min(pages_per_read, hash_.size() - first);
      const size_t bytes = count * page_size_;
      const off_t offset = static_cast<off_t>(first) * page_size_;
      for (size_t done = 0; done < bytes;) {
        ssize_t n = ::pread(fd, buffer.data() + done, bytes - done, offset + static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status::FromErrno(errno, "cannot read back the rebuilt image");
        if (n == 0) return Status::IOError("the rebuilt image is shorter than it was written");
        done += static_cast<size_t>(n);
      }
      for (size_t i = 0; i < count; ++i) {
        const uint32_t pack = pack_[first + i];
        if (pack == kNoPack) continue;
        if (sha256(buffer.data() + i * page_size_, page_size_) != hash_[first + i])
          return Status::Corruption("object " + Repository::pack_key(packs_[pack]) + ": page " +
                                    std::to_string(first + i + 1) + " does not match its SHA-256");
      }
    }
    return Status::Ok();
  }

 private:
  std::vector<Digest> packs_;
  uint32_t page_size_ = 0;
  std::vector<Digest> hash_;
  std::vector<uint32_t> pack_;
};

// Restores the pages of one pack (number PACK_NUMBER in M): reads and checks
// the index and the pack, then writes every page the backup takes from it,
// each checked against its hash first, or afterwards through PENDING.
Status restore_pack(const Repository& repo, const Manifest& m, uint32_t pack_number,
                    std::vector<PageSlot>& slots, int fd, PendingPageHashes* pending) {
  const ManifestPack& pack = m.packs[pack_number];
  const std::string index_key = Repository::index_key(pack.id);
  const std::string pack_key = Repository::pack_key(pack.id);
  std::string index_bytes, pack_bytes;
  SQLBAK_RETURN_IF_ERROR(repo.store().get(index_key, &index_bytes).WithContext("object " + index_key));
  if (sha256(index_bytes) != pack.index_sha256)
    return Status::Corruption("object " + index_key + ": SHA-256 mismatch (the object is damaged)");
  SQLBAK_RETURN_IF_ERROR(repo.store().get(pack_key, &pack_bytes).WithContext("object " + pack_key));
  if (sha256(pack_bytes) != pack.id)
    return Status::Corruption("object " + pack_key + ": SHA-256 mismatch (the object is damaged)");
  auto entries = decode_pack_index(index_bytes);
  if (!entries.ok()) return entries.status().WithContext("object " + index_key);

  std::sort(slots.begin(), slots.end(), [](const PageSlot& a, const PageSlot& b) {
    return a.entry != b.entry ? a.entry < b.entry : a.page < b.page;
  });
  std::string block;
  uint64_t block_offset = UINT64_MAX;
  // Pages that follow each other both in the block and in the database (all
  // of a full backup's) go out in one pwrite: a 1 GiB restore would otherwise
  // make 262,144 system calls of 4 KiB.
  struct Run {
    const char* data = nullptr;
    size_t size = 0;
    off_t offset = 0;
  } run;
  auto flush_run = [&]() -> Status {
    Status st = run.size > 0 ? pwrite_all(fd, run.data, run.size, run.offset) : Status::Ok();
    run = Run{};
    return st;
  };
  for (const PageSlot& s : slots) {
    if (s.entry >= entries->size())
      return Status::Corruption("object " + index_key + " has no entry " + std::to_string(s.entry));
    const PackIndexEntry& e = (*entries)[s.entry];
    if (e.length != m.page_size)
      return Status::Corruption("object " + pack_key + ": entry " + std::to_string(s.entry) +
                                " is not a page of " + std::to_string(m.page_size) + " bytes");
    if (e.block_offset != block_offset) {
      SQLBAK_RETURN_IF_ERROR(flush_run());  // RUN points into the block
      Status st = decode_block(pack_bytes, e.block_offset, &block);
      if (!st.ok()) return st.WithContext("object " + pack_key);
      block_offset = e.block_offset;
    }
    if (static_cast<uint64_t>(e.offset_in_block) + e.length > block.size())
      return Status::Corruption("object " + pack_key + ": page lies outside its block");
    const char* page = block.data() + e.offset_in_block;
    if (pending != nullptr)
      pending->expect(s.page, e.hash, pack_number);
    else if (sha256(page, e.length) != e.hash)
      return Status::Corruption("object " + pack_key + ": page " + std::to_string(s.page) +
                                " does not match its SHA-256");
    const off_t offset = static_cast<off_t>(s.page - 1) * m.page_size;
    if (run.size > 0 && page == run.data + run.size && offset == run.offset + static_cast<off_t>(run.size)) {
      run.size += e.length;
      continue;
    }
    SQLBAK_RETURN_IF_ERROR(flush_run());
    run = Run{page, e.length, offset};
  }
  return flush_run();
}

Status fsync_parent(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "cannot open directory " + dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::FromErrno(err, "cannot fsync directory " + dir);
  return Status::Ok();
}

// How the check of a rebuilt image reads it.
enum class ImageAccess {
  kRead,  // through SQLite's page cache: memory stays small (sqlbakd's verify jobs)
  // Memory-mapped: the check runs about a third faster, and the pages it maps
  // count in the process's RSS (page cache, not new memory). For restores, a
  // short-lived command whose user waits for it.
  kMapped,
};

// Opens an image read-only without creating -wal/-shm next to it, whatever
// journal mode its header says.
Result<std::string> check_image(const std::string& path, VerifyMode mode, ImageAccess access) {
  sqlite3* db = nullptr;
  std::string uri = "file:" + path + "?immutable=1";
  int rc = sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::Corruption("cannot open the rebuilt image: " + msg);
  }
  // SQLite caps the mapping at its SQLITE_MAX_MMAP_SIZE (2 GiB in Debian's
  // build) and reads the rest as usual.
  if (access == ImageAccess::kMapped) sqlite3_exec(db, "PRAGMA mmap_size=1099511627776", nullptr, nullptr, nullptr);
  auto result = run_integrity_check(db, mode);
  sqlite3_close(db);
  return result;
}

// A rebuilt image in a temporary file that is removed unless kept.
class TempImage {
 public:
  explicit TempImage(std::string path) : path_(std::move(path)) {}
  ~TempImage() {
    if (fd_ >= 0) ::close(fd_);
    if (!kept_) ::unlink(path_.c_str());
  }
  // MODE is set exactly (fchmod), whatever the umask: the image holds the
  // whole database, and the file is renamed into place as it is.
  Status create(uint64_t size, mode_t mode = 0600) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) return Status::FromErrno(errno, "cannot create " + path_);
    if (::fchmod(fd_, mode) != 0) return Status::FromErrno(errno, "cannot set the mode of " + path_);
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      return Status::FromErrno(errno, "cannot size " + path_);
    return Status::Ok();
  }
  Status sync() {
    if (::fsync(fd_) != 0) return Status::FromErrno(errno, "cannot fsync " + path_);
    return Status::Ok();
  }
  Status close() {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return Status::FromErrno(errno, "cannot close " + path_);
    return Status::Ok();
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  void keep() { kept_ = true; }

 private:
  std::string path_;
  int fd_ = -1;
  bool kept_ = false;
};

// Writes the image of M into FD with THREADS threads. With PENDING, pages are
// written unchecked and PENDING learns the hash each must have.
Status rebuild_image_into(const Repository& repo, const Manifest& m, int fd, int threads,
                          PendingPageHashes* pending) {
  auto refs = decode_page_runs(m.runs, m.page_count, m.packs.size());
  if (!refs.ok()) return refs.status();
  std::vector<std::vector<PageSlot>> per_pack(m.packs.size());
  for (uint32_t i = 0; i < refs->size(); ++i) {
    const PageRef& r = (*refs)[i];
    if (r.pack != PageRef::kNoPack) per_pack[r.pack].push_back({r.entry, i + 1});
  }
  refs = Status::Ok();  // free the map; per_pack holds the same
  if (pending != nullptr) pending->reset(m);

  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    for (size_t p; (p = next.fetch_add(1)) < per_pack.size();) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!first_error.ok()) return;
      }
      if (per_pack[p].empty()) continue;
      Status st = restore_pack(repo, m, static_cast<uint32_t>(p), per_pack[p], fd, pending);
      std::vector<PageSlot>().swap(per_pack[p]);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = st;
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  return first_error;
}

// A prune may repack while a restore or verify reads: it replaces the
// manifest (same id) with one naming new packs, then deletes the old packs.
// A pack that went missing under a manifest that has since been replaced is
// that, not damage: rebuild once more from the manifest as it is now. Every
// page is still checked against its hash, so this can never mix two states.
Status rebuild_following_repack(const Repository& repo, const Manifest& m, int fd, const std::string& what,
                                PendingPageHashes* pending) {
  const int readers = repo.store().parallel_reads();
  Status st = rebuild_image_into(repo, m, fd, readers, pending);
  if (st.code() != ErrorCode::kNotFound) return st.WithContext(what);
  auto now = repo.read_manifest(ManifestRef{m.database, m.id, manifest_key(m.database, m.id)});
  if (!now.ok() || encode_manifest(*now) == encode_manifest(m)) return st.WithContext(what);
  return rebuild_image_into(repo, *now, fd, readers, pending).WithContext(what + " (re-read after a repack)");
}

// Rebuilds M into TMP, then runs the checks that need the whole image at
// once, side by side: SQLite's check (CHECK_IMAGE), the read-back of the
// pages whose hash the rebuild left to check, and, with SYNC, the fsync.
// The check of each page's hash would otherwise take a core away from the
// downloads and decompression, while SQLite's check, single-threaded, leaves
// one idle at the end: a third faster S3 restore of 1 GiB (bench/README.md).
// Errors naming an object come first.
Result<std::string> rebuild_and_check(const Repository& repo, const Manifest& m, TempImage& tmp,
                                      const std::string& what, uint64_t pending_page_limit, bool sync,
                                      const std::function<Result<std::string>()>& check_image) {
  std::optional<PendingPageHashes> pending;
  if (m.page_count <= pending_page_limit) pending.emplace();
  SQLBAK_RETURN_IF_ERROR(rebuild_following_repack(repo, m, tmp.fd(), what, pending ? &*pending : nullptr));
  Status synced, hashed;
  std::thread syncer, hasher;
  if (sync) syncer = std::thread([&] { synced = tmp.sync(); });
  if (pending) hasher = std::thread([&] { hashed = pending->check(tmp.fd()); });
  Result<std::string> check = std::string("ok");
  if (m.page_count > 0) check = check_image();
  if (syncer.joinable()) syncer.join();
  if (hasher.joinable()) hasher.join();
  SQLBAK_RETURN_IF_ERROR(hashed.WithContext(what));
  SQLBAK_RETURN_IF_ERROR(synced);
  SQLBAK_RETURN_IF_ERROR(tmp.close());
  if (!check.ok()) return check.status().WithContext(what);
  return check;
}

}  // namespace

Status rebuild_image(const Repository& repo, const Manifest& m, int fd, int threads) {
  return rebuild_image_into(repo, m, fd, threads, nullptr);
}

// Temporary images are named PREFIX<pid>-<random><suffix>. Removes those in
// DIR whose process is gone: what a restore or verify killed with SIGKILL
// left behind. Another live process's file is never touched.
void remove_dead_temporaries(const std::string& dir, const std::string& prefix) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
}

std::string temporary_name(const std::string& prefix) {
  return prefix + std::to_string(::getpid()) + "-" + random_hex();
}

Status restore_backup(const Repository& repo, const Manifest& m, const std::string& path, bool force,
                      uint64_t pending_page_limit) {
  const std::string what = "backup " + m.id;
  struct stat st {};
  // A new file is the restoring user's alone (0600); one replaced with --force
  // keeps its permissions, except that nobody else may write it.
  mode_t mode = 0600;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!force)
      return Status::InvalidArgument(path + " already exists; add --force to replace it");
    if (!S_ISREG(st.st_mode))
      return Status::InvalidArgument(path + " exists and is not a regular file; not replacing it");
    mode = (st.st_mode & 0777 & ~static_cast<mode_t>(S_IWOTH)) | S_IRUSR | S_IWUSR;
  }
  const std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  const std::string base = path.substr(path.rfind('/') + 1);
  if (base.empty()) return Status::InvalidArgument("'" + path + "' names a directory, not a file");
  const std::string prefix = "." + base + ".sqlbak-restore-";
  remove_dead_temporaries(dir, prefix);
  TempImage tmp(dir + "/" + temporary_name(prefix));
  SQLBAK_RETURN_IF_ERROR(tmp.create(static_cast<uint64_t>(m.page_size) * m.page_count, mode));
  auto check = rebuild_and_check(repo, m, tmp, what, pending_page_limit, /*sync=*/true, [&] {
    return check_image(tmp.path(), VerifyMode::kQuick, ImageAccess::kMapped);
  });
  if (!check.ok()) return check.status();
  if (*check != "ok")
    return Status::Corruption(what + ": the rebuilt database fails quick_check: " + *check);
  // A stale WAL or journal beside PATH would be applied to the restored file.
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    std::string side = path + suffix;
    if (::unlink(side.c_str()) != 0 && errno != ENOENT)
      return Status::FromErrno(errno, "cannot remove stale " + side);
  }
  if (::rename(tmp.path().c_str(), path.c_str()) != 0)
    return Status::FromErrno(errno, "cannot move the restored database to " + path);
  tmp.keep();
  return fsync_parent(path.find('/') == std::string::npos ? "./" + path : path);
}

Result<std::string> verify_backup(const Repository& repo, const Manifest& m,
                                  const std::string& scratch_dir, VerifyMode mode, uint64_t pending_page_limit) {
  const std::string what = "backup " + m.id;
  remove_dead_temporaries(scratch_dir, "verify-");
  TempImage tmp(scratch_dir + "/" + temporary_name("verify-") + ".db");
  SQLBAK_RETURN_IF_ERROR(tmp.create(static_cast<uint64_t>(m.page_size) * m.page_count)
                             .WithContext("scratch directory"));
  const VerifyMode check_mode = mode == VerifyMode::kNone ? VerifyMode::kIntegrity : mode;
  auto check = rebuild_and_check(repo, m, tmp, what, pending_page_limit, /*sync=*/false, [&] {
    return check_image(tmp.path(), check_mode, ImageAccess::kRead);
  });
  if (!check.ok()) return check.status();
  if (*check != "ok")
    return Status::Corruption(what + ": " +
                              (mode == VerifyMode::kQuick ? "quick_check" : "integrity_check") +
                              " of the rebuilt database: " + *check);
  return check;
}

}  // namespace sqlbak
