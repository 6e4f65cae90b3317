#include "lib/catalog.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <variant>

namespace sqlbak {

namespace {

// "sqbk": marks catalog.db as ours, so a state_dir pointing at some other
// application's SQLite file is refused instead of gaining our tables.
constexpr int32_t kApplicationId = 0x7371626b;

// The schema version this build writes. kMigrations[v] takes a catalog from
// version v to v + 1; a new version appends a step and bumps this constant.
constexpr int kSchemaVersion = 2;

constexpr const char* kMigrations[kSchemaVersion] = {
    // 0 -> 1: the job history.
    // AUTOINCREMENT so an id is never reused, even after old rows are deleted:
    // ids are shown to users and may be kept in reports.
    R"sql(
      CREATE TABLE jobs (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        kind           TEXT    NOT NULL,
        "database"     TEXT    NOT NULL,
        target         TEXT    NOT NULL,
        backup_id      TEXT    NOT NULL,
        started_at_ms  INTEGER NOT NULL,
        duration_ms    INTEGER NOT NULL,
        database_bytes INTEGER NOT NULL,
        stored_bytes   INTEGER NOT NULL,
        changed_pages  INTEGER NOT NULL,
        result         TEXT    NOT NULL,
        error          TEXT    NOT NULL
      );
      -- One index per filter combination of jobs() and last_success(); the
      -- implicit rowid at the end of each serves the "id DESC" tie-break.
      CREATE INDEX jobs_by_kind_database_started ON jobs (kind, "database", started_at_ms);
      CREATE INDEX jobs_by_kind_started ON jobs (kind, started_at_ms);
      CREATE INDEX jobs_by_database_started ON jobs ("database", started_at_ms);
      CREATE INDEX jobs_by_started ON jobs (started_at_ms);
    )sql",
    // 1 -> 2: what `report` and the metrics need beyond version 1: the image's
    // geometry (for compression ratios) and the traffic with the target.
    R"sql(
      ALTER TABLE jobs ADD COLUMN page_count       INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN page_size        INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN bytes_uploaded   INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN bytes_downloaded INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN put_requests     INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN get_requests     INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN list_requests    INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN delete_requests  INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX jobs_by_backup ON jobs (backup_id, kind, started_at_ms);
    )sql",
};

constexpr const char* kSelectJobs =
    "SELECT id, kind, \"database\", target, backup_id, started_at_ms, duration_ms,"
    " database_bytes, stored_bytes, changed_pages, result, error, page_count, page_size,"
    " bytes_uploaded, bytes_downloaded, put_requests, get_requests, list_requests,"
    " delete_requests FROM jobs";
constexpr const char* kNewestFirst = " ORDER BY started_at_ms DESC, id DESC";

struct StatementDeleter {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

struct ConnectionDeleter {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Connection = std::unique_ptr<sqlite3, ConnectionDeleter>;

ErrorCode code_for(int rc, int system_errno) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return ErrorCode::kBusy;
    case SQLITE_FULL: return ErrorCode::kNoSpace;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return ErrorCode::kCorruption;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH: return ErrorCode::kPermissionDenied;
    case SQLITE_TOOBIG: return ErrorCode::kInvalidArgument;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
      return system_errno != 0 ? Status::FromErrno(system_errno, "").code() : ErrorCode::kIOError;
    case SQLITE_ERROR:
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH: return ErrorCode::kInternal;
    default: return ErrorCode::kIOError;
  }
}

// "catalog PATH: WHAT: sqlite's message[ (strerror)]".
// REQUIRES: RC is the result of the last call on DB (or DB is null).
Status sqlite_error(sqlite3* db, int rc, const std::string& path, const std::string& what) {
  // sqlite3_errmsg() describes the most recent call; fall back to the generic
  // text for RC when something else ran in between.
  std::string detail = db != nullptr && sqlite3_extended_errcode(db) == rc ? sqlite3_errmsg(db)
                                                                            : sqlite3_errstr(rc);
  int system_errno = 0;
  if (db != nullptr && ((rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_IOERR)) {
    system_errno = sqlite3_system_errno(db);
    if (system_errno != 0) detail += std::string(" (") + std::strerror(system_errno) + ")";
  }
  return Status(code_for(rc, system_errno), "catalog " + path + ": " + what + ": " + detail);
}

Status prepare(sqlite3* db, const std::string& path, const std::string& sql,
               const std::string& what, Statement* out) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()) + 1, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return sqlite_error(db, rc, path, what);
  }
  out->reset(stmt);
  return Status::Ok();
}

