#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <set>

#include "lib/backup.h"
#include "lib/local_store.h"
#include "lib/prune.h"
#include "lib/repack.h"
#include "lib/restore.h"
#include "testutil.h"

using namespace sqlbak;
using namespace sqlbak::test;

namespace {

// Delegates to a real store until the Nth change (put or remove); that change
// and every later one fail without touching the store, as if the process had
// been killed with SIGKILL just before it. 0: never.
class DyingStore : public ForwardingStore {
 public:
  DyingStore(std::unique_ptr<ObjectStore> inner, int die_at) : ForwardingStore(std::move(inner)), die_at_(die_at) {}
  Status put(const std::string& key, std::string_view data) override {
    if (dead()) return Status::IOError("killed before putting " + key);
    return inner_->put(key, data);
  }
  Status remove(const std::string& k) override {
    if (dead()) return Status::IOError("killed before removing " + k);
    return inner_->remove(k);
  }
  int changes() const { return changes_.load(); }

 private:
  bool dead() { return ++changes_ >= die_at_ && die_at_ > 0; }
  int die_at_;
  std::atomic<int> changes_{0};
};

constexpr int kRows = 1200;  // one row of 3000 random bytes per 4 KiB page: ~4.8 MiB

struct History {
  TempDir dir;
  std::string db = dir / "app.db";
  std::string repo_dir = dir / "repo";
  int64_t clock_ms = 1764000000000;

  History() {
    std::filesystem::create_directory(repo_dir);
    sql(db, "PRAGMA page_size=4096; PRAGMA journal_mode=delete;"
            "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);"
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<" +
                std::to_string(kRows) + ") INSERT INTO t(b) SELECT randomblob(3000) FROM c;");
  }

  std::unique_ptr<Repository> repo(const std::string& path, int die_at = 0, DyingStore** dying = nullptr) {
    auto store = LocalObjectStore::open("local", path, true);
    REQUIRE(store.ok());
    std::unique_ptr<ObjectStore> s = std::move(store).value();
    if (die_at >= 0) {
      auto d = std::make_unique<DyingStore>(std::move(s), die_at);
      if (dying != nullptr) *dying = d.get();
      s = std::move(d);
    }
    auto r = Repository::open(std::move(s), "local", true);
    REQUIRE(r.ok());
    return std::move(r).value();
  }
  std::unique_ptr<Repository> repo() { return repo(repo_dir); }

  // Rewrites the rows whose id % 10 is below TENTHS (new random bytes).
  void churn(int tenths) {
    sql(db, "UPDATE t SET b = randomblob(3000) WHERE id % 10 < " + std::to_string(tenths) + ";");
  }

  Manifest backup() {
    auto r = repo();
    BackupRequest req;
    req.database.name = "app";
    req.database.path = db;
    req.database.settings.step_pages = 256;
    req.database.settings.verify = VerifyMode::kQuick;
    req.targets = {r.get()};
    req.scratch_dir = dir.path();
    req.now_ms = [this] { return clock_ms += 1000; };
    Status st;
    auto outcomes = run_backup(req, nullptr, &st);
    REQUIRE(st.ok());
    REQUIRE(outcomes.size() == 1);
    REQUIRE(outcomes[0].status.ok());
    return outcomes[0].manifest;
  }

  void forget(const Manifest& m) { REQUIRE(repo()->store().remove(manifest_key(m.database, m.id)).ok()); }
};

// Every object under packs/, index/ and manifests/ with its bytes.
std::map<std::string, std::string> objects_of(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const char* prefix : {"packs", "index", "manifests"}) {
    if (!std::filesystem::exists(root + "/" + prefix)) continue;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root + "/" + prefix))
      if (e.is_regular_file())
        out[std::filesystem::relative(e.path(), root).string()] = read_file(e.path().string());
  }
  return out;
}

