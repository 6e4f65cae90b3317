#include "lib/repository.h"

#include <thread>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>
#include <thread>

namespace sqlbak {

using nlohmann::json;

void KnownPages::index_pages() {
  std::sort(pages.begin(), pages.end(), [](const KnownPage& a, const KnownPage& b) { return a.hash < b.hash; });
  bucket_start_.assign(65536 + 1, 0);
  for (const KnownPage& p : pages) ++bucket_start_[bucket_of(p.hash) + 1];
  for (size_t b = 1; b < bucket_start_.size(); ++b) bucket_start_[b] += bucket_start_[b - 1];
}

const KnownPage* KnownPages::find(const Digest& hash) const {
  auto first = pages.begin(), last = pages.end();
  if (!bucket_start_.empty()) {
    first = pages.begin() + bucket_start_[bucket_of(hash)];
    last = pages.begin() + bucket_start_[bucket_of(hash) + 1];
  }
  auto it = std::lower_bound(first, last, hash, [](const KnownPage& p, const Digest& h) { return p.hash < h; });
  if (it == last || it->hash != hash) return nullptr;
  return &*it;
}

Result<std::unique_ptr<Repository>> Repository::open(std::unique_ptr<ObjectStore> store,
                                                     std::string target_name, bool create) {
  std::string text;
  Status st = store->get("config", &text);
  if (st.code() == ErrorCode::kNotFound) {
    if (!create)
      return Status::NotFound(store->describe() + " holds no sqlbak repository (no config object)");
    std::mt19937_64 rng(std::random_device{}());
    char id[17];
    std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(rng()));
    json config{{"format", "sqlbak-repository"}, {"version", kRepositoryFormatVersion},
                {"id", id}};
    SQLBAK_RETURN_IF_ERROR(store->put("config", config.dump(1) + "\n"));
  } else if (!st.ok()) {
    return st;
  } else {
    json config = json::parse(text, nullptr, false);
    if (config.is_discarded() || !config.is_object() || config.value("format", "") != "sqlbak-repository")
      return Status::Corruption(store->describe() + ": object 'config' is not a sqlbak repository config");
    if (!config.contains("version") || !config["version"].is_number_integer())
      return Status::Corruption(store->describe() + ": object 'config' has no version");
    if (config["version"].get<int>() > kRepositoryFormatVersion)
      return Status::Unsupported(store->describe() + " uses repository format version " +
                                 config["version"].dump() + "; this sqlbak reads up to " +
                                 std::to_string(kRepositoryFormatVersion));
  }
  return std::unique_ptr<Repository>(new Repository(std::move(store), std::move(target_name)));
}

std::string Repository::pack_key(const Digest& id) {
  std::string hex = to_hex(id);
  return "packs/" + hex.substr(0, 2) + "/" + hex;
}

std::string Repository::index_key(const Digest& id) {
  std::string hex = to_hex(id);
  return "index/" + hex.substr(0, 2) + "/" + hex;
}

Result<std::vector<ManifestRef>> Repository::list_manifest_refs(const std::string& database) const {
  // Every caller (socket, HTTP, offline) ends here: a name that would leave
  // manifests/ ("..", "a/b") is refused, not listed.
  if (!database.empty() &&
      (database.find('/') != std::string::npos || !is_valid_object_key("manifests/" + database + "/x.json")))
    return Status::InvalidArgument("invalid database name '" + database + "'");
  auto objects = store_->list(database.empty() ? "manifests/" : "manifests/" + database + "/");
  if (!objects.ok()) return objects.status();
  std::vector<ManifestRef> refs;
  for (const ObjectInfo& o : *objects) {
    // manifests/<db>/<id>.json
    const std::string& k = o.key;
    size_t a = k.find('/'), b = k.rfind('/');
    if (a == b || k.size() < 5 || k.compare(k.size() - 5, 5, ".json") != 0) continue;
    std::string id = k.substr(b + 1, k.size() - 5 - b - 1);
    if (!looks_like_backup_id(id)) continue;
    refs.push_back({k.substr(a + 1, b - a - 1), id, k});
  }
  // Ids begin with the UTC time, so this is creation order.
  std::sort(refs.begin(), refs.end(),
            [](const ManifestRef& x, const ManifestRef& y) { return x.id > y.id; });
  return refs;
}

Result<Manifest> Repository::read_manifest(const ManifestRef& ref) const {
  std::string text;
  Status st = store_->get(ref.key, &text);
  if (!st.ok()) return st;
  Result<Manifest> m = decode_manifest(text);
  if (!m.ok()) return m.status().WithContext("object " + ref.key);
  if (m->id != ref.id || m->database != ref.database)
    return Status::Corruption("object " + ref.key + " holds backup " + m->id + " of " +
                              m->database + ", not what its name says");
  return m;
}