// Binds to the named parameter NAME when the statement has it.
int bind_text(sqlite3_stmt* stmt, const char* name, const std::string& value) {
  int index = sqlite3_bind_parameter_index(stmt, name);
  if (index == 0) return SQLITE_OK;
  // SQLITE_STATIC: VALUE outlives every step of the statement in this file.
  return sqlite3_bind_text64(stmt, index, value.data(), value.size(), SQLITE_STATIC, SQLITE_UTF8);
}

int bind_int64(sqlite3_stmt* stmt, const char* name, int64_t value) {
  int index = sqlite3_bind_parameter_index(stmt, name);
  if (index == 0) return SQLITE_OK;
  return sqlite3_bind_int64(stmt, index, value);
}

std::string column_string(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

// Reads a row of kSelectJobs.
JobRecord read_job(sqlite3_stmt* stmt) {
  JobRecord job;
  job.id = sqlite3_column_int64(stmt, 0);
  job.kind = column_string(stmt, 1);
  job.database = column_string(stmt, 2);
  job.target = column_string(stmt, 3);
  job.backup_id = column_string(stmt, 4);
  job.started_at_ms = sqlite3_column_int64(stmt, 5);
  job.duration_ms = sqlite3_column_int64(stmt, 6);
  job.database_bytes = sqlite3_column_int64(stmt, 7);
  job.stored_bytes = sqlite3_column_int64(stmt, 8);
  job.changed_pages = sqlite3_column_int64(stmt, 9);
  job.result = column_string(stmt, 10);
  job.error = column_string(stmt, 11);
  job.page_count = sqlite3_column_int64(stmt, 12);
  job.page_size = sqlite3_column_int64(stmt, 13);
  job.bytes_uploaded = sqlite3_column_int64(stmt, 14);
  job.bytes_downloaded = sqlite3_column_int64(stmt, 15);
  job.put_requests = sqlite3_column_int64(stmt, 16);
  job.get_requests = sqlite3_column_int64(stmt, 17);
  job.list_requests = sqlite3_column_int64(stmt, 18);
  job.delete_requests = sqlite3_column_int64(stmt, 19);
  return job;
}

// Runs the statements of SQL, which return no rows that matter.
Status exec(sqlite3* db, const std::string& path, const std::string& sql,
            const std::string& what) {
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, path, what);
  return Status::Ok();
}

// mkdir -p with mode 0750 for each directory created.
Status ensure_state_dir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Ok();
    return Status::InvalidArgument("state directory " + dir + " is not a directory");
  }
  // ENOTDIR: an ancestor is not a directory; mkdir below reports it as such.
  int err = errno;
  if (err != ENOENT && err != ENOTDIR) {
    return Status::FromErrno(err, "cannot access state directory " + dir);
  }

  size_t slash = dir.find('/', 1);
  while (true) {
    std::string prefix = slash == std::string::npos ? dir : dir.substr(0, slash);
    // EEXIST: an existing ancestor, or another process won the race; a
    // non-directory there makes the next mkdir (or the open) fail instead.
    if (::mkdir(prefix.c_str(), 0750) != 0 && errno != EEXIST) {
      err = errno;
      std::string context = "cannot create state directory " + dir;
      if (prefix != dir) context += " (at " + prefix + ")";
      return Status::FromErrno(err, context);
    }
    if (slash == std::string::npos) return Status::Ok();
    slash = dir.find('/', slash + 1);
  }
}

struct SchemaState {
  int64_t application_id = 0;
  int64_t user_version = 0;
  int64_t objects = 0;  // tables, indexes, ... in the file
};

Status read_schema_state(sqlite3* db, const std::string& path, SchemaState* state) {
  const std::string what = "cannot read the catalog schema";
  Statement stmt;
  // One statement, so the three values come from one snapshot.
  SQLBAK_RETURN_IF_ERROR(prepare(db, path,
                                 "SELECT (SELECT application_id FROM pragma_application_id),"
                                 " (SELECT user_version FROM pragma_user_version),"
                                 " (SELECT count(*) FROM sqlite_master)",
                                 what, &stmt));
  int rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW) return sqlite_error(db, rc, path, what);
  state->application_id = sqlite3_column_int64(stmt.get(), 0);
  state->user_version = sqlite3_column_int64(stmt.get(), 1);
  state->objects = sqlite3_column_int64(stmt.get(), 2);
  return Status::Ok();
}

Status check_schema_state(const SchemaState& state, const std::string& path) {
  bool empty = state.user_version == 0 && state.objects == 0;
  if (!empty && state.application_id != kApplicationId) {
    return Status::Corruption("catalog " + path +
                              ": a SQLite database of another application, not a sqlbak catalog");
  }
  if (state.user_version > kSchemaVersion) {
    return Status::Unsupported("catalog " + path + ": schema version " +
                               std::to_string(state.user_version) +
                               " is newer than this sqlbak supports (" +
                               std::to_string(kSchemaVersion) + ")");
  }
  return Status::Ok();
}

