#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <string>
#include <vector>

#include "lib/backup.h"
#include "lib/local_store.h"
#include "lib/pack.h"
#include "lib/restore.h"
#include "testutil.h"

using namespace sqlbak;
using namespace sqlbak::test;

namespace {

// Delegates to a real store and fails the Nth put with ENOSPC (or PUT_ERRNO, e.g.
// EIO); with FAIL_GET_PREFIX, every get and get_range of a key that starts with
// it fails with EIO, as a disk with a bad sector would.
class FullDiskStore : public ForwardingStore {
 public:
  FullDiskStore(std::unique_ptr<ObjectStore> inner, int fail_at_put, int put_errno = ENOSPC,
                std::string fail_get_prefix = "")
      : ForwardingStore(std::move(inner)),
        fail_at_(fail_at_put),
        put_errno_(put_errno),
        fail_get_prefix_(std::move(fail_get_prefix)) {}
  Status put(const std::string& key, std::string_view data) override {
    if (fail_at_ > 0 && ++puts_ >= fail_at_)
      return Status::FromErrno(put_errno_, describe() + ": cannot write " + key);
    return inner_->put(key, data);
  }
  Status get(const std::string& k, std::string* d) const override {
    if (read_fails(k)) return Status::FromErrno(EIO, describe() + ": cannot read object " + k);
    return inner_->get(k, d);
  }
  Status get_range(const std::string& k, uint64_t o, uint64_t l, std::string* d) const override {
    if (read_fails(k)) return Status::FromErrno(EIO, describe() + ": cannot read object " + k);
    return inner_->get_range(k, o, l, d);
  }

 private:
  bool read_fails(const std::string& key) const {
    return !fail_get_prefix_.empty() && key.compare(0, fail_get_prefix_.size(), fail_get_prefix_) == 0;
  }
  std::atomic<int> puts_{0};
  int fail_at_;
  int put_errno_;
  std::string fail_get_prefix_;
};

// Records the niceness of the thread that stores each pack.
class PriorityProbeStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Status put(const std::string& key, std::string_view data) override {
    if (key.rfind("packs/", 0) == 0) {
      errno = 0;
      const int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
      std::lock_guard<std::mutex> lock(mu_);
      pack_nice_.push_back(errno == 0 ? nice : -100);
    }
    return inner_->put(key, data);
  }
  std::vector<int> pack_nice() const {
    std::lock_guard<std::mutex> lock(mu_);
    return pack_nice_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<int> pack_nice_;
};

struct Fixture {
  TempDir dir;
  std::string db = dir / "app.db";
  std::string repo_dir = dir / "repo";
  int64_t clock_ms = 1764000000000;

  Fixture() { std::filesystem::create_directory(repo_dir); }

  std::unique_ptr<Repository> repo(int fail_at_put = 0, int put_errno = ENOSPC,
                                   const std::string& fail_get_prefix = "") {
    auto store = LocalObjectStore::open("local", repo_dir, true);
    REQUIRE(store.ok());
    std::unique_ptr<ObjectStore> s = std::move(store).value();
    if (fail_at_put > 0 || !fail_get_prefix.empty())
      s = std::make_unique<FullDiskStore>(std::move(s), fail_at_put, put_errno, fail_get_prefix);
    auto r = Repository::open(std::move(s), "local", true);
    REQUIRE(r.ok());
    return std::move(r).value();
  }

  BackupRequest request(Repository* r, VerifyMode verify = VerifyMode::kIntegrity) {
    BackupRequest req;
    req.database.name = "app";
    req.database.path = db;
    req.database.settings.step_pages = 64;
    req.database.settings.verify = verify;
    req.targets = {r};
    req.scratch_dir = dir.path();
    req.now_ms = [this] { return clock_ms += 1000; };
    return req;
  }