Result<std::vector<Manifest>> Repository::list_manifests(const std::string& database) const {
  auto refs = list_manifest_refs(database);
  if (!refs.ok()) return refs.status();
  std::vector<Manifest> out;
  for (const ManifestRef& ref : *refs) {
    auto m = read_manifest(ref);
    if (m.ok()) out.push_back(std::move(m).value());
  }
  return out;
}

Result<ManifestRef> Repository::find_backup(const std::string& id) const {
  if (!looks_like_backup_id(id))
    return Status::InvalidArgument("'" + id + "' is not a backup id (expected YYYYMMDDTHHMMSSZ-xxxxxx)");
  auto refs = list_manifest_refs("");
  if (!refs.ok()) return refs.status();
  for (const ManifestRef& ref : *refs)
    if (ref.id == id) return ref;
  return Status::NotFound("backup " + id + " does not exist on " + describe());
}

Status Repository::write_manifest(const Manifest& m) const {
  return store_->put(manifest_key(m.database, m.id), encode_manifest(m));
}

Result<KnownPages> Repository::load_known_pages() const {
  auto objects = store_->list("index/");
  if (!objects.ok()) return objects.status();
  KnownPages known;
  std::string bytes;
  for (const ObjectInfo& o : *objects) {
    Digest id{};
    if (!from_hex(o.key.substr(o.key.rfind('/') + 1), &id)) continue;
    SQLBAK_RETURN_IF_ERROR(store_->get(o.key, &bytes));
    auto entries = decode_pack_index(bytes);
    // A damaged index only costs deduplication: its pages are stored again.
    if (!entries.ok()) continue;
    const uint32_t pack_no = static_cast<uint32_t>(known.packs.size());
    known.packs.push_back({id, 0, sha256(bytes), bytes.size()});
    for (uint32_t e = 0; e < entries->size(); ++e)
      known.pages.push_back({(*entries)[e].hash, pack_no, e});
  }
  // Sizes of packs are needed in manifests; one listing gives them all.
  auto pack_objects = store_->list("packs/");
  if (!pack_objects.ok()) return pack_objects.status();
  std::vector<std::pair<Digest, uint64_t>> sizes;
  for (const ObjectInfo& o : *pack_objects) {
    Digest id{};
    if (from_hex(o.key.substr(o.key.rfind('/') + 1), &id)) sizes.push_back({id, o.size});
  }
  std::sort(sizes.begin(), sizes.end());
  std::vector<bool> pack_present(known.packs.size(), false);
  for (size_t i = 0; i < known.packs.size(); ++i) {
    auto it = std::lower_bound(sizes.begin(), sizes.end(), std::make_pair(known.packs[i].id, uint64_t{0}));
    if (it != sizes.end() && it->first == known.packs[i].id) {
      known.packs[i].size = it->second;
      pack_present[i] = true;
    }
  }
  // An index whose pack is gone (an interrupted prune) must not be used.
  std::erase_if(known.pages, [&](const KnownPage& p) { return !pack_present[p.pack]; });
  known.index_pages();
  return known;
}

Result<std::unique_ptr<StoreLock>> Repository::lock_database(const std::string& database) const {
  return store_->lock("db-" + database);
}

namespace {

constexpr const char* kRepositoryLock = "repository";

template <typename TakeLock>
Result<std::unique_ptr<StoreLock>> lock_with_patience(std::chrono::milliseconds patience,
                                                      TakeLock take) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (true) {
    auto lock = take();
    if (lock.ok() || lock.status().code() != ErrorCode::kLocked ||
        std::chrono::steady_clock::now() >= deadline)
      return lock;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

Result<std::unique_ptr<StoreLock>> Repository::lock_for_backup(
    std::chrono::milliseconds patience) const {
  auto lock = lock_with_patience(patience, [this] { return store_->lock_shared(kRepositoryLock); });
  if (lock.ok() || lock.status().code() != ErrorCode::kLocked) return lock;
  return Status::Locked(describe() + " is being pruned (" + lock.status().message() +
                        "); the backup will be possible when the prune ends");
}

Result<std::unique_ptr<StoreLock>> Repository::lock_for_prune(
    std::chrono::milliseconds patience) const {
  auto lock = lock_with_patience(patience, [this] { return store_->lock(kRepositoryLock); });
  if (lock.ok() || lock.status().code() != ErrorCode::kLocked) return lock;
  return Status::Locked("cannot prune " + describe() +
                        " while backups are writing to it; it will be pruned next time");
}

}  // namespace sqlbak
