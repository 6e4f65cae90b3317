#include "lib/catalog.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "lib/config.h"
#include "lib/operations.h"

namespace sqlbak {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sqlbak-catalog-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<Catalog> open_catalog(const std::string& state_dir) {
  auto catalog = Catalog::open(state_dir);
  INFO((catalog.ok() ? std::string() : catalog.status().message()));
  REQUIRE(catalog.ok());
  return std::move(catalog).value();
}

JobRecord make_job(const std::string& kind, const std::string& database, int64_t started_at_ms,
                   const std::string& result = "success") {
  JobRecord job;
  job.kind = kind;
  job.database = database;
  job.target = "local";
  job.started_at_ms = started_at_ms;
  job.result = result;
  return job;
}

int64_t record(Catalog* catalog, const JobRecord& job) {
  auto id = catalog->record(job);
  INFO((id.ok() ? std::string() : id.status().message()));
  REQUIRE(id.ok());
  return *id;
}

std::vector<JobRecord> list(const Catalog& catalog, const std::string& kind,
                            const std::string& database, int limit) {
  auto jobs = catalog.jobs(kind, database, limit);
  INFO((jobs.ok() ? std::string() : jobs.status().message()));
  REQUIRE(jobs.ok());
  return jobs.value();
}

std::vector<int64_t> ids_of(const std::vector<JobRecord>& jobs) {
  std::vector<int64_t> ids;
  for (const JobRecord& job : jobs) ids.push_back(job.id);
  return ids;
}

// A direct connection to a catalog file, as another tool would have.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    INFO(sql << ": " << (error != nullptr ? error : ""));
    sqlite3_free(error);
    REQUIRE(rc == SQLITE_OK);
  }
  // Without assertions: Catch2 assertions are not thread-safe.
  int try_exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  // The plan of SQL: the "detail" column of EXPLAIN QUERY PLAN, one line per step.
  std::string plan(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &stmt, nullptr) ==
            SQLITE_OK);
    std::string detail;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      detail += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
      detail += "\n";
    }
    sqlite3_finalize(stmt);
    return detail;
  }
  // The first column of the first row of SQL, as text.
  std::string query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string value;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return value;
  }

 private:
  sqlite3* db_ = nullptr;
};

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  REQUIRE(out.good());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_CASE("catalog: record and read back every field", "[catalog]") {
  TempDir dir;
  auto catalog = open_catalog(dir.path());

  JobRecord job;
  job.kind = "backup";
  job.database = "orders\xC3\xA9";  // UTF-8
  job.target = "s3-eu";
  job.backup_id = std::string("20250101T020000Z-\0ab", 20);  // an embedded NUL survives
  job.started_at_ms = 1735696800123;
  job.duration_ms = 4567;
  job.database_bytes = std::numeric_limits<int64_t>::max();
  job.stored_bytes = 1234567890123;
  job.changed_pages = 42;
  job.result = "failure";
  job.error = "upload: 503 'Slow Down'; \"quoted\"";
  job.id = 999;  // ignored: the catalog assigns ids

  int64_t id = record(catalog.get(), job);
  CHECK(id > 0);
  CHECK(id != 999);

  auto jobs = list(*catalog, "", "", 0);
  REQUIRE(jobs.size() == 1);
  const JobRecord& got = jobs[0];
  CHECK(got.id == id);
  CHECK(got.kind == job.kind);
  CHECK(got.database == job.database);
  CHECK(got.target == job.target);
  CHECK(got.backup_id == job.backup_id);
  CHECK(got.backup_id.size() == 20);
  CHECK(got.started_at_ms == job.started_at_ms);
  CHECK(got.duration_ms == job.duration_ms);
  CHECK(got.database_bytes == job.database_bytes);
  CHECK(got.stored_bytes == job.stored_bytes);
  CHECK(got.changed_pages == job.changed_pages);
  CHECK(got.result == job.result);
  CHECK(got.error == job.error);

  // Empty strings and negative numbers are stored as they are.
  JobRecord bare;
  bare.kind = "prune";
  bare.result = "success";
  bare.started_at_ms = -5;
  bare.duration_ms = -1;
  int64_t bare_id = record(catalog.get(), bare);
  CHECK(bare_id > id);
  jobs = list(*catalog, "prune", "", 0);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].id == bare_id);
  CHECK(jobs[0].database.empty());
  CHECK(jobs[0].target.empty());
  CHECK(jobs[0].backup_id.empty());
  CHECK(jobs[0].error.empty());
  CHECK(jobs[0].started_at_ms == -5);
  CHECK(jobs[0].duration_ms == -1);
  CHECK(jobs[0].database_bytes == 0);
}