uint64_t pack_bytes(const std::string& root) {
  uint64_t n = 0;
  for (const auto& [key, bytes] : objects_of(root))
    if (key.rfind("manifests/", 0) != 0) n += bytes.size();
  return n;
}

std::string image_of(Repository& repo, const Manifest& m, const std::string& path) {
  std::filesystem::remove(path);
  Status st = restore_backup(repo, m, path, true);
  INFO(st.message());
  REQUIRE(st.ok());
  return read_file(path);
}

// Every manifest reads, every pack it names is there with its index, and no
// pack or index is there that no manifest names.
void require_consistent(Repository& repo, bool allow_garbage) {
  auto manifests = repo.list_manifests("");
  REQUIRE(manifests.ok());
  auto refs = repo.list_manifest_refs("");
  REQUIRE(refs.ok());
  REQUIRE(manifests->size() == refs->size());
  std::set<std::string> needed, packs, indexes;
  for (const Manifest& m : *manifests)
    for (const ManifestPack& p : m.packs) needed.insert(to_hex(p.id));
  auto pack_objects = repo.store().list("packs/");
  auto index_objects = repo.store().list("index/");
  REQUIRE(pack_objects.ok());
  REQUIRE(index_objects.ok());
  for (const ObjectInfo& o : *pack_objects) packs.insert(o.key.substr(9));
  for (const ObjectInfo& o : *index_objects) indexes.insert(o.key.substr(9));
  for (const std::string& n : needed) {
    CHECK(packs.count(n) == 1);
    CHECK(indexes.count(n) == 1);
  }
  if (!allow_garbage) {
    CHECK(packs == needed);
    CHECK(indexes == needed);
  }
}

PruneOptions quiet_prune() {
  PruneOptions o;
  o.lock_patience = std::chrono::milliseconds(0);
  return o;
}

}  // namespace

TEST_CASE("repack: a rotation that leaves packs mostly garbage repacks them, and every backup restores the same",
          "[repack]") {
  History h;
  const Manifest a = h.backup();   // the full backup: one pack of ~1200 pages
  h.churn(7);                      // 70 % of the rows change
  const Manifest b = h.backup();
  h.churn(2);
  const Manifest c = h.backup();
  auto repo = h.repo();
  const std::string image_b = image_of(*repo, b, h.dir / "b.db");
  const std::string image_c = image_of(*repo, c, h.dir / "c.db");
  h.forget(a);  // a's pack is now ~30 % live, needed by b and c

  const uint64_t before = pack_bytes(h.repo_dir);
  auto dry = [&] {
    PruneOptions o = quiet_prune();
    o.dry_run = true;
    return prune_repository(*repo, o);
  }();
  REQUIRE(dry.ok());
  CHECK(dry->repack.packs_repacked == 1);
  CHECK(dry->repack.manifests_rewritten == 2);
  CHECK(dry->repack.bytes_reclaimed() > 1024 * 1024);
  CHECK(dry->packs_removed == 0);
  CHECK(pack_bytes(h.repo_dir) == before);

  auto done = prune_repository(*repo, quiet_prune());
  REQUIRE(done.ok());
  INFO("before " << before << " after " << pack_bytes(h.repo_dir));
  CHECK(done->repack.packs_repacked == 1);
  CHECK(done->repack.packs_written == 1);
  CHECK(done->repack.manifests_rewritten == 2);
  CHECK(done->repack.problems.empty());
  CHECK(done->repack_status.ok());
  CHECK(done->packs_removed == 1);
  const uint64_t after = pack_bytes(h.repo_dir);
  CHECK(after < before * 3 / 4);
  CHECK(before - after == done->bytes_removed - done->repack.bytes_written);
  // The dry run's estimate is close to what happened.
  CHECK(dry->repack.bytes_reclaimed() > done->repack.bytes_reclaimed() * 85 / 100);
  CHECK(dry->repack.bytes_reclaimed() < done->repack.bytes_reclaimed() * 115 / 100);

  require_consistent(*repo, false);
  // A restore or verify that read its manifest before the repack (b and c as
  // they were) still succeeds: a missing pack makes it re-read the manifest.
  CHECK(image_of(*repo, b, h.dir / "b-read-before.db") == image_b);
  auto checked = verify_backup(*repo, c, h.dir.path(), VerifyMode::kIntegrity);
  INFO((checked.ok() ? std::string() : checked.status().message()));
  REQUIRE(checked.ok());
  CHECK(*checked == "ok");
  // Same backups, same ids, same record of how they were taken; pages elsewhere.
  auto kept = repo->list_manifests("app");
  REQUIRE(kept.ok());
  REQUIRE(kept->size() == 2);
  CHECK((*kept)[0].id == c.id);
  CHECK((*kept)[1].id == b.id);
  CHECK((*kept)[1].stored_bytes == b.stored_bytes);
  CHECK((*kept)[1].created == b.created);
  CHECK((*kept)[1].packs.size() == b.packs.size());
  CHECK(image_of(*repo, (*kept)[1], h.dir / "b2.db") == image_b);
  CHECK(image_of(*repo, (*kept)[0], h.dir / "c2.db") == image_c);
  CHECK(query(h.dir / "b2.db", "PRAGMA integrity_check") == "ok");

  // Idempotent: nothing left to do.
  const auto objects = objects_of(h.repo_dir);
  auto again = prune_repository(*repo, quiet_prune());
  REQUIRE(again.ok());
  CHECK(again->repack.packs_repacked == 0);
  CHECK(again->packs_removed == 0);
  CHECK(objects_of(h.repo_dir) == objects);

  // A new backup after the repack deduplicates against the new pack and restores.
  const Manifest d = h.backup();
  CHECK(d.kind == "incremental");
  CHECK(d.new_pages <= 1);
  CHECK(image_of(*h.repo(), d, h.dir / "d.db") == image_c);
}

