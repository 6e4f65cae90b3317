// Rebuilding database images from a repository: restore and verify.
//
// Every object a backup needs is read whole and its SHA-256 checked (packs
// against their names, index objects against the manifest) before a byte of
// it is used, and every page against its hash in the index before the image
// is placed or called good: read back from the written image while SQLite
// checks it, or, for an image of more than PENDING_PAGE_LIMIT pages (36 bytes
// of memory each), as each page is written. Errors name the backup and the
// object.
//
// Thread-safety: free functions; each call uses its own threads and files.
#pragma once

#include <string>

#include "lib/config.h"
#include "lib/manifest.h"
#include "lib/repository.h"
#include "lib/status.h"

namespace sqlbak {

// Up to 4 GiB of 4 KiB pages (36 MiB of hashes) are checked on the image.
inline constexpr uint64_t kPendingPageLimit = uint64_t{1} << 20;

// Writes the image of M into FD (a new, empty, writable file), using THREADS
// threads. FD ends up page_count * page_size bytes long; pages the manifest
// does not list (the lock-byte page) are zeros.
Status rebuild_image(const Repository& repo, const Manifest& m, int fd, int threads);

// Restores M to PATH: rebuilds into a temporary file beside PATH, runs
// quick_check, fsyncs, removes a stale -wal/-shm/-journal of PATH and renames
// into place. An existing PATH is refused unless FORCE. On any failure PATH is
// untouched and no temporary file is left.
Status restore_backup(const Repository& repo, const Manifest& m, const std::string& path, bool force,
                      uint64_t pending_page_limit = kPendingPageLimit);

// Rebuilds M into a temporary file in SCRATCH_DIR, runs integrity_check (or
// quick_check) on it and removes it. Returns "ok"; a failed check is kCorruption.
Result<std::string> verify_backup(const Repository& repo, const Manifest& m,
                                  const std::string& scratch_dir, VerifyMode mode,
                                  uint64_t pending_page_limit = kPendingPageLimit);

}  // namespace sqlbak
