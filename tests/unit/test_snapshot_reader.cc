#include <catch2/catch.hpp>

#include <map>

#include "lib/snapshot_reader.h"
#include "testutil.h"

using namespace sqlbak;
using namespace sqlbak::test;

namespace {

class CollectingSink : public PageSink {
 public:
  explicit CollectingSink(uint32_t page_size) : page_size_(page_size) {}
  Status write_pages(uint32_t first, const uint8_t* data, uint32_t count) override {
    for (uint32_t i = 0; i < count; ++i)
      pages[first + i].assign(reinterpret_cast<const char*>(data) + i * page_size_, page_size_);
    writes += count;
    return fail_after >= 0 && writes > fail_after ? Status::FromErrno(ENOSPC, "sink") : Status::Ok();
  }
  void truncate(uint32_t n) override {
    truncated_to = n;
    pages.erase(pages.upper_bound(n), pages.end());
  }
  // Writes the captured image to PATH.
  void write_image(const std::string& path) const {
    std::string image;
    for (const auto& [no, bytes] : pages) {
      image.resize(static_cast<size_t>(no - 1) * page_size_);
      image += bytes;
    }
    write_file(path, image);
  }
  std::map<uint32_t, std::string> pages;
  uint32_t truncated_to = 0;
  int64_t writes = 0;
  int64_t fail_after = -1;

 private:
  uint32_t page_size_;
};

void run_to_end(SnapshotReader& r) {
  for (;;) {
    auto o = r.step();
    REQUIRE(o.ok());
    if (o->state == StepState::kDone) return;
  }
}

}  // namespace

TEST_CASE("a snapshot of a database at rest holds exactly its pages") {
  TempDir dir;
  const std::string db = dir / "a.db";
  make_db(db, 3000, "delete", 1024);
  const std::string file = read_file(db);
  CollectingSink sink(1024);
  auto r = SnapshotReader::open(db, 7, std::chrono::milliseconds(1000), &sink);
  REQUIRE(r.ok());
  CHECK((*r)->info().journal_mode == "delete");
  run_to_end(**r);
  CHECK((*r)->info().page_count == file.size() / 1024);
  CHECK((*r)->pages_done() == (*r)->pages_total());
  REQUIRE(sink.pages.size() == file.size() / 1024);
  for (uint32_t p = 2; p <= sink.pages.size(); ++p)
    REQUIRE(sink.pages[p] == file.substr((p - 1) * 1024, 1024));
  CHECK((*r)->restarts() == 0);
  // The check needs a pinned snapshot, which rollback mode does not have.
  CHECK((*r)->check(VerifyMode::kQuick).status().code() == ErrorCode::kUnsupported);
}

TEST_CASE("in WAL mode the image is the snapshot at the first step, whatever writers do") {
  TempDir dir;
  const std::string db = dir / "w.db";
  make_db(db, 2000, "wal");
  CollectingSink sink(4096);
  auto r = SnapshotReader::open(db, 4, std::chrono::milliseconds(1000), &sink);
  REQUIRE(r.ok());
  REQUIRE((*r)->info().wal);
  for (int i = 0; i < 3; ++i) REQUIRE((*r)->step().ok());
  // Writers are not blocked by the pinned snapshot, and do not restart it.
  sql(db, "INSERT INTO t(v) SELECT v FROM t; DELETE FROM t WHERE id % 3 = 0;");
  run_to_end(**r);
  CHECK((*r)->restarts() == 0);
  auto check = (*r)->check(VerifyMode::kIntegrity);
  REQUIRE(check.ok());
  CHECK(*check == "ok");
  (*r)->close();
  sink.write_image(dir / "image.db");
  CHECK(query("file:" + dir / "image.db" + "?immutable=1", "SELECT count(*) FROM t") == "2000");
  CHECK(query(db, "PRAGMA journal_mode") == "wal");
}

TEST_CASE("in rollback mode writers restart the copy, which still finishes with their changes") {
  TempDir dir;
  const std::string db = dir / "r.db";
  make_db(db, 2000, "delete");
  CollectingSink sink(4096);
  auto r = SnapshotReader::open(db, 2, std::chrono::milliseconds(1000), &sink);
  REQUIRE(r.ok());
  int steps = 0;
  for (;;) {
    auto o = (*r)->step();
    REQUIRE(o.ok());
    if (o->state == StepState::kDone) break;
    if (++steps % 3 == 0 && steps < 60) sql(db, "INSERT INTO t(v) VALUES ('more')");
  }
  CHECK((*r)->restarts() > 0);
  CHECK((*r)->restarts() <= SnapshotReader::kMaxRestarts + 1);
  (*r)->close();
  sink.write_image(dir / "image.db");
  const std::string rows = query(db, "SELECT count(*) FROM t");
  CHECK(query("file:" + dir / "image.db" + "?immutable=1", "SELECT count(*) FROM t") == rows);
  CHECK(query("file:" + dir / "image.db" + "?immutable=1", "PRAGMA integrity_check") == "ok");
}