  TargetOutcome backup(Repository* r, VerifyMode verify = VerifyMode::kIntegrity) {
    Status st;
    auto outcomes = run_backup(request(r, verify), nullptr, &st);
    if (!st.ok()) return TargetOutcome{"local", st, {}};
    REQUIRE(outcomes.size() == 1);
    return outcomes[0];
  }
};

}  // namespace

TEST_CASE("full then incremental backups restore to the state of each", "[backup]") {
  Fixture f;
  make_db(f.db, 20000, "wal");
  auto repo = f.repo();
  TargetOutcome first = f.backup(repo.get());
  REQUIRE(first.status.ok());
  CHECK(first.manifest.kind == "full");
  CHECK(first.manifest.verification == "ok");
  const std::string count1 = query(f.db, "SELECT count(*) FROM t");

  // Change about 1 % of the pages: rows that sit on one page in a hundred.
  sql(f.db, "UPDATE t SET b = randomblob(150) WHERE id % 2000 = 0");
  sql(f.db, "INSERT INTO t(v) VALUES ('after first')");
  TargetOutcome second = f.backup(repo.get());
  REQUIRE(second.status.ok());
  CHECK(second.manifest.kind == "incremental");
  CHECK(second.manifest.stored_bytes * 10 <= first.manifest.stored_bytes);

  auto listed = repo->list_manifests("app");
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0].id == second.manifest.id);  // newest first

  REQUIRE(restore_backup(*repo, first.manifest, f.dir / "old.db", false).ok());
  CHECK(query(f.dir / "old.db", "SELECT count(*) FROM t") == count1);
  CHECK(query(f.dir / "old.db", "PRAGMA journal_mode") == "wal");
  REQUIRE(restore_backup(*repo, second.manifest, f.dir / "new.db", false).ok());
  CHECK(query(f.dir / "new.db", "SELECT count(*) FROM t WHERE v = 'after first'") == "1");

  // An existing file is only replaced when asked.
  Status refused = restore_backup(*repo, first.manifest, f.dir / "new.db", false);
  CHECK(refused.code() == ErrorCode::kInvalidArgument);
  CHECK(query(f.dir / "new.db", "SELECT count(*) FROM t WHERE v = 'after first'") == "1");
  REQUIRE(restore_backup(*repo, first.manifest, f.dir / "new.db", true).ok());
  CHECK(query(f.dir / "new.db", "SELECT count(*) FROM t WHERE v = 'after first'") == "0");
}

TEST_CASE("a full disk or an I/O error storing a pack, an index or the manifest fails the backup and loses nothing",
          "[backup]") {
  struct Fault {
    int err;
    ErrorCode code;
    const char* text;
  };
  const Fault fault = GENERATE(Fault{ENOSPC, ErrorCode::kNoSpace, "No space left on device"},
                               Fault{EIO, ErrorCode::kIOError, "Input/output error"});
  Fixture f;
  make_db(f.db, 20000, "delete");
  auto repo = f.repo();
  TargetOutcome first = f.backup(repo.get());
  REQUIRE(first.status.ok());

  sql(f.db, "UPDATE t SET b = randomblob(190)");  // every page changes
  // Puts 1, 2 and 3 of this backup: its pack, the pack's index, its manifest.
  for (int fail_at : {1, 2, 3}) {
    INFO("failing put " << fail_at << " with " << fault.text);
    auto broken = f.repo(fail_at, fault.err);
    TargetOutcome failed = f.backup(broken.get());
    REQUIRE_FALSE(failed.status.ok());
    CHECK(failed.status.code() == fault.code);
    CHECK(failed.status.message().find("target 'local'") != std::string::npos);
    CHECK(failed.status.message().find("'app'") != std::string::npos);
    CHECK(failed.status.message().find(fault.text) != std::string::npos);
    auto listed = repo->list_manifests("app");
    REQUIRE(listed.ok());
    CHECK(listed->size() == 1);
  }
  auto check = verify_backup(*repo, first.manifest, f.dir.path(), VerifyMode::kIntegrity);
  REQUIRE(check.ok());
  CHECK(*check == "ok");
  // And the next backup, with the target healthy again, succeeds.
  CHECK(f.backup(repo.get()).status.ok());
}

