#include "lib/snapshot_reader.h"

#include <sqlite3.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "lib/thread_priority.h"

namespace sqlbak {

struct BusyBudget {
  std::chrono::milliseconds timeout{5000};
  std::chrono::steady_clock::time_point first_try{};
};

namespace {

// ---- The capture VFS: the destination "file" of the online backup. ----

struct CaptureTarget {
  PageSink* sink = nullptr;
  uint32_t page_size = 0;
  Status error;  // what the sink said when a write failed
};

std::mutex g_targets_mutex;
std::map<std::string, CaptureTarget*>& capture_targets() {
  static std::map<std::string, CaptureTarget*> targets;
  return targets;
}

struct CaptureFile {
  sqlite3_file base;  // first: SQLite casts between the two
  CaptureTarget* target;  // nullptr for files other than the main database
  std::string* page1;     // the last version of page 1, which the pager re-reads
  sqlite3_int64 size;
};

int capture_close(sqlite3_file* f) {
  auto* cf = reinterpret_cast<CaptureFile*>(f);
  delete cf->page1;
  cf->page1 = nullptr;
  return SQLITE_OK;
}

int capture_read(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
  auto* cf = reinterpret_cast<CaptureFile*>(f);
  std::memset(buf, 0, static_cast<size_t>(amount));
  // Only page 1 is ever read for its content (the btree header); every other
  // page the pager fetches is overwritten whole by the backup, so zeros do.
  if (cf->page1 != nullptr && offset < static_cast<sqlite3_int64>(cf->page1->size())) {
    size_t n = std::min(static_cast<size_t>(amount), cf->page1->size() - static_cast<size_t>(offset));
    std::memcpy(buf, cf->page1->data() + offset, n);
  }
  if (offset + amount > cf->size) return SQLITE_IOERR_SHORT_READ;
  return SQLITE_OK;
}

int capture_write(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
  auto* cf = reinterpret_cast<CaptureFile*>(f);
  if (cf->target == nullptr) return SQLITE_OK;  // a journal: discarded
  CaptureTarget& t = *cf->target;
  const uint32_t ps = t.page_size;
  if (offset % ps != 0 || amount % static_cast<int>(ps) != 0) {
    t.error = Status::Internal("unexpected write of " + std::to_string(amount) + " bytes at offset " +
                               std::to_string(offset) + " to the backup image");
    return SQLITE_IOERR_WRITE;
  }
  const uint32_t first_page = static_cast<uint32_t>(offset / ps) + 1;
  const auto* bytes = static_cast<const uint8_t*>(buf);
  if (first_page == 1) cf->page1->assign(reinterpret_cast<const char*>(bytes), ps);
  Status st = t.sink->write_pages(first_page, bytes, static_cast<uint32_t>(amount) / ps);
  if (!st.ok()) {
    t.error = st;
    return SQLITE_IOERR_WRITE;
  }
  cf->size = std::max(cf->size, offset + amount);
  return SQLITE_OK;
}

int capture_truncate(sqlite3_file* f, sqlite3_int64 size) {
  auto* cf = reinterpret_cast<CaptureFile*>(f);
  cf->size = size;
  if (cf->target != nullptr) cf->target->sink->truncate(static_cast<uint32_t>(size / cf->target->page_size));
  return SQLITE_OK;
}

int capture_sync(sqlite3_file*, int) { return SQLITE_OK; }
int capture_file_size(sqlite3_file* f, sqlite3_int64* size) {
  *size = reinterpret_cast<CaptureFile*>(f)->size;
  return SQLITE_OK;
}
int capture_lock(sqlite3_file*, int) { return SQLITE_OK; }
int capture_check_reserved(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int capture_file_control(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int capture_sector_size(sqlite3_file*) { return 4096; }
int capture_device_characteristics(sqlite3_file*) { return 0; }

const sqlite3_io_methods kCaptureIo = {
    1,  // iVersion: no shared memory, no mmap
    capture_close, capture_read, capture_write, capture_truncate, capture_sync,
    capture_file_size, capture_lock, capture_lock, capture_check_reserved,
    capture_file_control, capture_sector_size, capture_device_characteristics,
    nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};

int capture_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* cf = reinterpret_cast<CaptureFile*>(f);
  cf->base.pMethods = nullptr;
  cf->target = nullptr;
  cf->page1 = nullptr;
  cf->size = 0;
  if ((flags & SQLITE_OPEN_MAIN_DB) != 0 && name != nullptr) {
    std::lock_guard<std::mutex> lock(g_targets_mutex);
    auto it = capture_targets().find(name);
    if (it == capture_targets().end()) return SQLITE_CANTOPEN;
    cf->target = it->second;
  }
  cf->page1 = new std::string();
  cf->base.pMethods = &kCaptureIo;
  if (out_flags != nullptr) *out_flags = flags;
  return SQLITE_OK;
}

int capture_delete(sqlite3_vfs*, const char*, int) { return SQLITE_OK; }
int capture_access(sqlite3_vfs*, const char*, int, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int capture_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  std::snprintf(out, static_cast<size_t>(n), "%s", name);
  return SQLITE_OK;
}
int capture_randomness(sqlite3_vfs*, int n, char* out) {
  return sqlite3_vfs_find(nullptr)->xRandomness(sqlite3_vfs_find(nullptr), n, out);
}
int capture_sleep(sqlite3_vfs*, int us) {
  return sqlite3_vfs_find(nullptr)->xSleep(sqlite3_vfs_find(nullptr), us);
}
int capture_current_time(sqlite3_vfs*, double* out) {
  return sqlite3_vfs_find(nullptr)->xCurrentTime(sqlite3_vfs_find(nullptr), out);
}
int capture_last_error(sqlite3_vfs*, int, char*) { return 0; }

constexpr const char* kCaptureVfsName = "sqlbak-capture";

void register_capture_vfs() {
  static std::once_flag once;
  std::call_once(once, [] {
    static sqlite3_vfs vfs{};
    vfs.iVersion = 1;
    vfs.szOsFile = sizeof(CaptureFile);
    vfs.mxPathname = 512;
    vfs.zName = kCaptureVfsName;
    vfs.xOpen = capture_open;
    vfs.xDelete = capture_delete;
    vfs.xAccess = capture_access;
    vfs.xFullPathname = capture_full_pathname;
    vfs.xRandomness = capture_randomness;
    vfs.xSleep = capture_sleep;
    vfs.xCurrentTime = capture_current_time;
    vfs.xGetLastError = capture_last_error;
    sqlite3_vfs_register(&vfs, /*makeDflt=*/0);
  });
}

// ---- helpers ----

Status exec(sqlite3* db, const char* sql, const std::string& what) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  ErrorCode code = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? ErrorCode::kBusy
                   : rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? ErrorCode::kCorruption
                                                                 : ErrorCode::kIOError;
  return Status(code, what + ": " + msg);
}

Result<std::string> query_text(sqlite3* db, const char* sql, const std::string& what) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  std::string value;
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(stmt, 0);
      value = t != nullptr ? reinterpret_cast<const char*>(t) : "";
      rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
      rc = SQLITE_OK;
    }
  }
  std::string msg = sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) {
    ErrorCode code = rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? ErrorCode::kCorruption
                     : (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? ErrorCode::kBusy
                                                                  : ErrorCode::kIOError;
    return Status(code, what + ": " + msg);
  }
  return value;
}

