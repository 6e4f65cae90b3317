// Repository: the sqlbak format (docs/FORMAT.md) on top of an ObjectStore.
//
//   config                          repository id and format version
//   packs/<hh>/<sha256>             pack objects (pages, compressed)
//   index/<hh>/<sha256>             index of the pack of the same name
//   manifests/<database>/<id>.json  one per backup: the commit point
//   locks/, tmp/                    local bookkeeping, not objects
//
// Thread-safety: const methods may be called from several threads; the
// ObjectStore implementations are thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "lib/manifest.h"
#include "lib/object_store.h"
#include "lib/pack.h"
#include "lib/status.h"

namespace sqlbak {

inline constexpr int kRepositoryFormatVersion = 1;

// A page the target already holds.
struct KnownPage {
  Digest hash{};
  uint32_t pack = 0;  // index into KnownPages::packs
  uint32_t entry = 0;
};

// What a target holds, as read from its index objects.
struct KnownPages {
  std::vector<ManifestPack> packs;
  std::vector<KnownPage> pages;  // sorted by hash (index_pages())
  // Sorts PAGES and indexes them by the first 16 bits of their hash: a lookup
  // then searches a handful of entries instead of the whole sorted list, whose
  // first dozen probes would each miss the CPU cache on a large repository.
  void index_pages();
  const KnownPage* find(const Digest& hash) const;

 private:
  static size_t bucket_of(const Digest& h) { return (size_t{h[0]} << 8) | h[1]; }
  std::vector<uint32_t> bucket_start_;  // 65537 entries once indexed
};

// Where a manifest lives, known from its key alone (so a damaged manifest can
// still be named).
struct ManifestRef {
  std::string database;
  std::string id;
  std::string key;
};

class Repository {
 public:
  // Opens the repository in STORE. With CREATE, writes the config object when
  // the store is empty; otherwise a store without one is kNotFound.
  static Result<std::unique_ptr<Repository>> open(std::unique_ptr<ObjectStore> store,
                                                  std::string target_name, bool create);

  const std::string& target_name() const { return target_name_; }
  ObjectStore& store() const { return *store_; }
  std::string describe() const { return store_->describe(); }

  static std::string pack_key(const Digest& id);
  static std::string index_key(const Digest& id);

  // Manifests of DATABASE (all databases when empty), by key.
  Result<std::vector<ManifestRef>> list_manifest_refs(const std::string& database) const;
  // Reads and checks one manifest.
  Result<Manifest> read_manifest(const ManifestRef& ref) const;
  // Every readable manifest of DATABASE (all when empty), newest first. Damaged
  // manifests are left out; `verify` reports them.
  Result<std::vector<Manifest>> list_manifests(const std::string& database) const;
  // Finds the backup ID in any database. kNotFound naming the id and target.
  Result<ManifestRef> find_backup(const std::string& id) const;
  // The commit point of a backup.
  Status write_manifest(const Manifest& m) const;

  // Reads every index object.
  Result<KnownPages> load_known_pages() const;

  // Exclusive writer lock of one database on this target.
  Result<std::unique_ptr<StoreLock>> lock_database(const std::string& database) const;

  // The repository lock: backups hold it shared while they may reference
  // packs, prune holds it exclusively while it deletes them. Each waits up to
  // PATIENCE for the other side (prune is short; backups are not), polling.
  Result<std::unique_ptr<StoreLock>> lock_for_backup(std::chrono::milliseconds patience) const;
  Result<std::unique_ptr<StoreLock>> lock_for_prune(std::chrono::milliseconds patience) const;

 private:
  Repository(std::unique_ptr<ObjectStore> store, std::string target_name)
      : store_(std::move(store)), target_name_(std::move(target_name)) {}
  std::unique_ptr<ObjectStore> store_;
  std::string target_name_;
};

}  // namespace sqlbak
