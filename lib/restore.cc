#include "lib/restore.h"

#include <csignal>

#include <dirent.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
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

// Restores the pages of one pack: reads and checks the index and the pack,
// then writes every page the backup takes from it.
Status restore_pack(const Repository& repo, const Manifest& m, const ManifestPack& pack,
                    std::vector<PageSlot>& slots, int fd) {
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
    if (sha256(page, e.length) != e.hash)
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
  Status sync_and_close() {
    if (::fsync(fd_) != 0) return Status::FromErrno(errno, "cannot fsync " + path_);
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

}  // namespace

Status rebuild_image(const Repository& repo, const Manifest& m, int fd, int threads) {
  auto refs = decode_page_runs(m.runs, m.page_count, m.packs.size());
  if (!refs.ok()) return refs.status();
  std::vector<std::vector<PageSlot>> per_pack(m.packs.size());
  for (uint32_t i = 0; i < refs->size(); ++i) {
    const PageRef& r = (*refs)[i];
    if (r.pack != PageRef::kNoPack) per_pack[r.pack].push_back({r.entry, i + 1});
  }
  refs = Status::Ok();  // free the map; per_pack holds the same

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
      Status st = restore_pack(repo, m, m.packs[p], per_pack[p], fd);
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
static Status rebuild_following_repack(const Repository& repo, const Manifest& m, int fd, const std::string& what) {
  const int readers = repo.store().parallel_reads();
  Status st = rebuild_image(repo, m, fd, readers);
  if (st.code() != ErrorCode::kNotFound) return st.WithContext(what);
  auto now = repo.read_manifest(ManifestRef{m.database, m.id, manifest_key(m.database, m.id)});
  if (!now.ok() || encode_manifest(*now) == encode_manifest(m)) return st.WithContext(what);
  return rebuild_image(repo, *now, fd, readers).WithContext(what + " (re-read after a repack)");
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

Status restore_backup(const Repository& repo, const Manifest& m, const std::string& path, bool force) {
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
  SQLBAK_RETURN_IF_ERROR(rebuild_following_repack(repo, m, tmp.fd(), what));
  // The fsync (the disk) and quick_check (a core, reading what is still in the
  // page cache) overlap; both must pass before the rename.
  Status synced;
  std::thread syncer([&] { synced = tmp.sync_and_close(); });
  Result<std::string> check = std::string("ok");
  if (m.page_count > 0) check = check_image(tmp.path(), VerifyMode::kQuick, ImageAccess::kMapped);
  syncer.join();
  SQLBAK_RETURN_IF_ERROR(synced);
  if (!check.ok()) return check.status().WithContext(what);
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
                                  const std::string& scratch_dir, VerifyMode mode) {
  const std::string what = "backup " + m.id;
  remove_dead_temporaries(scratch_dir, "verify-");
  TempImage tmp(scratch_dir + "/" + temporary_name("verify-") + ".db");
  SQLBAK_RETURN_IF_ERROR(tmp.create(static_cast<uint64_t>(m.page_size) * m.page_count)
                             .WithContext("scratch directory"));
  SQLBAK_RETURN_IF_ERROR(rebuild_following_repack(repo, m, tmp.fd(), what));
  if (m.page_count == 0) return std::string("ok");
  auto check = check_image(tmp.path(), mode == VerifyMode::kNone ? VerifyMode::kIntegrity : mode,
                           ImageAccess::kRead);
  if (!check.ok()) return check.status().WithContext(what);
  if (*check != "ok")
    return Status::Corruption(what + ": " +
                              (mode == VerifyMode::kQuick ? "quick_check" : "integrity_check") +
                              " of the rebuilt database: " + *check);
  return check;
}

}  // namespace sqlbak