std::atomic<uint64_t> g_capture_counter{0};

bool is_readonly_error(int extended_rc) {
  return (extended_rc & 0xff) == SQLITE_READONLY || (extended_rc & 0xff) == SQLITE_CANTOPEN;
}

std::string current_user_name() {
  const uid_t uid = ::geteuid();
  if (const passwd* pw = ::getpwuid(uid); pw != nullptr) return "'" + std::string(pw->pw_name) + "'";
  return "uid " + std::to_string(uid);
}

// A reader of a WAL database needs its -shm file, and creates -wal and -shm
// when no application has the database open. SQLite then only says "attempt
// to write a readonly database" or "unable to open database file"; this says
// which file or directory the user running sqlbak cannot write, and how to fix
// it. Returns ORIGINAL when the cause is something else.
Status explain_wal_access(const std::string& path, const Status& original) {
  const std::string::size_type slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const std::string shm = path + "-shm";
  std::string cause;
  struct stat st {};
  if (::stat(shm.c_str(), &st) == 0) {
    if (::access(shm.c_str(), W_OK) != 0) {
      const int err = errno;
      if (::access(dir.c_str(), W_OK) != 0)
        cause = "cannot write its shared-memory file " + shm + " (" + std::strerror(err) + ") nor create files in " + dir;
    }
  } else if (::access(dir.c_str(), W_OK) != 0) {
    const int err = errno;
    cause = "cannot create its -wal and -shm files in " + dir + " (" + std::strerror(err) + ")";
    if (err == EROFS) cause += "; the directory is on a read-only mount, as systemd's ProtectSystem=strict makes it";
  }
  if (cause.empty()) return original;
  return Status(ErrorCode::kPermissionDenied,
                "database " + path + " is in WAL mode and the user running sqlbak (" + current_user_name() +
                    ") " + cause + ". Fix: give that user write access to " + dir +
                    " (e.g. add it to the application's group and chmod g+rwx " + dir +
                    "), and for sqlbakd add ReadWritePaths=" + dir +
                    " with `systemctl edit sqlbakd`; sqlbak writes no data there "
                    "(see \"A WAL database\" in docs/TROUBLESHOOTING.md). SQLite said: " +
                    original.message());
}

