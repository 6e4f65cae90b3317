#include "lib/prune.h"

#include <map>
#include <set>
#include <vector>

namespace sqlbak {

namespace {

// "packs/ab/abcd..." or "index/ab/abcd..." -> "abcd..."; empty when KEY is
// not a well-formed object name of that kind (never deleted then).
std::string object_name(const std::string& key, const std::string& prefix) {
  if (key.size() != prefix.size() + 3 + 64 || key.compare(0, prefix.size(), prefix) != 0) return {};
  std::string name = key.substr(prefix.size() + 3);
  Digest d;
  if (!from_hex(name, &d) || key.compare(prefix.size(), 2, name, 0, 2) != 0) return {};
  return name;
}

}  // namespace

Result<PruneResult> prune_repository(Repository& repo, const PruneOptions& options) {
  auto lock = repo.lock_for_prune(options.lock_patience);
  if (!lock.ok()) return lock.status();

  // What every remaining backup needs. Read under the lock, so no backup can
  // commit a manifest that this list misses.
  auto read_manifests = [&](std::vector<Manifest>* out) -> Status {
    auto refs = repo.list_manifest_refs("");
    if (!refs.ok()) return refs.status();
    out->clear();
    for (const ManifestRef& ref : *refs) {
      if (options.dry_run && options.dry_run_removed.count(ref.key)) continue;
      auto m = repo.read_manifest(ref);
      if (!m.ok())
        return Status(m.status().code(),
                      "prune of " + repo.describe() + " stopped before deleting anything: backup " +
                          ref.id + " of '" + ref.database + "' cannot be read (" +
                          m.status().message() + "); check it with `sqlbakctl verify " + ref.id +
                          "`");
      out->push_back(std::move(m).value());
    }
    return Status::Ok();
  };
  std::vector<Manifest> manifests;
  SQLBAK_RETURN_IF_ERROR(read_manifests(&manifests));

  PruneResult result;
  auto list_objects = [&](std::map<std::string, ObjectInfo>* pack_by_name,
                          std::map<std::string, ObjectInfo>* index_by_name, uint64_t* bytes) -> Status {
    auto packs = repo.store().list("packs/");
    if (!packs.ok()) return packs.status();
    auto indexes = repo.store().list("index/");
    if (!indexes.ok()) return indexes.status();
    pack_by_name->clear();
    index_by_name->clear();
    *bytes = 0;
    for (const ObjectInfo& o : *packs) {
      *bytes += o.size;
      std::string name = object_name(o.key, "packs/");
      if (!name.empty()) (*pack_by_name)[name] = o;
    }
    for (const ObjectInfo& o : *indexes) {
      *bytes += o.size;
      std::string name = object_name(o.key, "index/");
      if (!name.empty()) (*index_by_name)[name] = o;
    }
    return Status::Ok();
  };
  std::map<std::string, ObjectInfo> pack_by_name, index_by_name;
  SQLBAK_RETURN_IF_ERROR(list_objects(&pack_by_name, &index_by_name, &result.bytes_before));
  result.packs_total = pack_by_name.size();

  if (options.repack) {
    RepackOptions repack_options = options.repack_options;
    repack_options.dry_run = options.dry_run;
    auto repacked = repack_packs(repo, manifests, repack_options);
    if (repacked.ok())
      result.repack = *repacked;
    else
      result.repack_status = repacked.status().WithContext("repack stopped");
    if (!options.dry_run && (!repacked.ok() || repacked->packs_written > 0 ||
                              repacked->manifests_rewritten > 0)) {
      // Delete by what is stored now: a put that reported an error may still
      // have replaced a manifest. New packs left unused are garbage now.
      SQLBAK_RETURN_IF_ERROR(read_manifests(&manifests));
      uint64_t ignored = 0;
      SQLBAK_RETURN_IF_ERROR(list_objects(&pack_by_name, &index_by_name, &ignored));
    }
  }

  std::set<std::string> needed;
  for (const Manifest& m : manifests)
    for (const ManifestPack& p : m.packs) needed.insert(to_hex(p.id));
  result.manifests = manifests.size();

  // Garbage: packs no manifest needs, and indexes of packs that are garbage or
  // missing. Indexes go first (see prune.h).
  std::vector<ObjectInfo> doomed_indexes, doomed_packs;
  for (const auto& [name, info] : index_by_name)
    if (!needed.count(name)) doomed_indexes.push_back(info);
  for (const auto& [name, info] : pack_by_name)
    if (!needed.count(name)) doomed_packs.push_back(info);

  auto remove_all = [&](const std::vector<ObjectInfo>& objects, size_t* counter) -> Status {
    std::vector<std::string> keys;
    for (const ObjectInfo& o : objects) {
      if (options.before_delete) options.before_delete(o.key);
      keys.push_back(o.key);
    }
    if (!options.dry_run && !keys.empty()) {
      Status s = repo.store().remove_many(keys);
      if (!s.ok()) return s.WithContext("prune of " + repo.describe());
    }
    for (const ObjectInfo& o : objects) result.bytes_removed += o.size;
    *counter += objects.size();
    return Status::Ok();
  };
  SQLBAK_RETURN_IF_ERROR(remove_all(doomed_indexes, &result.indexes_removed));
  SQLBAK_RETURN_IF_ERROR(remove_all(doomed_packs, &result.packs_removed));
  return result;
}

}  // namespace sqlbak