TEST_CASE("repack: a pack whose pages are mostly live, or too little garbage, is left alone", "[repack]") {
  History h;
  const Manifest a = h.backup();
  h.churn(3);  // 30 % change: a's pack stays 70 % live
  const Manifest b = h.backup();
  h.forget(a);
  auto repo = h.repo();
  const std::string image_b = image_of(*repo, b, h.dir / "b.db");
  const auto objects = objects_of(h.repo_dir);

  auto r = prune_repository(*repo, quiet_prune());
  REQUIRE(r.ok());
  CHECK(r->repack.packs_repacked == 0);
  CHECK(r->packs_removed == 0);
  CHECK(objects_of(h.repo_dir) == objects);

  // Now most of it dies, but repacking would not free min_reclaim_bytes.
  h.churn(9);
  const Manifest c = h.backup();
  h.forget(b);
  const std::string image_c = image_of(*repo, c, h.dir / "c.db");
  PruneOptions o = quiet_prune();
  o.repack_options.min_reclaim_bytes = 64 * 1024 * 1024;
  r = prune_repository(*repo, o);
  REQUIRE(r.ok());
  CHECK(r->repack.packs_repacked == 0);
  require_consistent(*repo, false);
  // With the built-in minimum it is worth it.
  r = prune_repository(*repo, quiet_prune());
  REQUIRE(r.ok());
  CHECK(r->repack.packs_repacked >= 1);
  require_consistent(*repo, false);
  auto c_ref = repo->find_backup(c.id);
  REQUIRE(c_ref.ok());
  auto c_now = repo->read_manifest(*c_ref);
  REQUIRE(c_now.ok());
  CHECK(image_of(*repo, *c_now, h.dir / "c2.db") == image_c);
}