// A busy handler for the source that polls often. SQLite's default sleeps up
// to 100 ms between tries; against a writer that commits back to back in
// rollback-journal mode (holding PENDING for each commit's fsyncs) a reader
// that polls that slowly almost never lands in the gap between two commits
// and starves. Polling every few hundred microseconds finds the gap.
int poll_busy_handler(void* arg, int tries) {
  auto* budget = static_cast<BusyBudget*>(arg);
  const auto now = std::chrono::steady_clock::now();
  if (tries == 0) budget->first_try = now;
  if (now - budget->first_try >= budget->timeout) return 0;
  std::this_thread::sleep_for(std::chrono::microseconds(tries < 50 ? 100 : 1000));
  return 1;
}

}  // namespace

Result<std::string> run_integrity_check(sqlite3* db, VerifyMode mode) {
  const char* sql = mode == VerifyMode::kQuick ? "PRAGMA quick_check" : "PRAGMA integrity_check";
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK)
    return Status::Corruption(std::string("cannot run ") + sql + ": " + sqlite3_errmsg(db));
  std::string report;
  int lines = 0, rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(stmt, 0);
    if (lines++ < 10) {
      if (!report.empty()) report += "; ";
      report += t != nullptr ? reinterpret_cast<const char*>(t) : "";
    }
  }
  std::string err = sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Status::Corruption(std::string(sql) + " failed: " + err);
  if (lines > 10) report += "; ... (" + std::to_string(lines) + " problems)";
  return report;
}

namespace {

// The concurrent check's connection, opened like the copy's (read-write for
// the -shm when allowed), with PRAGMA data_version read before the copy pins
// its snapshot. nullptr when anything fails: the check then runs after the copy.
sqlite3* open_checker(const std::string& path, std::string* data_version) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      return nullptr;
    }
  }
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  // Short: a checker that cannot start at once is not worth waiting for.
  sqlite3_busy_timeout(db, 100);
  auto version = query_text(db, "PRAGMA data_version", "checker");
  if (!version.ok()) {
    sqlite3_close(db);
    return nullptr;
  }
  *data_version = *version;
  return db;
}

// Pins the checker's snapshot; true when no commit landed since its
// data_version was read (so it sees what the copy's connection pinned).
bool pin_checker(sqlite3* db, const std::string& data_version_before) {
  if (!exec(db, "BEGIN", "checker").ok()) return false;
  auto read = query_text(db, "SELECT count(*) FROM sqlite_schema", "checker");
  auto version = query_text(db, "PRAGMA data_version", "checker");
  if (read.ok() && version.ok() && *version == data_version_before) return true;
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return false;
}

}  // namespace

