// Prune: removes the objects of a target that no backup needs any more.
//
// After rotation has removed manifests, the packs (and their indexes) that no
// remaining manifest references are garbage. prune_repository() finds and
// deletes them under the exclusive repository lock, which backups hold shared
// (Repository::lock_for_backup): while it runs no backup can be choosing
// pages to reuse, so nothing a backup in progress needs can go.
//
// Crash safety: every deletion is of an object no manifest references, and an
// index is deleted before its pack, so a backup never learns of a page whose
// pack is gone. A prune killed at any point leaves the target consistent (some
// garbage left), and the next prune removes the rest.
//
// A damaged manifest stops the prune before anything is deleted: what it
// references cannot be known, and deleting its packs would make a repair
// impossible.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "lib/repository.h"
#include "lib/status.h"

namespace sqlbak {

struct PruneOptions {
  bool dry_run = false;
  // How long to wait for running backups to release the repository lock.
  std::chrono::milliseconds lock_patience{std::chrono::seconds(30)};
  // Called before each deletion, with the key (tests interrupt a prune there).
  std::function<void(const std::string& key)> before_delete;
};

struct PruneResult {
  size_t manifests = 0;         // backups the target keeps
  size_t packs_total = 0;       // packs before the prune
  size_t packs_removed = 0;     // packs no backup needed
  size_t indexes_removed = 0;   // their indexes, and indexes left without a pack
  uint64_t bytes_before = 0;    // packs and indexes, before
  uint64_t bytes_removed = 0;
};

Result<PruneResult> prune_repository(Repository& repo, const PruneOptions& options);

}  // namespace sqlbak
