// Prune: removes the objects of a target that no backup needs any more.
//
// After rotation has removed manifests, the packs (and their indexes) that no
// remaining manifest references are garbage. prune_repository() finds and
// deletes them under the exclusive repository lock, which backups hold shared
// (Repository::lock_for_backup): while it runs no backup can be choosing
// pages to reuse, so nothing a backup in progress needs can go.
//
// Before deleting, it repacks (lib/repack.h) the packs that remaining backups
// still need but that are mostly garbage: their live pages go to new packs,
// the manifests that used them are rewritten, and the old packs become
// garbage deleted in the same prune.
//
// Crash safety: every deletion is of an object no manifest references (as the
// manifests are stored when the deletions start), and an index is deleted
// before its pack, so a backup never learns of a page whose pack is gone. A
// prune killed at any point leaves the target consistent (some garbage left),
// and the next prune removes the rest.
//
// A damaged manifest stops the prune before anything is deleted: what it
// references cannot be known, and deleting its packs would make a repair
// impossible.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "lib/repack.h"
#include "lib/repository.h"
#include "lib/status.h"

namespace sqlbak {

struct PruneOptions {
  bool dry_run = false;
  // How long to wait for running backups to release the repository lock.
  std::chrono::milliseconds lock_patience{std::chrono::seconds(30)};
  // Called before each deletion, with the key (tests interrupt a prune there).
  std::function<void(const std::string& key)> before_delete;
  // With dry_run: manifests (by key) to count as removed already, so that the
  // plan reports what a rotation that removes them would repack.
  std::set<std::string> dry_run_removed;
  // Repack packs that are mostly garbage (repack.dry_run follows dry_run).
  bool repack = true;
  RepackOptions repack_options;
};

struct PruneResult {
  size_t manifests = 0;         // backups the target keeps
  size_t packs_total = 0;       // packs before the prune
  size_t packs_removed = 0;     // packs no backup needed
  size_t indexes_removed = 0;   // their indexes, and indexes left without a pack
  uint64_t bytes_before = 0;    // packs and indexes, before
  uint64_t bytes_removed = 0;    // everything deleted, repacked packs included
  // What repacking did (dry run: would do; its packs are then not counted in
  // packs_removed), with the damaged packs it left alone in repack.problems.
  RepackResult repack;
  // An error that stopped the repack part-way; the prune went on safely.
  Status repack_status;
};

Result<PruneResult> prune_repository(Repository& repo, const PruneOptions& options);

}  // namespace sqlbak