Result<std::unique_ptr<SnapshotReader>> SnapshotReader::open(const std::string& path, int step_pages,
                                                             std::chrono::milliseconds busy_timeout,
                                                             PageSink* sink, SnapshotOptions options) {
  register_capture_vfs();
  std::unique_ptr<SnapshotReader> r(new SnapshotReader());
  r->path_ = path;
  r->step_pages_ = std::max(1, step_pages);
  r->busy_budget_ms_ = std::max<int64_t>(30000, busy_timeout.count());

  // Checks with the file itself give errors users can act on; SQLite would
  // only say "unable to open database file".
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound("database file " + path + " does not exist");
    return Status::FromErrno(errno, "cannot access database file " + path);
  }
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
  if (::access(path.c_str(), R_OK) != 0)
    return Status::FromErrno(errno, "cannot read database file " + path +
                                        " (give the user running sqlbak read access)");
  // Bytes 18 and 19 of the header are 2 when the database is in WAL mode.
  bool wal_header = false;
  if (st.st_size > 0) {
    unsigned char header[20] = {0};
    FILE* f = std::fopen(path.c_str(), "rb");
    size_t n = f != nullptr ? std::fread(header, 1, sizeof header, f) : 0;
    if (f != nullptr) std::fclose(f);
    if (n < 16 || std::memcmp(header, "SQLite format 3", 16) != 0)
      return Status::InvalidArgument(path + " is not a SQLite database (bad file header)");
    wal_header = n == sizeof header && (header[18] == 2 || header[19] == 2);
  }
  const auto explain = [&](const Status& s, int extended_rc) {
    return wal_header && is_readonly_error(extended_rc) ? explain_wal_access(path, s) : s;
  };

  // Read-write so that WAL databases can use their -shm; nothing is written.
  int rc = sqlite3_open_v2(path.c_str(), &r->source_, SQLITE_OPEN_READWRITE, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_close(r->source_);
    r->source_ = nullptr;
    rc = sqlite3_open_v2(path.c_str(), &r->source_, SQLITE_OPEN_READONLY, nullptr);
    if (rc != SQLITE_OK)
      return explain(Status::IOError("cannot open database " + path + ": " + sqlite3_errmsg(r->source_)),
                     sqlite3_extended_errcode(r->source_));
  }
  r->busy_ = std::make_unique<BusyBudget>();
  r->busy_->timeout = busy_timeout;
  sqlite3_busy_handler(r->source_, poll_busy_handler, r->busy_.get());
  sqlite3_db_config(r->source_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);

  auto mode = query_text(r->source_, "PRAGMA journal_mode", "cannot read database " + path);
  if (!mode.ok()) return explain(mode.status(), sqlite3_extended_errcode(r->source_));
  r->info_.journal_mode = *mode;
  r->info_.wal = *mode == "wal";
  auto page_size = query_text(r->source_, "PRAGMA page_size", "cannot read database " + path);
  if (!page_size.ok()) return page_size.status();
  r->info_.page_size = static_cast<uint32_t>(std::stoul(*page_size));

  if (r->info_.wal) {
    std::string checker_version;
    sqlite3* checker = options.concurrent_check != VerifyMode::kNone ? open_checker(path, &checker_version)
                                                                     : nullptr;
    SQLBAK_RETURN_IF_ERROR(exec(r->source_, "BEGIN", "cannot start a read transaction on " + path));
    r->in_read_txn_ = true;
    // The first read starts the transaction and pins the snapshot.
    auto s = query_text(r->source_, "SELECT count(*) FROM sqlite_schema",
                        "cannot read database " + path);
    if (!s.ok()) {
      sqlite3_close(checker);
      return explain(s.status(), sqlite3_extended_errcode(r->source_));
    }
    if (checker != nullptr) {
      if (options.between_pins_for_test) options.between_pins_for_test();
      if (pin_checker(checker, checker_version)) {
        r->checker_ = checker;
        SnapshotReader* reader = r.get();
        r->check_thread_ = std::thread([reader, mode = options.concurrent_check,
                                        background = options.check_in_background] {
          if (background) run_below_applications();
          reader->concurrent_result_ = run_integrity_check(reader->checker_, mode);
        });
      } else {
        sqlite3_close(checker);
      }
    }
  }

  // The destination: a connection on the capture VFS.
  r->dest_name_ = "/sqlbak-capture-" + std::to_string(::getpid()) + "-" +
                  std::to_string(g_capture_counter.fetch_add(1));
  auto* target = new CaptureTarget{sink, r->info_.page_size, Status::Ok()};
  {
    std::lock_guard<std::mutex> lock(g_targets_mutex);
    capture_targets()[r->dest_name_] = target;
  }
  rc = sqlite3_open_v2(r->dest_name_.c_str(), &r->dest_,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, kCaptureVfsName);
  if (rc != SQLITE_OK) return Status::Internal("cannot open the capture destination");
  SQLBAK_RETURN_IF_ERROR(exec(r->dest_, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                                        " PRAGMA cache_size=-8192",
                              "capture destination"));
  r->backup_ = sqlite3_backup_init(r->dest_, "main", r->source_, "main");
  if (r->backup_ == nullptr)
    return Status::Internal(std::string("cannot start the online backup: ") + sqlite3_errmsg(r->dest_));
  return r;
}

SnapshotReader::~SnapshotReader() { close(); }