TEST_CASE("catalog: jobs are newest first, ties broken by the newer id", "[catalog]") {
  TempDir dir;
  auto catalog = open_catalog(dir.path());
  int64_t a = record(catalog.get(), make_job("backup", "db1", 100));
  int64_t b = record(catalog.get(), make_job("backup", "db1", 300));
  int64_t c = record(catalog.get(), make_job("backup", "db1", 200));
  int64_t d = record(catalog.get(), make_job("backup", "db1", 300));  // same time as b
  CHECK(ids_of(list(*catalog, "", "", 0)) == std::vector<int64_t>{d, b, c, a});
}

TEST_CASE("catalog: kind and database filters, empty meaning any", "[catalog]") {
  TempDir dir;
  auto catalog = open_catalog(dir.path());
  int64_t b1 = record(catalog.get(), make_job("backup", "db1", 10));
  int64_t b2 = record(catalog.get(), make_job("backup", "db2", 20));
  int64_t v1 = record(catalog.get(), make_job("verify", "db1", 30));
  int64_t p = record(catalog.get(), make_job("prune", "", 40));
  int64_t b1b = record(catalog.get(), make_job("backup", "db1", 50, "failure"));

  CHECK(ids_of(list(*catalog, "", "", 0)) == std::vector<int64_t>{b1b, p, v1, b2, b1});
  CHECK(ids_of(list(*catalog, "backup", "", 0)) == std::vector<int64_t>{b1b, b2, b1});
  CHECK(ids_of(list(*catalog, "", "db1", 0)) == std::vector<int64_t>{b1b, v1, b1});
  CHECK(ids_of(list(*catalog, "backup", "db1", 0)) == std::vector<int64_t>{b1b, b1});
  CHECK(ids_of(list(*catalog, "verify", "db2", 0)).empty());
  CHECK(ids_of(list(*catalog, "restore", "", 0)).empty());
  CHECK(ids_of(list(*catalog, "", "nosuchdb", 0)).empty());
}

TEST_CASE("catalog: limit", "[catalog]") {
  TempDir dir;
  auto catalog = open_catalog(dir.path());
  std::vector<int64_t> newest_first;
  for (int i = 0; i < 5; ++i) {
    newest_first.insert(newest_first.begin(), record(catalog.get(), make_job("backup", "db", i)));
  }
  CHECK(ids_of(list(*catalog, "", "", 0)) == newest_first);
  CHECK(ids_of(list(*catalog, "", "", -1)) == newest_first);
  CHECK(ids_of(list(*catalog, "", "", 1)) == std::vector<int64_t>{newest_first[0]});
  CHECK(ids_of(list(*catalog, "backup", "db", 2)) ==
        std::vector<int64_t>{newest_first[0], newest_first[1]});
  CHECK(ids_of(list(*catalog, "", "", 5)) == newest_first);
  CHECK(ids_of(list(*catalog, "", "", 100)) == newest_first);
}

