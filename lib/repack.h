// Repacking: rewrites the packs that are mostly garbage, so that pruning can
// give their space back (docs/FORMAT.md, "Removing backups").
//
// Pruning deletes a pack only when no backup needs any page of it. A pack that
// a remaining backup still needs one page of keeps all its bytes; after a few
// rotations of a database that changes a lot, most of a target can be such
// dead weight. repack_packs() copies the live pages of packs whose live bytes
// are less than half of the pack (and only when, all together, that frees at
// least min_reclaim_bytes) into new packs, then rewrites every manifest that
// referenced them. The old packs are then garbage, which the prune deletes.
//
// Order, so that a kill -9 at any point leaves every manifest referring only
// to objects that exist: (1) the new packs, each pack before its index; (2)
// each affected manifest, replaced atomically (put) with the same backup id —
// ids do not depend on the manifest's content, so users see no change; (3)
// only then, in the prune, the old indexes and packs. Leftovers of an
// interrupted run are unreferenced packs, which the next prune deletes.
//
// Deterministic: which packs are repacked, and the bytes of the new packs,
// depend only on the packs and on the set of pages the manifests need (not on
// which copy of a page they point to). So a repack interrupted while it
// rewrites manifests, run again, writes byte-identical packs (same names) and
// finishes rewriting; it does not copy the pages a second time.
//
// Every page copied is checked against its SHA-256 (and each source pack
// against its name) before it is used. A damaged candidate pack is left
// alone and named in RepackResult::problems; the others are still repacked.
//
// Thread-safety: one call at a time per repository.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/manifest.h"
#include "lib/repository.h"
#include "lib/status.h"

namespace sqlbak {

struct RepackOptions {
  // Plan only: report what would be repacked, write nothing.
  bool dry_run = false;
  // A pack is repacked when the bytes of its live pages are less than this
  // fraction of its size. At 1/2 every byte copied frees at least one byte, and
  // a page is copied again only after half of its new pack has died too.
  double max_live_fraction = 0.5;
  // Repacking happens only when it frees at least this much, all candidate
  // packs together: less is not worth reading packs and rewriting manifests
  // for; it waits until later rotations make it worth it.
  uint64_t min_reclaim_bytes = 1024 * 1024;
  // Compression levels of the new packs' blocks. A page keeps the codec of the
  // block it came from.
  int zstd_level = 3;
  int gzip_level = 6;
  // Called before each object is written (new packs, their indexes, rewritten
  // manifests), with its key. Tests stop a repack there.
  std::function<void(const std::string& key)> before_write;
};

struct RepackResult {
  size_t packs_repacked = 0;       // old packs whose live pages were copied
  size_t packs_written = 0;        // new packs
  size_t manifests_rewritten = 0;
  uint64_t bytes_repacked = 0;     // old packs and their indexes
  uint64_t bytes_written = 0;      // new packs and their indexes (dry run: estimate)
  uint64_t live_pages = 0;         // pages copied
  std::vector<std::string> repacked;  // names (hex) of the old packs
  std::vector<std::string> problems;  // damaged packs left alone, and why
  // Bytes the repack frees once the old packs are deleted.
  uint64_t bytes_reclaimed() const {
    return bytes_repacked > bytes_written ? bytes_repacked - bytes_written : 0;
  }
};

// REQUIRES: the caller holds the exclusive repository lock (lock_for_prune);
// MANIFESTS are every manifest of REPO, each readable. On return, MANIFESTS
// hold what is stored: rewritten ones replaced. An error means the repack
// stopped part-way; the target is consistent, but the caller must read the
// manifests again before deleting anything (a failed put may have landed).
Result<RepackResult> repack_packs(Repository& repo, std::vector<Manifest>& manifests,
                                  const RepackOptions& options);

}  // namespace sqlbak
