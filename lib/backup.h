// BackupJob: one backup of one database to each of its targets.
//
// The flow (docs/ARCHITECTURE.md): SnapshotReader steps copy pages into a
// PageSink whose own thread hashes each page once; for each target a TargetWriter looks
// the hash up among the pages that target already holds, queues new pages into
// blocks, and its own threads compress blocks into packs and store packs and
// index objects. When the copy is complete the image is checked (inside the
// pinned snapshot in WAL mode, or rebuilt from the target in rollback mode),
// and only then is the manifest written: the commit point.
//
// A job holds each target's lock for its database from start() to its end.
// step() is a unit of work the caller may run on any thread (one at a time);
// it never sleeps: a busy source, or compressors that have fallen behind,
// yield kRetryLater with the delay to wait, so the thread is free meanwhile.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/config.h"
#include "lib/manifest.h"
#include "lib/repository.h"
#include "lib/snapshot_reader.h"
#include "lib/status.h"

namespace sqlbak {

struct BackupRequest {
  DatabaseConfig database;
  std::vector<Repository*> targets;  // at least one; not owned
  std::string scratch_dir;  // where rollback-mode images are rebuilt to be checked
  std::function<int64_t()> now_ms;  // UTC clock, Unix milliseconds
  int compress_threads = 2;  // per target; the daemon passes its `workers`
};

// What happened on one target.
struct TargetOutcome {
  std::string target;
  Status status;
  Manifest manifest;  // valid when status.ok()
};

class TargetWriter;
class FanOutSink;

class BackupJob {
 public:
  // Takes the locks, reads what each target holds, opens the database.
  static Result<std::unique_ptr<BackupJob>> start(BackupRequest request);
  ~BackupJob();

  Result<StepOutcome> step();
  // REQUIRES: step() returned kDone. In WAL mode, checks the pinned image
  // (integrity_check) while the compressors drain; finish() does it if the
  // caller did not. A unit of work of its own, so that a caller can free its
  // thread between the check and finish().
  void check_snapshot();
  // True when every target's compressors and storer have nothing left to do:
  // finish() will not wait for them.
  bool pipelines_idle() const;
  // REQUIRES: step() returned kDone. Checks the image (if not done yet),
  // finishes every target and writes the manifests. Returns one outcome per
  // target; the job failed as a whole when none succeeded.
  std::vector<TargetOutcome> finish();

  // Any thread: stops the copy at the next step, interrupts a running check,
  // and stops the compressors, so that finish() returns promptly.
  void cancel();
  uint32_t pages_done() const { return reader_->pages_done(); }
  uint32_t pages_total() const { return reader_->pages_total(); }
  const std::string& backup_id() const { return id_; }

 private:
  BackupJob() = default;
  BackupRequest request_;
  std::string id_;
  int64_t started_ms_ = 0;
  std::vector<std::unique_ptr<StoreLock>> locks_;
  std::vector<std::unique_ptr<TargetWriter>> writers_;
  std::unique_ptr<FanOutSink> sink_;
  std::unique_ptr<SnapshotReader> reader_;
  std::optional<Result<std::string>> check_;  // the WAL-mode check, once run
};

// Runs a whole backup on the calling thread, sleeping when the source is busy.
// PROGRESS, when set, is called after every step with (done, total).
std::vector<TargetOutcome> run_backup(BackupRequest request,
                                      const std::function<void(uint32_t, uint32_t)>& progress,
                                      Status* start_error);

}  // namespace sqlbak