TEST_CASE("an I/O error reading a pack fails verify and restore, naming the backup and the pack", "[backup]") {
  Fixture f;
  make_db(f.db, 3000, "wal");
  auto repo = f.repo();
  TargetOutcome out = f.backup(repo.get());
  REQUIRE(out.status.ok());
  const std::string pack_hex = to_hex(out.manifest.packs[0].id);

  auto bad_disk = f.repo(0, ENOSPC, "packs/");
  auto check = verify_backup(*bad_disk, out.manifest, f.dir.path(), VerifyMode::kIntegrity);
  REQUIRE_FALSE(check.ok());
  CHECK(check.status().code() == ErrorCode::kIOError);
  CHECK(check.status().message().find(out.manifest.id) != std::string::npos);
  CHECK(check.status().message().find(pack_hex) != std::string::npos);
  Status st = restore_backup(*bad_disk, out.manifest, f.dir / "restored.db", false);
  CHECK(st.code() == ErrorCode::kIOError);
  CHECK(st.message().find(pack_hex) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(f.dir / "restored.db"));
  for (const auto& e : std::filesystem::directory_iterator(f.dir.path()))
    CHECK(e.path().filename().string().find("sqlbak-restore") == std::string::npos);

  // The objects themselves are fine: through a healthy disk both succeed.
  auto again = verify_backup(*repo, out.manifest, f.dir.path(), VerifyMode::kIntegrity);
  REQUIRE(again.ok());
  CHECK(*again == "ok");
  CHECK(restore_backup(*repo, out.manifest, f.dir / "restored.db", false).ok());
}

TEST_CASE("an I/O error reading the target's indexes fails the backup before anything is written", "[backup]") {
  Fixture f;
  make_db(f.db, 3000, "wal");
  auto repo = f.repo();
  REQUIRE(f.backup(repo.get()).status.ok());
  sql(f.db, "INSERT INTO t(v) VALUES ('second')");
  auto bad_disk = f.repo(0, ENOSPC, "index/");
  TargetOutcome failed = f.backup(bad_disk.get());
  REQUIRE_FALSE(failed.status.ok());
  CHECK(failed.status.code() == ErrorCode::kIOError);
  CHECK(failed.status.message().find("index/") != std::string::npos);
  auto listed = repo->list_manifests("app");
  REQUIRE(listed.ok());
  CHECK(listed->size() == 1);
  CHECK(f.backup(repo.get()).status.ok());
}

TEST_CASE("a database with a damaged page is not published", "[backup]") {
  for (const char* mode : {"delete", "wal"}) {
    Fixture f;
    make_db(f.db, 5000, mode);
    sql(f.db, "PRAGMA wal_checkpoint(TRUNCATE)");
    // Scribble over the middle of a b-tree page (not the header, not page 1).
    std::string bytes = read_file(f.db);
    for (size_t i = 4096 * 5 + 200; i < 4096 * 5 + 1200; ++i) bytes[i] = static_cast<char>(i * 7);
    write_file(f.db, bytes);
    auto repo = f.repo();
    TargetOutcome out = f.backup(repo.get());
    INFO(mode);
    REQUIRE_FALSE(out.status.ok());
    CHECK(out.status.message().find("not published") != std::string::npos);
    CHECK(out.status.message().find("'app'") != std::string::npos);
    CHECK(repo->list_manifests("app")->empty());
  }
}