TEST_CASE("a busy source asks to retry later instead of blocking") {
  TempDir dir;
  const std::string db = dir / "b.db";
  make_db(db, 500, "delete");
  CollectingSink sink(4096);
  auto r = SnapshotReader::open(db, 10, std::chrono::milliseconds(20), &sink);
  REQUIRE(r.ok());
  sqlite3* holder = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &holder) == SQLITE_OK);
  REQUIRE(sqlite3_exec(holder, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  auto o = (*r)->step();
  REQUIRE(o.ok());
  CHECK(o->state == StepState::kRetryLater);
  CHECK(o->retry_after_ms > 0);
  sqlite3_exec(holder, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(holder);
  run_to_end(**r);
}

TEST_CASE("bad sources get errors that name them") {
  TempDir dir;
  CollectingSink sink(4096);
  auto missing = SnapshotReader::open(dir / "missing.db", 10, std::chrono::milliseconds(10), &sink);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == ErrorCode::kNotFound);
  CHECK(missing.status().message().find("missing.db") != std::string::npos);

  write_file(dir / "text.db", "this is not a database, just some text that is long enough\n");
  auto text = SnapshotReader::open(dir / "text.db", 10, std::chrono::milliseconds(10), &sink);
  REQUIRE_FALSE(text.ok());
  CHECK(text.status().message().find("not a SQLite database") != std::string::npos);

  auto directory = SnapshotReader::open(dir.path(), 10, std::chrono::milliseconds(10), &sink);
  REQUIRE_FALSE(directory.ok());
}

TEST_CASE("a sink failure fails the step with the sink's error; cancel stops between steps") {
  TempDir dir;
  const std::string db = dir / "s.db";
  make_db(db, 2000, "wal");
  {
    CollectingSink sink(4096);
    sink.fail_after = 5;
    auto r = SnapshotReader::open(db, 4, std::chrono::milliseconds(10), &sink);
    REQUIRE(r.ok());
    Result<StepOutcome> o = StepOutcome{};
    while (o.ok() && o->state != StepState::kDone) o = (*r)->step();
    REQUIRE_FALSE(o.ok());
    CHECK(o.status().code() == ErrorCode::kNoSpace);
  }
  {
    CollectingSink sink(4096);
    auto r = SnapshotReader::open(db, 4, std::chrono::milliseconds(10), &sink);
    REQUIRE(r.ok());
    REQUIRE((*r)->step().ok());
    (*r)->cancel();
    CHECK((*r)->step().status().code() == ErrorCode::kCancelled);
  }
  CHECK(query(db, "PRAGMA journal_mode") == "wal");
  CHECK(query(db, "SELECT count(*) FROM sqlite_schema") == "2");
}

namespace {

// A commit after which integrity_check fails: index i no longer matches its
// definition. Checking a snapshot taken before it says "ok".
void commit_a_broken_index(const std::string& db) {
  const std::string version = query(db, "PRAGMA schema_version");
  sql(db, "PRAGMA writable_schema=ON;"
          " UPDATE sqlite_schema SET sql = 'CREATE INDEX i ON t(id, v)' WHERE name = 'i';"
          " PRAGMA schema_version=" + std::to_string(std::stoll(version) + 1) + ";"
          " PRAGMA writable_schema=OFF;");
}

std::string run_with_concurrent_check(const std::string& db, SnapshotOptions options, bool* concurrent,
                                      bool break_while_copying = false) {
  CollectingSink sink(4096);
  options.concurrent_check = VerifyMode::kIntegrity;
  auto r = SnapshotReader::open(db, 8, std::chrono::milliseconds(1000), &sink, options);
  REQUIRE(r.ok());
  *concurrent = (*r)->checks_concurrently();
  REQUIRE((*r)->step().ok());
  if (break_while_copying) commit_a_broken_index(db);
  run_to_end(**r);
  auto check = (*r)->check(VerifyMode::kIntegrity);
  REQUIRE(check.ok());
  return *check;
}

}  // namespace

TEST_CASE("in WAL mode the concurrent check reads exactly the snapshot the copy pins") {
  TempDir dir;
  const std::string db = dir / "c.db";
  make_db(db, 3000, "wal");
  sql(db, "CREATE INDEX i ON t(v)");
  REQUIRE(query(db, "PRAGMA integrity_check") == "ok");
  bool concurrent = false;

  SECTION("nothing commits: the check runs beside the copy") {
    CHECK(run_with_concurrent_check(db, {}, &concurrent) == "ok");
    CHECK(concurrent);
  }
  SECTION("a commit while copying is seen by neither the copy nor the check") {
    CHECK(run_with_concurrent_check(db, {}, &concurrent, /*break_while_copying=*/true) == "ok");
    CHECK(concurrent);
    // The damage is real: a later check of the database sees it.
    CHECK(query(db, "PRAGMA integrity_check") != "ok");
  }
  SECTION("a commit between the two pins: the checker is dropped, the copy's own snapshot is checked") {
    SnapshotOptions options;
    options.between_pins_for_test = [&] { commit_a_broken_index(db); };
    CHECK(run_with_concurrent_check(db, options, &concurrent) == "ok");
    CHECK_FALSE(concurrent);
    CHECK(query(db, "PRAGMA integrity_check") != "ok");
  }
}

TEST_CASE("in rollback-journal mode there is no concurrent check") {
  TempDir dir;
  const std::string db = dir / "r.db";
  make_db(db, 500, "delete");
  CollectingSink sink(4096);
  SnapshotOptions options;
  options.concurrent_check = VerifyMode::kIntegrity;
  auto r = SnapshotReader::open(db, 8, std::chrono::milliseconds(1000), &sink, options);
  REQUIRE(r.ok());
  CHECK_FALSE((*r)->checks_concurrently());
  run_to_end(**r);
  CHECK((*r)->check(VerifyMode::kIntegrity).status().code() == ErrorCode::kUnsupported);
}