Status enable_wal(sqlite3* db, const std::string& path) {
  const std::string what = "cannot enable WAL journal mode";
  Statement stmt;
  SQLBAK_RETURN_IF_ERROR(prepare(db, path, "PRAGMA journal_mode=WAL", what, &stmt));
  int rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW) return sqlite_error(db, rc, path, what);
  // The pragma answers with the mode now in effect; a file system without
  // shared memory support, for one, keeps the old mode.
  std::string mode = column_string(stmt.get(), 0);
  if (mode != "wal") {
    return Status::Unsupported("catalog " + path + ": " + what + " (journal mode is '" + mode +
                               "')");
  }
  return Status::Ok();
}

Status migrate_locked(sqlite3* db, const std::string& path) {
  // Re-read under the write lock: another process may have migrated meanwhile.
  SchemaState state;
  SQLBAK_RETURN_IF_ERROR(read_schema_state(db, path, &state));
  SQLBAK_RETURN_IF_ERROR(check_schema_state(state, path));
  for (int64_t v = state.user_version; v < kSchemaVersion; ++v) {
    SQLBAK_RETURN_IF_ERROR(exec(db, path, kMigrations[v],
                                "cannot migrate the schema from version " + std::to_string(v) +
                                    " to " + std::to_string(v + 1)));
  }
  if (state.user_version == kSchemaVersion) return Status::Ok();
  return exec(db, path,
              "PRAGMA application_id = " + std::to_string(kApplicationId) +
                  "; PRAGMA user_version = " + std::to_string(kSchemaVersion),
              "cannot write the schema version");
}

// Brings the schema from STATE (read outside any transaction) to kSchemaVersion.
Status migrate(sqlite3* db, const std::string& path, const SchemaState& state) {
  if (state.user_version == kSchemaVersion) return Status::Ok();  // no write lock needed
  // IMMEDIATE takes the write lock up front, so two processes creating the
  // catalog at once serialize here rather than failing on lock upgrade.
  SQLBAK_RETURN_IF_ERROR(exec(db, path, "BEGIN IMMEDIATE", "cannot lock the catalog for migration"));
  Status s = migrate_locked(db, path);
  if (s.ok()) s = exec(db, path, "COMMIT", "cannot commit the schema migration");
  if (!s.ok()) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return s;
}

}  // namespace

Result<std::unique_ptr<Catalog>> Catalog::open(const std::string& state_dir) {
  if (state_dir.empty()) return Status::InvalidArgument("state directory is empty");
  std::string dir = state_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  SQLBAK_RETURN_IF_ERROR(ensure_state_dir(dir));
  std::string path = (dir == "/" ? "" : dir) + "/catalog.db";

  sqlite3* raw = nullptr;
  // NOMUTEX: a Catalog is used by one thread at a time (see catalog.h).
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  Connection db(raw);
  if (rc != SQLITE_OK) return sqlite_error(db.get(), rc, path, "cannot open");
  sqlite3_extended_result_codes(db.get(), 1);
  rc = sqlite3_busy_timeout(db.get(), 5000);
  if (rc != SQLITE_OK) return sqlite_error(db.get(), rc, path, "cannot set the busy timeout");

  // Identify the file before changing its journal mode: someone else's
  // database must not be converted to WAL.
  SchemaState state;
  SQLBAK_RETURN_IF_ERROR(read_schema_state(db.get(), path, &state));
  SQLBAK_RETURN_IF_ERROR(check_schema_state(state, path));
  SQLBAK_RETURN_IF_ERROR(enable_wal(db.get(), path));
  SQLBAK_RETURN_IF_ERROR(migrate(db.get(), path, state));

  return std::unique_ptr<Catalog>(new Catalog(db.release(), std::move(path)));
}

Catalog::~Catalog() { sqlite3_close_v2(db_); }

