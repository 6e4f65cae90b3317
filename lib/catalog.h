// The catalog: the history of every job (backup, verify, restore, rotate, prune),
// kept in a SQLite database "catalog.db" in the configured state_dir. The
// targets stay the source of truth for which backups exist; the catalog
// records what happened, for `status`, `report`, metrics and the dashboard.
//
// Thread-safety: a Catalog object is used by one thread at a time. Several
// processes (sqlbakd and `sqlbakctl --offline`) may open the same file: it is
// in WAL mode with a busy timeout.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "lib/status.h"

struct sqlite3;

namespace sqlbak {

struct JobRecord {
  int64_t id = 0;             // assigned by the catalog
  std::string kind;           // "backup" | "verify" | "restore" | "rotate" | "prune"
  std::string database;       // database name, may be empty for repository-wide jobs
  std::string target;         // target name, may be empty
  std::string backup_id;      // may be empty
  int64_t started_at_ms = 0;  // Unix epoch, UTC, milliseconds
  int64_t duration_ms = 0;
  int64_t database_bytes = 0;  // size of the database image
  int64_t stored_bytes = 0;    // bytes newly written to the target
  int64_t changed_pages = 0;
  int64_t page_count = 0;        // pages of the database image
  int64_t page_size = 0;         // bytes per page
  int64_t bytes_uploaded = 0;    // bytes sent to the target (all requests)
  int64_t bytes_downloaded = 0;  // bytes read from the target
  // Requests made to the target during the job (object stores bill per request).
  int64_t put_requests = 0, get_requests = 0, list_requests = 0, delete_requests = 0;
  std::string result;  // "success" | "failure" | "cancelled"
  std::string error;   // error text when result != success
};

class Catalog {
 public:
  // Opens (creating when absent) STATE_DIR/catalog.db; creates STATE_DIR
  // (mode 0750) when it does not exist. The error names the path.
  static Result<std::unique_ptr<Catalog>> open(const std::string& state_dir);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Appends a finished job; returns its id.
  Result<int64_t> record(const JobRecord& job);

  // Jobs newest first, optionally of one kind and/or database; limit <= 0 means all.
  Result<std::vector<JobRecord>> jobs(const std::string& kind, const std::string& database,
                                      int limit) const;

  // The newest successful job of KIND for DATABASE, if any.
  Result<std::optional<JobRecord>> last_success(const std::string& kind,
                                                const std::string& database) const;

  // Jobs that started at or after SINCE_MS, of DATABASE (all when empty),
  // oldest first: what `report` reads.
  Result<std::vector<JobRecord>> jobs_since(int64_t since_ms, const std::string& database) const;

  // The newest job of KIND about backup BACKUP_ID on TARGET, if any (the last
  // verification of a backup, for `list` and `health`).
  Result<std::optional<JobRecord>> last_job_for_backup(const std::string& kind,
                                                       const std::string& backup_id,
                                                       const std::string& target) const;

  const std::string& path() const { return path_; }

 private:
  Catalog(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  // Runs SQL (a kSelectJobs query) with PARAMS bound by name; "what" goes into errors.
  using QueryParams = std::vector<std::pair<const char*, std::variant<std::string, int64_t>>>;
  Result<std::vector<JobRecord>> select_jobs(const std::string& sql, const std::string& what,
                                             const QueryParams& params) const;
  sqlite3* db_;
  std::string path_;
};

}  // namespace sqlbak
