// Operations on backups that both sqlbakctl --offline and sqlbakd perform:
// list, show, verify, restore, and the record of a backup's outcome. Each
// returns the JSON document that `sqlbakctl --json` prints (and that the
// daemon sends over the control socket), so both paths give the same data;
// ctl/render.h turns them into human text.
//
// A Workspace is what the operations work with: a loaded config, the
// repositories of its targets (opened on first use), the catalog.
//
// Each target's store is opened once per Workspace and counts its requests
// (lib/object_store.h, TransferCounters); record() charges a job with what its
// target's store did since the previous job recorded for that target (from
// the store's opening for the first). So a Workspace must serve one job at a
// time per target: the daemon gives every job a Workspace of its own.
//
// Thread-safety: a Workspace is used by one thread at a time, except that its
// stores may report warnings from their own threads (see take_warnings()).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/backup.h"
#include "lib/catalog.h"
#include "lib/config.h"
#include "lib/protocol.h"
#include "lib/repository.h"
#include "lib/status.h"

namespace sqlbak {

class Workspace {
 public:
  explicit Workspace(Config config, std::function<int64_t()> now_ms);
  const Config& config() const { return config_; }
  int64_t now_ms() const { return now_ms_(); }

  // Opens target NAME; a WRITABLE one gets a repository created when empty.
  Result<Repository*> repository(const std::string& name, bool writable);
  // NAME alone, or every configured target that holds a repository.
  Result<std::vector<Repository*>> readable_targets(const std::string& name);
  // Finds backup ID on TARGET (or on the first target that has it).
  Result<std::pair<Repository*, ManifestRef>> locate(const std::string& id, const std::string& target);

  // The catalog, or nullptr when the state directory is unusable (a warning
  // is kept): history is not worth failing a restore on a fresh host for.
  Catalog* catalog();
  // Appends JOB to the catalog. When JOB.target's store is open here, JOB's
  // request and byte counters are replaced by take_transfers(JOB.target).
  void record(const JobRecord& job);
  // What target NAME's store has done since the last job was charged with its
  // work (since it was opened, for the first), and charges it: the next call
  // starts from here. Zeros when NAME is not open in this Workspace.
  TransferCounters take_transfers(const std::string& name);
  // Where images are rebuilt to be checked: STATE_DIR/tmp, else $TMPDIR or /var/tmp.
  std::string scratch_dir();
  // Warnings gathered so far (and cleared): the Workspace's own, and those of
  // its stores (an S3 lock taken over from an expired holder, say), which may
  // arrive from a store's thread at any time. sqlbakctl prints them on stderr,
  // the daemon logs them. Thread-safe.
  std::vector<std::string> take_warnings();

 private:
  // Shared with the stores' warning handlers, which hold it weakly: a warning
  // from a lock that outlives its Workspace goes to stderr.
  struct WarningList {
    std::mutex mu;
    std::vector<std::string> items;  // GUARDED_BY(mu)
  };
  void warn(std::string text);

  Config config_;
  std::function<int64_t()> now_ms_;
  // Before repos_: destroyed after the stores that report into it.
  std::shared_ptr<WarningList> warnings_ = std::make_shared<WarningList>();
  std::map<std::string, std::unique_ptr<Repository>> repos_;
  std::map<std::string, TransferCounters> recorded_;  // per target: counters charged to jobs
  std::unique_ptr<Catalog> catalog_;
  bool catalog_failed_ = false;
};

// The catalog record of a job that ran from STARTED_MS to ENDED_MS on BACKUP
// (may be null) with OUTCOME.
JobRecord finished_job(const std::string& kind, const std::string& database,
                       const std::string& target, const std::string& backup_id,
                       int64_t started_ms, int64_t ended_ms, const Manifest* backup,
                       const Status& outcome);

// One backup in `list`, `backup` and the API.
nlohmann::json manifest_summary(const Manifest& m, const std::string& target);

// {"backups":[summary...]} newest first.
Result<nlohmann::json> list_backups(Workspace& ws, const std::string& database, const std::string& target);
// {"target":..., "manifest":{...}} as stored.
Result<nlohmann::json> show_backup(Workspace& ws, const std::string& id, const std::string& target);
// {"results":[{"id","database","target","ok","error"}]}; every job recorded.
// Fails only when the backups to check cannot be listed.
Result<nlohmann::json> verify_backups(Workspace& ws, const std::vector<std::string>& ids,
                                      const std::string& database, bool all, const std::string& target);

// Verifies the newest `verify_latest` backups of DB on each of its targets:
// the scheduled restore test. Same document as verify_backups.
Result<nlohmann::json> verify_latest(Workspace& ws, const DatabaseConfig& db);

struct RestoreRequest {
  std::string what;  // backup id, or database name with `at`
  std::string to, at, target;
  bool force = false;
};
// {"id","database","created","path","bytes"}
Result<nlohmann::json> restore(Workspace& ws, const RestoreRequest& request);

// Runs a request that needs no daemon state, `list`, `show`, `verify`,
// `health`, `report` or `rotate`, with its protocol arguments
// (docs/PROTOCOL.md): the one dispatch both the daemon and `sqlbakctl
// --offline` use. kUsage for any other command.
Result<nlohmann::json> run_query(Workspace& ws, const Request& request);

// Sets up the request for a backup of DB to each of its targets.
Result<BackupRequest> prepare_backup(Workspace& ws, const DatabaseConfig& db);
// Records OUTCOMES (or START_ERROR) in the catalog and returns
// {"backups":[summary...],"errors":[{"database","target","error"}]}.
nlohmann::json record_backup(Workspace& ws, const DatabaseConfig& db, int64_t started_ms,
                             const Status& start_error, const std::vector<TargetOutcome>& outcomes);

}  // namespace sqlbak