Result<int64_t> Catalog::record(const JobRecord& job) {
  const std::string what = "cannot record " + job.kind + " job";
  Statement stmt;
  SQLBAK_RETURN_IF_ERROR(prepare(
      db_, path_,
      "INSERT INTO jobs (kind, \"database\", target, backup_id, started_at_ms, duration_ms,"
      " database_bytes, stored_bytes, changed_pages, result, error, page_count, page_size,"
      " bytes_uploaded, bytes_downloaded, put_requests, get_requests, list_requests,"
      " delete_requests)"
      " VALUES (:kind, :database, :target, :backup_id, :started_at_ms, :duration_ms,"
      " :database_bytes, :stored_bytes, :changed_pages, :result, :error, :page_count,"
      " :page_size, :bytes_uploaded, :bytes_downloaded, :put_requests, :get_requests,"
      " :list_requests, :delete_requests)",
      what, &stmt));
  sqlite3_stmt* s = stmt.get();
  int rc = SQLITE_OK;
  for (int r : {bind_text(s, ":kind", job.kind), bind_text(s, ":database", job.database),
                bind_text(s, ":target", job.target), bind_text(s, ":backup_id", job.backup_id),
                bind_int64(s, ":started_at_ms", job.started_at_ms),
                bind_int64(s, ":duration_ms", job.duration_ms),
                bind_int64(s, ":database_bytes", job.database_bytes),
                bind_int64(s, ":stored_bytes", job.stored_bytes),
                bind_int64(s, ":changed_pages", job.changed_pages),
                bind_text(s, ":result", job.result), bind_text(s, ":error", job.error),
                bind_int64(s, ":page_count", job.page_count),
                bind_int64(s, ":page_size", job.page_size),
                bind_int64(s, ":bytes_uploaded", job.bytes_uploaded),
                bind_int64(s, ":bytes_downloaded", job.bytes_downloaded),
                bind_int64(s, ":put_requests", job.put_requests),
                bind_int64(s, ":get_requests", job.get_requests),
                bind_int64(s, ":list_requests", job.list_requests),
                bind_int64(s, ":delete_requests", job.delete_requests)}) {
    if (rc == SQLITE_OK) rc = r;
  }
  if (rc != SQLITE_OK) return sqlite_error(db_, rc, path_, what);
  rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) return sqlite_error(db_, rc, path_, what);
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Result<std::vector<JobRecord>> Catalog::select_jobs(const std::string& sql, const std::string& what,
                                                    const QueryParams& params) const {
  Statement stmt;
  SQLBAK_RETURN_IF_ERROR(prepare(db_, path_, sql, what, &stmt));
  sqlite3_stmt* s = stmt.get();
  int rc = SQLITE_OK;
  for (const auto& [name, value] : params) {
    if (rc != SQLITE_OK) break;
    rc = std::holds_alternative<int64_t>(value) ? bind_int64(s, name, std::get<int64_t>(value))
                                                : bind_text(s, name, std::get<std::string>(value));
  }
  if (rc != SQLITE_OK) return sqlite_error(db_, rc, path_, what);
  std::vector<JobRecord> out;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(read_job(s));
  if (rc != SQLITE_DONE) return sqlite_error(db_, rc, path_, what);
  return out;
}

namespace {

Result<std::optional<JobRecord>> first_of(Result<std::vector<JobRecord>> rows) {
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(std::move(rows->front()));
}

}  // namespace

Result<std::vector<JobRecord>> Catalog::jobs(const std::string& kind, const std::string& database,
                                             int limit) const {
  // A fixed WHERE per filter combination, rather than "(:kind = '' OR kind =
  // :kind)", so SQLite can pick the matching index.
  std::string sql = kSelectJobs;
  if (!kind.empty() && !database.empty()) {
    sql += " WHERE kind = :kind AND \"database\" = :database";
  } else if (!kind.empty()) {
    sql += " WHERE kind = :kind";
  } else if (!database.empty()) {
    sql += " WHERE \"database\" = :database";
  }
  sql += kNewestFirst;
  sql += " LIMIT :limit";
  // A negative LIMIT means no limit in SQLite.
  return select_jobs(sql, "cannot list jobs",
                     {{":kind", kind}, {":database", database}, {":limit", int64_t{limit > 0 ? limit : -1}}});
}

Result<std::optional<JobRecord>> Catalog::last_success(const std::string& kind,
                                                       const std::string& database) const {
  return first_of(select_jobs(std::string(kSelectJobs) +
                                  " WHERE kind = :kind AND \"database\" = :database"
                                  " AND result = 'success'" + kNewestFirst + " LIMIT 1",
                              "cannot find the last successful " + kind + " job",
                              {{":kind", kind}, {":database", database}}));
}

Result<std::vector<JobRecord>> Catalog::jobs_since(int64_t since_ms,
                                                   const std::string& database) const {
  std::string sql = std::string(kSelectJobs) + " WHERE started_at_ms >= :since";
  if (!database.empty()) sql += " AND \"database\" = :database";
  sql += " ORDER BY started_at_ms, id";
  return select_jobs(sql, "cannot read the job history", {{":since", since_ms}, {":database", database}});
}

Result<std::optional<JobRecord>> Catalog::last_job_for_backup(const std::string& kind,
                                                              const std::string& backup_id,
                                                              const std::string& target) const {
  return first_of(select_jobs(std::string(kSelectJobs) +
                                  " WHERE backup_id = :backup_id AND kind = :kind"
                                  " AND target = :target" + kNewestFirst + " LIMIT 1",
                              "cannot find the last " + kind + " of backup " + backup_id,
                              {{":backup_id", backup_id}, {":kind", kind}, {":target", target}}));
}

}  // namespace sqlbak
