#include "lib/rotation.h"

#include <algorithm>
#include <map>
#include <set>

#include "lib/prune.h"
#include "lib/retention.h"
#include "lib/timefmt.h"

namespace sqlbak {

using nlohmann::json;

namespace {

// Forgets the backups of DB on REPO that its policy does not keep; returns the
// rotation document. Manifests are removed oldest first, so an interrupted
// rotation leaves the newest backups in place.
json rotate_one(Workspace& ws, const DatabaseConfig& db, Repository& repo, bool dry_run,
                json& errors) {
  const int64_t started = ws.now_ms();
  json doc{{"database", db.name}, {"target", repo.target_name()}, {"kept", json::array()},
           {"removed", json::array()}, {"error", ""}};
  auto fail = [&](const Status& s) {
    doc["error"] = s.message();
    errors.push_back({{"database", db.name}, {"target", repo.target_name()}, {"error", s.message()},
                      {"code", code_name(s.code())}});
    if (!dry_run)
      ws.record(finished_job("rotate", db.name, repo.target_name(), "", started, ws.now_ms(), nullptr, s));
    return doc;
  };

  auto refs = repo.list_manifest_refs(db.name);
  if (!refs.ok()) return fail(refs.status());
  std::vector<RetentionCandidate> candidates;
  std::map<std::string, ManifestRef> ref_by_id;
  for (const ManifestRef& ref : *refs) {
    auto m = repo.read_manifest(ref);
    // A damaged manifest is neither kept by a rule nor removed: `verify` reports it.
    if (!m.ok()) continue;
    candidates.push_back({m->id, m->created_unix_ms});
    ref_by_id[m->id] = ref;
  }
  const auto decisions = apply_retention(db.settings.retention, candidates, ws.now_ms());
  std::vector<const RetentionDecision*> removed;
  for (const RetentionDecision& d : decisions) {
    if (d.keep) {
      doc["kept"].push_back({{"id", d.id}, {"created", format_iso_utc(d.created_unix_ms)},
                             {"reasons", d.reasons}});
    } else {
      removed.push_back(&d);
    }
  }
  // Removing manifests holds the repository lock shared, as a backup does: a
  // prune (exclusive) of the same target, started by another database's
  // rotation, must not list a manifest that vanishes before it reads it.
  std::unique_ptr<StoreLock> repository_lock;
  if (!dry_run && !removed.empty()) {
    auto lock = repo.lock_for_backup(std::chrono::seconds(60));
    if (!lock.ok()) return fail(lock.status().WithContext("cannot remove backups of '" + db.name + "'"));
    repository_lock = std::move(lock).value();
  }
  // Decisions are newest first; remove from the oldest.
  for (auto it = removed.rbegin(); it != removed.rend(); ++it) {
    const RetentionDecision& d = **it;
    if (!dry_run) {
      Status s = repo.store().remove(ref_by_id[d.id].key);
      if (!s.ok()) return fail(s.WithContext("cannot remove backup " + d.id));
    }
    doc["removed"].push_back({{"id", d.id}, {"created", format_iso_utc(d.created_unix_ms)}});
  }
  if (!dry_run) {
    // Requests and bytes: Workspace::record() charges the target store's.
    ws.record(finished_job("rotate", db.name, repo.target_name(), "", started, ws.now_ms(), nullptr,
                           Status::Ok()));
  }
  return doc;
}

json prune_one(Workspace& ws, Repository& repo, bool dry_run, const json& rotations, json& errors) {
  const int64_t started = ws.now_ms();
  PruneOptions options;
  options.dry_run = dry_run;
  // A dry run removed nothing; the prune plans as if it had.
  for (const json& rot : rotations)
    if (rot["target"] == repo.target_name())
      for (const json& r : rot["removed"])
        options.dry_run_removed.insert(
            manifest_key(rot["database"].get<std::string>(), r["id"].get<std::string>()));
  // Repacked pages are compressed at the level of the target's databases
  // (the last in the config that uses each codec).
  for (const DatabaseConfig& db : ws.config().databases) {
    const auto& targets = db.settings.targets;
    if (std::find(targets.begin(), targets.end(), repo.target_name()) == targets.end()) continue;
    const CompressionSettings& c = db.settings.compression;
    if (c.algorithm == CompressionAlgorithm::kZstd) options.repack_options.zstd_level = c.level;
    if (c.algorithm == CompressionAlgorithm::kGzip) options.repack_options.gzip_level = c.level;
  }
  auto r = prune_repository(repo, options);
  json doc{{"target", repo.target_name()}, {"error", ""}};
  if (!r.ok()) {
    doc["error"] = r.status().message();
    errors.push_back({{"database", ""}, {"target", repo.target_name()},
                      {"error", r.status().message()}, {"code", code_name(r.status().code())}});
  } else {
    doc.update({{"packs_total", r->packs_total}, {"packs_removed", r->packs_removed},
                {"indexes_removed", r->indexes_removed}, {"bytes_before", r->bytes_before},
                {"bytes_removed", r->bytes_removed}, {"backups", r->manifests},
                {"packs_repacked", r->repack.packs_repacked}, {"packs_written", r->repack.packs_written},
                {"manifests_rewritten", r->repack.manifests_rewritten},
                {"bytes_written", r->repack.bytes_written},
                {"bytes_reclaimed", r->repack.bytes_reclaimed()},
                {"repack_problems", r->repack.problems}});
    // A damaged pack, or a repack stopped part-way: the prune went on, but say so.
    for (const std::string& problem : r->repack.problems)
      errors.push_back({{"database", ""}, {"target", repo.target_name()}, {"error", problem},
                        {"code", code_name(ErrorCode::kCorruption)}});
    if (!r->repack_status.ok())
      errors.push_back({{"database", ""}, {"target", repo.target_name()},
                        {"error", r->repack_status.message()},
                        {"code", code_name(r->repack_status.code())}});
  }
  if (!dry_run) {
    JobRecord job = finished_job("prune", "", repo.target_name(), "", started, ws.now_ms(), nullptr,
                                 r.ok() ? Status::Ok() : r.status());
    if (r.ok()) {
      job.stored_bytes = static_cast<int64_t>(r->repack.bytes_written) -
                         static_cast<int64_t>(r->bytes_removed);
    }
    ws.record(job);
  }
  return doc;
}

}  // namespace

Result<json> rotate(Workspace& ws, const RotateRequest& request) {
  const Config& config = ws.config();
  std::vector<const DatabaseConfig*> dbs;
  for (const DatabaseConfig& db : config.databases)
    if (request.database.empty() || db.name == request.database) dbs.push_back(&db);
  if (!request.database.empty() && dbs.empty())
    return Status::NotFound("no database named '" + request.database + "' in " + config.source_file);

  json rotations = json::array(), prunes = json::array(), errors = json::array();
  std::set<std::string> touched_targets;
  for (const DatabaseConfig* db : dbs) {
    for (const std::string& target : db->settings.targets) {
      auto repo = ws.repository(target, false);
      if (!repo.ok()) {
        // A target that holds no repository yet has nothing to rotate.
        if (repo.status().code() == ErrorCode::kNotFound) continue;
        errors.push_back({{"database", db->name}, {"target", target},
                          {"error", repo.status().message()}, {"code", code_name(repo.status().code())}});
        continue;
      }
      rotations.push_back(rotate_one(ws, *db, **repo, request.dry_run, errors));
      touched_targets.insert(target);
    }
  }
  for (const std::string& target : touched_targets) {
    auto repo = ws.repository(target, false);
    if (repo.ok()) prunes.push_back(prune_one(ws, **repo, request.dry_run, rotations, errors));
  }
  return json{{"dry_run", request.dry_run}, {"rotations", rotations}, {"prunes", prunes},
              {"errors", errors}};
}

}  // namespace sqlbak