TEST_CASE("catalog: last_success", "[catalog]") {
  TempDir dir;
  auto catalog = open_catalog(dir.path());

  auto none = catalog->last_success("backup", "db1");
  REQUIRE(none.ok());
  CHECK_FALSE(none.value().has_value());

  record(catalog.get(), make_job("backup", "db1", 100));
  int64_t wanted = record(catalog.get(), make_job("backup", "db1", 200));
  record(catalog.get(), make_job("backup", "db1", 150));                // older, recorded later
  record(catalog.get(), make_job("backup", "db1", 300, "failure"));     // newer, failed
  record(catalog.get(), make_job("backup", "db1", 400, "cancelled"));   // newer, cancelled
  record(catalog.get(), make_job("backup", "db2", 500));                // other database
  record(catalog.get(), make_job("verify", "db1", 600));                // other kind
  int64_t prune = record(catalog.get(), make_job("prune", "", 700));

  auto last = catalog->last_success("backup", "db1");
  REQUIRE(last.ok());
  REQUIRE(last.value().has_value());
  CHECK(last.value()->id == wanted);
  CHECK(last.value()->started_at_ms == 200);
  CHECK(last.value()->result == "success");

  // Same start time: the later record wins, as in jobs().
  int64_t tie = record(catalog.get(), make_job("backup", "db1", 200));
  last = catalog->last_success("backup", "db1");
  REQUIRE(last.ok());
  REQUIRE(last.value().has_value());
  CHECK(last.value()->id == tie);

  // The database is matched exactly: "" names repository-wide jobs.
  auto repo_wide = catalog->last_success("prune", "");
  REQUIRE(repo_wide.ok());
  REQUIRE(repo_wide.value().has_value());
  CHECK(repo_wide.value()->id == prune);
  auto no_db = catalog->last_success("backup", "");
  REQUIRE(no_db.ok());
  CHECK_FALSE(no_db.value().has_value());
  auto only_failed = catalog->last_success("restore", "db1");
  REQUIRE(only_failed.ok());
  CHECK_FALSE(only_failed.value().has_value());
}

TEST_CASE("catalog: reopening keeps the data", "[catalog]") {
  TempDir dir;
  int64_t first;
  {
    auto catalog = open_catalog(dir.path());
    first = record(catalog.get(), make_job("backup", "db1", 100));
  }
  auto catalog = open_catalog(dir.path());
  auto jobs = list(*catalog, "", "", 0);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].id == first);
  CHECK(jobs[0].database == "db1");
  CHECK(record(catalog.get(), make_job("backup", "db1", 200)) > first);
}

TEST_CASE("catalog: two catalogs on one file see each other's writes", "[catalog]") {
  TempDir dir;
  auto daemon = open_catalog(dir.path());
  auto offline = open_catalog(dir.path());
  CHECK(daemon->path() == offline->path());

  int64_t a = record(daemon.get(), make_job("backup", "db1", 100));
  CHECK(ids_of(list(*offline, "", "", 0)) == std::vector<int64_t>{a});

  int64_t b = record(offline.get(), make_job("verify", "db1", 200));
  CHECK(b != a);
  CHECK(ids_of(list(*daemon, "", "", 0)) == std::vector<int64_t>{b, a});
  auto last = daemon->last_success("verify", "db1");
  REQUIRE(last.ok());
  REQUIRE(last.value().has_value());
  CHECK(last.value()->id == b);
}

TEST_CASE("catalog: waits for another writer instead of failing", "[catalog]") {
  TempDir dir;
  auto catalog = open_catalog(dir.path());
  RawDb other(catalog->path());
  other.exec("BEGIN IMMEDIATE");
  int commit_rc = -1;
  std::thread release([&other, &commit_rc] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    commit_rc = other.try_exec("COMMIT");
  });
  auto id = catalog->record(make_job("backup", "db1", 100));
  release.join();
  CHECK(commit_rc == SQLITE_OK);
  INFO((id.ok() ? std::string() : id.status().message()));
  CHECK(id.ok());
}