TEST_CASE("a second writer of one database is refused; a cancelled backup leaves nothing", "[backup]") {
  Fixture f;
  make_db(f.db, 5000, "wal");
  auto repo = f.repo();
  auto job = BackupJob::start(f.request(repo.get()));
  REQUIRE(job.ok());
  auto other = BackupJob::start(f.request(repo.get()));
  REQUIRE_FALSE(other.ok());
  CHECK(other.status().code() == ErrorCode::kLocked);
  REQUIRE((*job)->step().ok());
  (*job)->cancel();
  CHECK((*job)->step().status().code() == ErrorCode::kCancelled);
  job = Status::Cancelled("dropped");
  CHECK(repo->list_manifests("app")->empty());
  CHECK(f.backup(repo.get()).status.ok());
}

TEST_CASE("a damaged object fails verify and restore, naming it", "[backup]") {
  Fixture f;
  make_db(f.db, 3000, "wal");
  auto repo = f.repo();
  TargetOutcome out = f.backup(repo.get());
  REQUIRE(out.status.ok());
  const std::string pack = f.repo_dir + "/" + Repository::pack_key(out.manifest.packs[0].id);
  std::string bytes = read_file(pack);
  bytes[bytes.size() / 2] ^= 1;
  write_file(pack, bytes);
  auto check = verify_backup(*repo, out.manifest, f.dir.path(), VerifyMode::kIntegrity);
  REQUIRE_FALSE(check.ok());
  CHECK(check.status().message().find(to_hex(out.manifest.packs[0].id)) != std::string::npos);
  CHECK(check.status().message().find(out.manifest.id) != std::string::npos);
  Status st = restore_backup(*repo, out.manifest, f.dir / "restored.db", false);
  CHECK(st.code() == ErrorCode::kCorruption);
  CHECK_FALSE(std::filesystem::exists(f.dir / "restored.db"));
  for (const auto& e : std::filesystem::directory_iterator(f.dir.path()))
    CHECK(e.path().filename().string().find("sqlbak-restore") == std::string::npos);
}

// A pack whose bytes match its name but whose index gives page ENTRY a wrong
// hash: what a backup that stored a page other than the one it hashed would
// leave. Stored beside the real pack; returns M pointing at it instead.
Manifest with_wrong_page_hash(const Repository& repo, Manifest m, size_t entry) {
  std::string pack;
  REQUIRE(repo.store().get(Repository::pack_key(m.packs[0].id), &pack).ok());
  auto entries = read_pack_index(pack);
  REQUIRE(entries.ok());
  REQUIRE(entry < entries->size());
  (*entries)[entry].hash[0] ^= 0x5a;
  PackBuilder builder;
  for (size_t i = 0; i < entries->size();) {
    const uint64_t block = (*entries)[i].block_offset;
    std::string_view stored;
    auto header = read_block(pack, block, &stored);
    REQUIRE(header.ok());
    std::vector<Digest> hashes;
    std::vector<uint32_t> lengths;
    for (; i < entries->size() && (*entries)[i].block_offset == block; ++i) {
      hashes.push_back((*entries)[i].hash);
      lengths.push_back((*entries)[i].length);
    }
    builder.add_block(header->codec, header->raw_size, stored, hashes, lengths);
  }
  std::string index;
  const std::string rebuilt = builder.finish(&index);
  ManifestPack& p = m.packs[0];
  p.id = sha256(rebuilt);
  p.size = rebuilt.size();
  p.index_sha256 = sha256(index);
  p.index_size = index.size();
  REQUIRE(repo.store().put(Repository::pack_key(p.id), rebuilt).ok());
  REQUIRE(repo.store().put(Repository::index_key(p.id), index).ok());
  return m;
}

