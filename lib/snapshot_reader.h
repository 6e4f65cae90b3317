// SnapshotReader: reads a consistent image of a live SQLite database through
// the online backup API, one step at a time, and hands every page to a
// PageSink instead of writing a copy to disk.
//
// How: the backup's destination is a connection on a private VFS whose file
// keeps nothing but page 1 (which SQLite re-reads) and forwards every page
// write to the sink. A restarted step rewrites pages; the sink keeps the last
// version of each page.
//
// Consistency:
//  - WAL mode: a read transaction is opened on the source before the first
//    step and held to the end, pinning one snapshot without blocking writers;
//    no restart can happen, and the check reads the same snapshot (a second
//    connection running beside the copy, or the copy's own afterwards), so it
//    checks exactly the image that was copied.
//  - Rollback-journal mode: each step takes a shared lock only while it runs.
//    Writers between steps make SQLite restart the copy; restarts are counted,
//    each one doubles the step, and past kMaxRestarts the rest is copied in
//    one step.
// The reader never changes the journal mode, never writes to the source, and
// disables the checkpoint-on-close so that closing it leaves the WAL alone.
//
// Thread-safety: one thread at a time; successive step() calls may run on
// different threads of a pool. cancel() may be called from any thread.
#pragma once

#include <atomic>
#include <mutex>
#include <cstdint>
#include <functional>
#include <optional>
#include <thread>
#include <memory>
#include <string>

#include "lib/config.h"
#include "lib/status.h"

struct sqlite3;
struct sqlite3_backup;

namespace sqlbak {

struct BusyBudget;

class PageSink {
 public:
  virtual ~PageSink() = default;
  // Pages FIRST_PAGE .. FIRST_PAGE + COUNT - 1 (1-based), PAGE_SIZE bytes each.
  // Returning an error makes the current step fail with it.
  virtual Status write_pages(uint32_t first_page, const uint8_t* data, uint32_t count) = 0;
  // The image ends at PAGE_COUNT pages.
  virtual void truncate(uint32_t page_count) = 0;
};

struct SnapshotInfo {
  uint32_t page_size = 0;
  uint32_t page_count = 0;
  std::string journal_mode;  // "wal", "delete", "truncate", "persist", "memory", "off"
  bool wal = false;
};

enum class StepState { kMore, kRetryLater, kDone };

struct StepOutcome {
  StepState state = StepState::kMore;
  int retry_after_ms = 0;  // for kRetryLater: how long to back off before the next step
};

struct SnapshotOptions {
  // In WAL mode, run this check (integrity or quick) while the pages are
  // copied, on a second connection that reads the very snapshot the copy
  // pins (see open()). kNone: check() runs it after the copy, if asked.
  VerifyMode concurrent_check = VerifyMode::kNone;
  // Run the concurrent check below the application's threads (WAL mode).
  bool check_in_background = false;
  // Tests only: runs after the copy's connection pins its snapshot and before
  // the checker pins its own, to commit something in between.
  std::function<void()> between_pins_for_test;
};

class SnapshotReader {
 public:
  static constexpr int kMaxRestarts = 4;

  // Opens PATH (the error names it: missing, not SQLite, unreadable) and
  // prepares a backup into SINK. SINK must outlive the reader.
  //
  // With OPTIONS.concurrent_check in WAL mode, a second connection is pinned
  // to the same snapshot and checks it on a thread of its own while step()
  // copies. SQLite as Debian builds it has no sqlite3_snapshot_open(), so the
  // pairing is proven instead: the checker reads PRAGMA data_version before
  // the copy's connection pins its snapshot and again inside its own read
  // transaction; equal values mean no commit landed in between, so both see
  // one state. Otherwise the checker is dropped and check() runs after the
  // copy, on the copy's own connection, as without the option.
  static Result<std::unique_ptr<SnapshotReader>> open(const std::string& path, int step_pages,
                                                      std::chrono::milliseconds busy_timeout,
                                                      PageSink* sink, SnapshotOptions options = {});
  ~SnapshotReader();
  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;

  const SnapshotInfo& info() const { return info_; }

  // Copies the next step_pages pages. kRetryLater when the source is busy
  // (the caller waits retry_after_ms, on a timer or by sleeping); an error
  // once the busy budget (the busy timeout, at least 30 s) is spent.
  // REQUIRES: the previous step did not return kDone or an error.
  Result<StepOutcome> step();

  // Runs PRAGMA integrity_check / quick_check on the copied image when that
  // is possible without another read (WAL mode, inside the pinned snapshot),
  // or waits for the concurrent check when one runs (MODE is then the one
  // given to open()). Returns "ok" or the check's first lines; kUnsupported in
  // rollback mode, where the caller checks a rebuilt image instead.
  // REQUIRES: step() returned kDone.
  Result<std::string> check(VerifyMode mode);

  // True when a concurrent check was paired with the copy's snapshot.
  bool checks_concurrently() const { return checker_ != nullptr; }

  // Ends the read transaction and closes everything; idempotent.
  void close();

  // Stops the job: the next step() fails with kCancelled, and a running
  // check() is interrupted (sqlite3_interrupt). Any thread.
  void cancel();
  uint32_t pages_total() const { return pages_total_; }
  uint32_t pages_done() const { return pages_done_; }
  int restarts() const { return restarts_; }

 private:
  SnapshotReader() = default;
  std::string path_;
  SnapshotInfo info_;
  sqlite3* source_ = nullptr;
  sqlite3* dest_ = nullptr;
  sqlite3_backup* backup_ = nullptr;
  std::string dest_name_;
  int step_pages_ = 1024;
  int restarts_ = 0;
  bool in_read_txn_ = false;
  bool done_ = false;
  uint32_t pages_total_ = 0;
  uint32_t pages_done_ = 0;
  int busy_retries_ = 0;
  int64_t busy_waited_ms_ = 0;
  int64_t busy_budget_ms_ = 30000;
  std::atomic<bool> cancelled_{false};
  std::unique_ptr<BusyBudget> busy_;  // the source's busy handler state
  std::mutex source_mutex_;  // cancel() may interrupt source_ or checker_ while close() runs

  // The concurrent check: its connection, pinned to the copy's snapshot, and
  // the thread that runs it; the result is read after the join.
  sqlite3* checker_ = nullptr;
  std::thread check_thread_;
  std::optional<Result<std::string>> concurrent_result_;
};

// Runs `PRAGMA CHECK` (integrity_check or quick_check) on an open connection.
// Returns "ok" or the first lines of what it reported.
Result<std::string> run_integrity_check(sqlite3* db, VerifyMode mode);

}  // namespace sqlbak