TEST_CASE("catalog: the file is in WAL mode with a versioned schema", "[catalog]") {
  TempDir dir;
  auto catalog = open_catalog(dir.path());
  CHECK(catalog->path() == dir.path() + "/catalog.db");
  RawDb raw(catalog->path());
  CHECK(raw.query("PRAGMA journal_mode") == "wal");
  CHECK(raw.query("PRAGMA user_version") == "2");
  // Every filter combination is served by an index that also gives the order
  // (no sort step), as the history grows for years.
  for (const std::string& where :
       {std::string(), std::string(" WHERE kind = 'backup'"),
        std::string(" WHERE \"database\" = 'db1'"),
        std::string(" WHERE kind = 'backup' AND \"database\" = 'db1'"),
        std::string(" WHERE kind = 'backup' AND \"database\" = 'db1' AND result = 'success'")}) {
    std::string plan =
        raw.plan("SELECT * FROM jobs" + where + " ORDER BY started_at_ms DESC, id DESC LIMIT 5");
    INFO(where << "\n" << plan);
    CHECK(plan.find("INDEX jobs_by_") != std::string::npos);
    CHECK(plan.find("TEMP B-TREE") == std::string::npos);
  }
}

TEST_CASE("catalog: creates the state directory and its parents, mode 0750", "[catalog]") {
  TempDir dir;
  std::string state_dir = dir.path() + "/var/lib/sqlbak";
  auto catalog = open_catalog(state_dir + "/");  // a trailing slash is fine
  CHECK(catalog->path() == state_dir + "/catalog.db");
  CHECK(fs::is_regular_file(catalog->path()));

  mode_t mask = ::umask(0);
  ::umask(mask);
  for (const std::string& created :
       {dir.path() + "/var", dir.path() + "/var/lib", state_dir}) {
    struct stat st;
    REQUIRE(::stat(created.c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK((st.st_mode & 07777) == (0750 & ~mask));
  }
}

TEST_CASE("catalog: a state directory that cannot be created is an error naming it",
          "[catalog]") {
  TempDir dir;
  std::string file = dir.path() + "/plain-file";
  write_file(file, "x");

  std::string state_dir = file + "/state";
  auto catalog = Catalog::open(state_dir);
  REQUIRE_FALSE(catalog.ok());
  CHECK_THAT(catalog.status().message(),
             Catch::Contains("cannot create state directory " + state_dir) &&
                 Catch::Contains("Not a directory"));

  // The state directory is itself a regular file.
  catalog = Catalog::open(file);
  REQUIRE_FALSE(catalog.ok());
  CHECK(catalog.status().code() == ErrorCode::kInvalidArgument);
  CHECK_THAT(catalog.status().message(), Catch::Contains(file) &&
                                              Catch::Contains("not a directory"));

  catalog = Catalog::open("");
  REQUIRE_FALSE(catalog.ok());
  CHECK(catalog.status().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("catalog: a file that is not SQLite is a clear error and is left alone",
          "[catalog]") {
  TempDir dir;
  std::string path = dir.path() + "/catalog.db";
  std::string content;
  for (int i = 0; i < 100; ++i) content += "this is not a SQLite database\n";
  write_file(path, content);

  auto catalog = Catalog::open(dir.path());
  REQUIRE_FALSE(catalog.ok());
  CHECK(catalog.status().code() == ErrorCode::kCorruption);
  CHECK_THAT(catalog.status().message(),
             Catch::Contains(path) && Catch::Contains("not a database"));
  CHECK(read_file(path) == content);
}

TEST_CASE("catalog: another application's SQLite database is refused", "[catalog]") {
  TempDir dir;
  std::string path = dir.path() + "/catalog.db";
  {
    RawDb raw(path);
    raw.exec("CREATE TABLE users (name TEXT)");
  }
  auto catalog = Catalog::open(dir.path());
  REQUIRE_FALSE(catalog.ok());
  CHECK(catalog.status().code() == ErrorCode::kCorruption);
  CHECK_THAT(catalog.status().message(),
             Catch::Contains(path) && Catch::Contains("not a sqlbak catalog"));
  RawDb raw(path);
  CHECK(raw.query("PRAGMA journal_mode") == "delete");  // not converted to WAL
  CHECK(raw.query("SELECT count(*) FROM sqlite_master") == "1");
}

TEST_CASE("catalog: a newer schema version is refused", "[catalog]") {
  TempDir dir;
  std::string path;
  {
    auto catalog = open_catalog(dir.path());
    path = catalog->path();
  }
  {
    RawDb raw(path);
    raw.exec("PRAGMA user_version = 3");
  }
  auto catalog = Catalog::open(dir.path());
  REQUIRE_FALSE(catalog.ok());
  CHECK(catalog.status().code() == ErrorCode::kUnsupported);
  CHECK_THAT(catalog.status().message(),
             Catch::Contains(path) && Catch::Contains("schema version 3"));
}

TEST_CASE("catalog: SQLite errors after opening name the catalog", "[catalog]") {
  TempDir dir;
  auto catalog = open_catalog(dir.path());
  {
    RawDb raw(catalog->path());
    raw.exec("DROP TABLE jobs");
  }
  auto id = catalog->record(make_job("backup", "db1", 100));
  REQUIRE_FALSE(id.ok());
  CHECK_THAT(id.status().message(), Catch::Contains("catalog " + catalog->path()) &&
                                        Catch::Contains("no such table: jobs"));
  auto jobs = catalog->jobs("", "", 0);
  REQUIRE_FALSE(jobs.ok());
  CHECK_THAT(jobs.status().message(), Catch::Contains(catalog->path()));
  auto last = catalog->last_success("backup", "db1");
  REQUIRE_FALSE(last.ok());
  CHECK_THAT(last.status().message(), Catch::Contains(catalog->path()));
}


TEST_CASE("catalog: a version-1 catalog is migrated and keeps its history", "[catalog]") {
  TempDir dir;
  const std::string path = dir.path() + "/catalog.db";
  {
    // The version-1 schema as an older sqlbak left it, with one job in it.
    RawDb raw(path);
    raw.exec(R"sql(
      PRAGMA journal_mode=WAL;
      CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
        "database" TEXT NOT NULL, target TEXT NOT NULL, backup_id TEXT NOT NULL,
        started_at_ms INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
        database_bytes INTEGER NOT NULL, stored_bytes INTEGER NOT NULL,
        changed_pages INTEGER NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL);
      INSERT INTO jobs VALUES (7, 'backup', 'shop', 'local', 'B1', 1000, 20, 4096, 100, 1,
                               'success', '');
      PRAGMA application_id = 1936810603; PRAGMA user_version = 1;)sql");
  }
  auto catalog = open_catalog(dir.path());
  auto jobs = list(*catalog, "", "", 0);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].id == 7);
  CHECK(jobs[0].backup_id == "B1");
  CHECK(jobs[0].page_count == 0);
  CHECK(jobs[0].put_requests == 0);
  JobRecord job = make_job("backup", "shop", 2000);
  job.page_count = 10;
  job.page_size = 4096;
  job.bytes_uploaded = 5;
  job.delete_requests = 3;
  record(catalog.get(), job);
  jobs = list(*catalog, "", "", 0);
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].page_count == 10);
  CHECK(jobs[0].page_size == 4096);
  CHECK(jobs[0].bytes_uploaded == 5);
  CHECK(jobs[0].delete_requests == 3);
}