TEST_CASE("a page that does not match its hash fails verify and restore, whichever way pages are checked",
          "[backup]") {
  Fixture f;
  make_db(f.db, 3000, "wal");
  auto repo = f.repo();
  TargetOutcome out = f.backup(repo.get());
  REQUIRE(out.status.ok());
  const Manifest bad = with_wrong_page_hash(*repo, out.manifest, 7);
  const std::string bad_pack = to_hex(bad.packs[0].id);
  // Checked on the written image while SQLite checks it, or page by page as written.
  for (uint64_t pending_page_limit : {kPendingPageLimit, uint64_t{0}}) {
    INFO("pending_page_limit " << pending_page_limit);
    auto check = verify_backup(*repo, bad, f.dir.path(), VerifyMode::kIntegrity, pending_page_limit);
    REQUIRE_FALSE(check.ok());
    CHECK(check.status().code() == ErrorCode::kCorruption);
    CHECK(check.status().message().find("does not match its SHA-256") != std::string::npos);
    CHECK(check.status().message().find(bad_pack) != std::string::npos);
    CHECK(check.status().message().find(out.manifest.id) != std::string::npos);
    Status st = restore_backup(*repo, bad, f.dir / "restored.db", false, pending_page_limit);
    CHECK(st.code() == ErrorCode::kCorruption);
    CHECK(st.message().find("does not match its SHA-256") != std::string::npos);
    CHECK(st.message().find(bad_pack) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(f.dir / "restored.db"));
    for (const auto& e : std::filesystem::directory_iterator(f.dir.path()))
      CHECK(e.path().filename().string().find("sqlbak-restore") == std::string::npos);

    // The backup as it was stored passes both ways, to the same bytes.
    auto good = verify_backup(*repo, out.manifest, f.dir.path(), VerifyMode::kIntegrity, pending_page_limit);
    REQUIRE(good.ok());
    CHECK(*good == "ok");
    REQUIRE(restore_backup(*repo, out.manifest, f.dir / "restored.db", false, pending_page_limit).ok());
    const std::string content = "SELECT group_concat(id || v || hex(b), ',') FROM t";
    CHECK(query(f.dir / "restored.db", content) == query(f.db, content));
    std::filesystem::remove(f.dir / "restored.db");
  }
}

TEST_CASE("identical pages are stored once, and block order survives parallel compression", "[backup]") {
  Fixture f;
  // secure_delete (Debian's default) zeroes freed pages: many identical pages.
  sql(f.db, "PRAGMA secure_delete=ON; PRAGMA journal_mode=wal; CREATE TABLE big(b BLOB);"
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<3000)"
            " INSERT INTO big SELECT randomblob(3000) FROM c; DELETE FROM big WHERE rowid % 2 = 0;"
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<40000)"
            " INSERT INTO t(v) SELECT hex(randomblob(30)) FROM c;");
  auto repo = f.repo();
  auto req = f.request(repo.get());
  req.compress_threads = 4;
  Status st;
  auto outcomes = run_backup(std::move(req), nullptr, &st);
  REQUIRE(st.ok());
  REQUIRE(outcomes.size() == 1);
  REQUIRE(outcomes[0].status.ok());
  const Manifest& m = outcomes[0].manifest;
  CHECK(m.new_pages < m.page_count);  // the zeroed free pages share one stored page
  REQUIRE(restore_backup(*repo, m, f.dir / "copy.db", false).ok());
  CHECK(query(f.dir / "copy.db", "SELECT count(*) FROM big") == "1500");
  CHECK(query(f.dir / "copy.db", "SELECT sum(length(v)) FROM t") == query(f.db, "SELECT sum(length(v)) FROM t"));
  CHECK(query(f.dir / "copy.db", "PRAGMA integrity_check") == "ok");
}