TEST_CASE("repack: a damaged manifest stops the prune before anything is written or deleted", "[repack]") {
  History h;
  const Manifest a = h.backup();
  h.churn(8);
  const Manifest b = h.backup();
  h.churn(8);
  const Manifest c = h.backup();
  h.forget(a);
  // b's manifest loses a byte of its page map.
  const std::string key = h.repo_dir + "/" + manifest_key(b.database, b.id);
  std::string text = read_file(key);
  text[text.find("\"pages\"") + 12] ^= 1;
  write_file(key, text);
  const auto objects = objects_of(h.repo_dir);

  auto repo = h.repo();
  auto r = prune_repository(*repo, quiet_prune());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find(b.id) != std::string::npos);
  CHECK(objects_of(h.repo_dir) == objects);
  (void)c;
}

TEST_CASE("repack: a damaged candidate pack is left alone and named; the rest is still consistent", "[repack]") {
  History h;
  const Manifest a = h.backup();
  h.churn(8);
  const Manifest b = h.backup();
  h.forget(a);
  // Damage a's pack (b still needs 20 % of it).
  const std::string pack_path = h.repo_dir + "/" + Repository::pack_key(a.packs[0].id);
  std::string bytes = read_file(pack_path);
  bytes[bytes.size() / 2] ^= 0x40;
  write_file(pack_path, bytes);

  auto repo = h.repo();
  auto r = prune_repository(*repo, quiet_prune());
  REQUIRE(r.ok());
  CHECK(r->repack.packs_repacked == 0);
  REQUIRE(r->repack.problems.size() == 1);
  CHECK(r->repack.problems[0].find(to_hex(a.packs[0].id)) != std::string::npos);
  // Nothing b needs was deleted: the damaged pack is still there for a repair.
  CHECK(std::filesystem::exists(pack_path));
  require_consistent(*repo, false);
  (void)b;
}

TEST_CASE("repack: killed before any one of its writes or deletions, the next prune finishes the same job",
          "[repack]") {
  History h;
  const Manifest a = h.backup();
  h.churn(7);
  const Manifest b = h.backup();
  h.churn(6);
  const Manifest c = h.backup();
  h.churn(5);
  const Manifest d = h.backup();
  std::map<std::string, std::string> images;
  for (const Manifest* m : {&b, &c, &d})
    images[m->id] = image_of(*h.repo(), *m, h.dir / (m->id + ".db"));
  h.forget(a);
  h.forget(b);  // c and d stay; a's and b's packs become mostly garbage

  // The uninterrupted prune, on a copy: the reference.
  const std::string pristine = h.dir / "pristine";
  std::filesystem::copy(h.repo_dir, pristine, std::filesystem::copy_options::recursive);
  DyingStore* counter = nullptr;
  auto full = h.repo(h.repo_dir, 0, &counter);
  auto done = prune_repository(*full, quiet_prune());
  REQUIRE(done.ok());
  REQUIRE(done->repack.packs_repacked >= 1);
  const int changes = counter->changes();
  const auto reference = objects_of(h.repo_dir);
  INFO("changes in an uninterrupted prune: " << changes);
  REQUIRE(changes > 4);

  for (int kill_at = 1; kill_at <= changes; ++kill_at) {
    INFO("killed before change " << kill_at);
    const std::string root = h.dir / ("kill-" + std::to_string(kill_at));
    std::filesystem::copy(pristine, root, std::filesystem::copy_options::recursive);
    {
      auto dying = h.repo(root, kill_at);
      (void)prune_repository(*dying, quiet_prune());
    }
    auto repo = h.repo(root, -1);
    require_consistent(*repo, true);
    auto manifests = repo->list_manifests("");
    REQUIRE(manifests.ok());
    REQUIRE(manifests->size() == 2);
    for (const Manifest& m : *manifests)
      CHECK(image_of(*repo, m, root + "-" + m.id + ".db") == images.at(m.id));
    // The next prune finishes the job, with the same objects as the uninterrupted one.
    auto next = prune_repository(*repo, quiet_prune());
    REQUIRE(next.ok());
    require_consistent(*repo, false);
    CHECK(objects_of(root) == reference);
    std::filesystem::remove_all(root);
  }
}