TEST_CASE("catalog: jobs since a time, oldest first, and the last job of a backup", "[catalog]") {
  TempDir dir;
  auto catalog = open_catalog(dir.path());
  record(catalog.get(), make_job("backup", "a", 100));
  record(catalog.get(), make_job("backup", "b", 200));
  record(catalog.get(), make_job("backup", "a", 300));
  auto since = catalog->jobs_since(150, "");
  REQUIRE(since.ok());
  REQUIRE(since->size() == 2);
  CHECK((*since)[0].started_at_ms == 200);
  CHECK((*since)[1].started_at_ms == 300);
  auto only_a = catalog->jobs_since(0, "a");
  REQUIRE(only_a.ok());
  CHECK(only_a->size() == 2);

  JobRecord v1 = make_job("verify", "a", 400);
  v1.backup_id = "X";
  v1.target = "local";
  v1.result = "failure";
  JobRecord v2 = v1;
  v2.started_at_ms = 500;
  v2.result = "success";
  JobRecord other_target = v1;
  other_target.started_at_ms = 600;
  other_target.target = "offsite";
  record(catalog.get(), v1);
  record(catalog.get(), v2);
  record(catalog.get(), other_target);
  auto last = catalog->last_job_for_backup("verify", "X", "local");
  REQUIRE(last.ok());
  REQUIRE(last->has_value());
  CHECK((*last)->started_at_ms == 500);
  CHECK((*last)->result == "success");
  auto none = catalog->last_job_for_backup("verify", "Y", "local");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
}