TEST_CASE("a pack whose last block is exactly full is closed and stored", "[backup]") {
  Fixture f;
  // 32 pages of 64 KiB: two full 1 MiB blocks and nothing after them.
  sql(f.db, "PRAGMA page_size=65536; CREATE TABLE t(x);"
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<30)"
            " INSERT INTO t SELECT randomblob(60000) FROM c;");
  REQUIRE(query(f.dir / "app.db", "PRAGMA page_count") == "32");
  auto repo = f.repo();
  // Twice: the second backup's new pack is not the target's first pack, so a
  // closing block that named the wrong pack would be caught.
  for (int round = 0; round < 2; ++round) {
    if (round == 1) sql(f.db, "UPDATE t SET x = randomblob(60000)");
    TargetOutcome out = f.backup(repo.get());
    REQUIRE(out.status.ok());
    REQUIRE(restore_backup(*repo, out.manifest, f.dir / "copy.db", true).ok());
    CHECK(query(f.dir / "copy.db", "SELECT sum(length(x)) FROM t") == "1800000");
    const std::string sample = "SELECT group_concat(hex(substr(x, 1000, 8)) || hex(substr(x, -8))) FROM t";
    CHECK(query(f.dir / "copy.db", sample) == query(f.db, sample));
  }
}

TEST_CASE("one backup is written to each target of the database", "[backup]") {
  Fixture f;
  make_db(f.db, 8000, "wal");
  auto first = f.repo();
  const std::string second_dir = f.dir / "offsite";
  std::filesystem::create_directory(second_dir);
  auto store = LocalObjectStore::open("offsite", second_dir, true);
  REQUIRE(store.ok());
  auto second = Repository::open(std::move(store).value(), "offsite", true);
  REQUIRE(second.ok());
  // The second target already holds an older backup: it deduplicates on its own.
  REQUIRE(f.backup(second->get()).status.ok());
  sql(f.db, "INSERT INTO t(v) VALUES ('both')");

  auto req = f.request(first.get());
  req.targets.push_back(second->get());
  Status st;
  auto outcomes = run_backup(std::move(req), nullptr, &st);
  REQUIRE(st.ok());
  REQUIRE(outcomes.size() == 2);
  REQUIRE(outcomes[0].status.ok());
  REQUIRE(outcomes[1].status.ok());
  CHECK(outcomes[0].target == "local");
  CHECK(outcomes[1].target == "offsite");
  CHECK(outcomes[0].manifest.id == outcomes[1].manifest.id);
  CHECK(outcomes[0].manifest.kind == "full");
  CHECK(outcomes[1].manifest.kind == "incremental");
  CHECK(outcomes[1].manifest.stored_bytes < outcomes[0].manifest.stored_bytes);
  for (auto [repo, out] : {std::pair{first.get(), &outcomes[0]}, std::pair{second->get(), &outcomes[1]}}) {
    REQUIRE(restore_backup(*repo, out->manifest, f.dir / ("copy-" + out->target + ".db"), false).ok());
    CHECK(query(f.dir / ("copy-" + out->target + ".db"), "SELECT count(*) FROM t WHERE v = 'both'") == "1");
  }
}

TEST_CASE("in WAL mode the threads that compress and store run below the application; "
          "in rollback-journal mode they do not", "[backup]") {
  errno = 0;
  const int base = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  REQUIRE(errno == 0);
  if (base >= 19) {
    WARN("the tests already run at niceness 19: nothing to lower");
    return;
  }
  for (const char* mode : {"wal", "delete"}) {
    Fixture f;
    make_db(f.db, 20000, mode);  // several packs
    auto store = LocalObjectStore::open("local", f.repo_dir, true);
    REQUIRE(store.ok());
    auto probe = std::make_unique<PriorityProbeStore>(std::move(store).value());
    PriorityProbeStore* seen = probe.get();
    auto repo = Repository::open(std::move(probe), "local", true);
    REQUIRE(repo.ok());
    TargetOutcome out = f.backup(repo->get(), VerifyMode::kQuick);
    REQUIRE(out.status.ok());
    const std::vector<int> nice = seen->pack_nice();
    REQUIRE(!nice.empty());
    const int expected = std::string(mode) == "wal" ? std::min(19, base + 10) : base;
    INFO("journal mode " << mode << ", test thread at " << base);
    for (int n : nice) CHECK(n == expected);
    // The test's own thread is left as it was.
    CHECK(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())) == base);
  }
}