void SnapshotReader::close() {
  if (check_thread_.joinable()) {
    {
      // Nobody will read the result now; a finished check ignores this.
      std::lock_guard<std::mutex> lock(source_mutex_);
      sqlite3_interrupt(checker_);
    }
    check_thread_.join();
  }
  if (checker_ != nullptr) {
    sqlite3_exec(checker_, "ROLLBACK", nullptr, nullptr, nullptr);
    std::lock_guard<std::mutex> lock(source_mutex_);
    sqlite3_close(checker_);
    checker_ = nullptr;
  }
  if (backup_ != nullptr) {
    sqlite3_backup_finish(backup_);
    backup_ = nullptr;
  }
  if (in_read_txn_) {
    sqlite3_exec(source_, "ROLLBACK", nullptr, nullptr, nullptr);
    in_read_txn_ = false;
  }
  if (dest_ != nullptr) {
    sqlite3_close(dest_);
    dest_ = nullptr;
  }
  if (!dest_name_.empty()) {
    std::lock_guard<std::mutex> lock(g_targets_mutex);
    auto it = capture_targets().find(dest_name_);
    if (it != capture_targets().end()) {
      delete it->second;
      capture_targets().erase(it);
    }
    dest_name_.clear();
  }
  if (source_ != nullptr) {
    std::lock_guard<std::mutex> lock(source_mutex_);
    sqlite3_close(source_);
    source_ = nullptr;
  }
}

void SnapshotReader::cancel() {
  cancelled_.store(true);
  std::lock_guard<std::mutex> lock(source_mutex_);
  if (source_ != nullptr) sqlite3_interrupt(source_);
  if (checker_ != nullptr) sqlite3_interrupt(checker_);
}

Result<StepOutcome> SnapshotReader::step() {
  if (cancelled_.load()) return Status::Cancelled("backup of " + path_ + " cancelled");
  if (backup_ == nullptr || done_) return Status::Internal("step() after the end of the snapshot");
  const bool take_rest = restarts_ > kMaxRestarts;
  int rc = sqlite3_backup_step(backup_, take_rest ? -1 : step_pages_);

  CaptureTarget* target = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_targets_mutex);
    target = capture_targets()[dest_name_];
  }
  if (!target->error.ok()) return target->error;

  if (rc == SQLITE_OK || rc == SQLITE_DONE) {
    busy_retries_ = 0;
    const uint32_t total = static_cast<uint32_t>(sqlite3_backup_pagecount(backup_));
    const uint32_t done = total - static_cast<uint32_t>(sqlite3_backup_remaining(backup_));
    // A step that makes no progress was restarted by a writer: SQLite began again at page 1.
    if (rc == SQLITE_OK && pages_done_ > 0 && done <= pages_done_) {
      ++restarts_;
      step_pages_ = std::min(step_pages_ * 2, 1 << 20);
    }
    pages_total_ = total;
    pages_done_ = done;
    if (rc == SQLITE_DONE) {
      done_ = true;
      info_.page_count = total;
      return StepOutcome{StepState::kDone, 0};
    }
    return StepOutcome{StepState::kMore, 0};
  }
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    int delay = std::min(1000, 10 << std::min(busy_retries_, 7));
    ++busy_retries_;
    busy_waited_ms_ += delay;
    if (busy_waited_ms_ > busy_budget_ms_)
      return Status::Busy("database " + path_ + " stayed locked by other connections for " +
                          std::to_string(busy_waited_ms_ / 1000) + " s");
    return StepOutcome{StepState::kRetryLater, delay};
  }
  std::string msg = sqlite3_errmsg(source_);
  if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
    return Status::Corruption("database " + path_ + " is damaged: " + msg);
  return Status::IOError("online backup of " + path_ + " failed: " + sqlite3_errstr(rc) +
                         " (" + msg + ")");
}

Result<std::string> SnapshotReader::check(VerifyMode mode) {
  if (!done_) return Status::Internal("check() before the snapshot is complete");
  if (!info_.wal || !in_read_txn_)
    return Status::Unsupported("no pinned snapshot to check in rollback-journal mode");
  if (check_thread_.joinable()) check_thread_.join();
  if (concurrent_result_) {
    if (cancelled_.load()) return Status::Cancelled("check of " + path_ + " cancelled");
    return *concurrent_result_;
  }
  auto result = run_integrity_check(source_, mode);
  if (cancelled_.load()) return Status::Cancelled("check of " + path_ + " cancelled");
  return result;
}

}  // namespace sqlbak