TEST_CASE("catalog: a Workspace charges each job with its own target's requests and bytes", "[catalog]") {
  TempDir dir;
  fs::create_directories(dir.path() + "/local");
  fs::create_directories(dir.path() + "/other");
  const std::string text = "state_dir: " + dir.path() + "/state\n" +
                           "targets:\n  local: {type: local, path: " + dir.path() + "/local}\n" +
                           "  other: {type: local, path: " + dir.path() + "/other}\n" +
                           "databases:\n  - name: shop\n    path: /srv/shop.db\n    targets: [local, other]\n";
  ConfigLoadResult loaded = load_config_from_string(text, dir.path() + "/config.yaml");
  INFO((loaded.errors.empty() ? "" : loaded.errors[0].to_string()));
  REQUIRE(loaded.config);
  Workspace ws(*loaded.config, [] { return int64_t{1000}; });
  auto local = ws.repository("local", true);  // creating it: a GET of "config", then its PUT
  REQUIRE(local.ok());
  auto other = ws.repository("other", true);
  REQUIRE(other.ok());
  REQUIRE((*local)->store().put("packs/ab/ab01", "12345").ok());
  REQUIRE((*other)->store().put("packs/cd/cd01", "1234567").ok());

  JobRecord first = make_job("backup", "shop", 100);
  first.put_requests = 99;  // replaced by what the store did
  ws.record(first);
  std::string data;
  REQUIRE((*local)->store().get("packs/ab/ab01", &data).ok());
  REQUIRE((*local)->store().list("packs/").ok());
  REQUIRE((*local)->store().remove("packs/ab/ab01").ok());
  ws.record(make_job("verify", "shop", 200));
  JobRecord elsewhere = make_job("backup", "", 300);  // no open target: what the caller set
  elsewhere.target = "";
  elsewhere.get_requests = 7;
  ws.record(elsewhere);
  JobRecord on_other = make_job("backup", "shop", 400);
  on_other.target = "other";
  ws.record(on_other);

  auto jobs = ws.catalog()->jobs_since(0, "");
  REQUIRE(jobs.ok());
  REQUIRE(jobs->size() == 4);
  const JobRecord& a = (*jobs)[0];
  CHECK(a.put_requests == 2);
  CHECK(a.get_requests == 1);
  CHECK(a.list_requests == 0);
  CHECK(a.delete_requests == 0);
  CHECK(a.bytes_uploaded > 5);  // the config object, then the pack
  CHECK(a.bytes_downloaded == 0);
  const JobRecord& b = (*jobs)[1];
  CHECK(b.put_requests == 0);
  CHECK(b.get_requests == 1);
  CHECK(b.list_requests == 1);
  CHECK(b.delete_requests == 1);
  CHECK(b.bytes_uploaded == 0);
  CHECK(b.bytes_downloaded == 5);
  CHECK((*jobs)[2].get_requests == 7);
  const JobRecord& c = (*jobs)[3];
  CHECK(c.target == "other");
  CHECK(c.put_requests == 2);
  CHECK(c.get_requests == 1);
  // Each repository's config object is the same size (its id is 16 hex digits).
  CHECK(c.bytes_uploaded - 7 == a.bytes_uploaded - 5);
}

}  // namespace
}  // namespace sqlbak
