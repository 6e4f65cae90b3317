// Rotation: applies each database's retention policy on each of its targets,
// removes the manifests of the backups no rule keeps, then prunes the target.
// The one implementation behind `sqlbakctl rotate`, `--offline rotate` and the
// daemon's `rotate:` schedule.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "lib/operations.h"
#include "lib/status.h"

namespace sqlbak {

struct RotateRequest {
  std::string database;  // empty: every configured database
  bool dry_run = false;
};

// {"dry_run", "rotations":[{"database","target","kept":[{"id","created","reasons":[...]}],
//   "removed":[{"id","created"}],"error"}], "prunes":[{"target","packs_total","packs_removed",
//   "indexes_removed","bytes_before","bytes_removed","backups","packs_repacked","packs_written",
//   "manifests_rewritten","bytes_written","bytes_reclaimed","repack_problems","error"}],
//   "errors":[...]}
// packs_removed and bytes_removed count everything the prune deleted, repacked
// packs included; bytes_reclaimed is what repacking freed (deleted minus
// written). With dry_run the repack fields say what would be repacked
// (bytes_written and bytes_reclaimed estimated), and the prune counts the
// backups the rotation would remove as removed.
// Every (database, target) rotation and every prune is recorded in the
// catalog (not with --dry-run). Fails only for a usage error; the failures of
// single targets are in "errors" (and make `sqlbakctl rotate` exit 1).
Result<nlohmann::json> rotate(Workspace& ws, const RotateRequest& request);

}  // namespace sqlbak
