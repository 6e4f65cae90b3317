// Manifests: the record of one backup, and its commit point (docs/FORMAT.md,
// "Manifests"). A backup exists exactly when its manifest object exists.
//
// The page map is run-length encoded: a run says that pages
// [first_page, first_page + count) are entries [first_entry, first_entry +
// count) of one pack, so an incremental backup of a large database that
// changed a little has a small manifest. Pages that no run covers (SQLite's
// lock-byte page) are zero-filled on restore.
//
// Pure: encoding, decoding and the page-map arithmetic; no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/sha256.h"
#include "lib/status.h"

namespace sqlbak {

inline constexpr int kManifestFormatVersion = 1;

struct ManifestPack {
  Digest id{};            // SHA-256 of the pack object, and its name
  uint64_t size = 0;      // bytes of the pack object
  Digest index_sha256{};  // SHA-256 of its index object
  uint64_t index_size = 0;
};

struct PageRun {
  uint32_t first_page = 0;  // 1-based SQLite page number
  uint32_t count = 0;
  uint32_t pack = 0;  // index into Manifest::packs
  uint32_t first_entry = 0;
};

// Where one page lives: entry ENTRY of pack PACK (an index into a pack list).
struct PageRef {
  uint32_t pack = kNoPack;
  uint32_t entry = 0;
  static constexpr uint32_t kNoPack = 0xffffffffu;
};

struct Manifest {
  std::string id;        // "20261125T165012Z-3fa2c1"
  std::string database;  // database name from the config
  std::string created;   // ISO 8601 UTC, second precision
  int64_t created_unix_ms = 0;
  std::string kind;      // "full" (no page reused) | "incremental"
  uint32_t page_size = 0;
  uint32_t page_count = 0;
  std::string journal_mode;  // of the source: "wal", "delete", ...
  std::string sqlite_version;
  std::string source_path;
  uint64_t source_bytes = 0;  // page_size * page_count
  uint64_t stored_bytes = 0;  // bytes of the new objects this backup wrote
  uint64_t new_pages = 0;     // pages this backup stored (not already in the target)
  int64_t duration_ms = 0;
  uint32_t restarts = 0;      // online-backup restarts caused by writers
  std::string compression;    // "zstd" | "gzip" | "none"
  int compression_level = 0;
  std::string verify;         // "integrity" | "quick" | "none"
  std::string verification;   // what the check said ("ok") or "skipped"
  uint32_t step_pages = 0;
  std::string host;
  std::vector<ManifestPack> packs;
  std::vector<PageRun> runs;
};

// Run-length encodes REFS (element i is page i + 1). Pages with kNoPack are left out.
std::vector<PageRun> encode_page_runs(const std::vector<PageRef>& refs);
// Expands runs to one PageRef per page (size PAGE_COUNT); kCorruption when a
// run leaves the database or names a pack that does not exist.
Result<std::vector<PageRef>> decode_page_runs(const std::vector<PageRun>& runs,
                                             uint32_t page_count, size_t pack_count);

// The stored form: {"format":1,"sha256":HEX,"manifest":{...}}, where the hash
// is over the compact JSON text of "manifest" as stored.
std::string encode_manifest(const Manifest& m);
Result<Manifest> decode_manifest(std::string_view bytes);

// The object key of a manifest: "manifests/<database>/<id>.json".
std::string manifest_key(const std::string& database, const std::string& id);

// A new backup id for a backup created at UNIX_MS: UTC time + 6 random hex digits.
std::string make_backup_id(int64_t unix_ms);

// True when TEXT has the form of a backup id.
bool looks_like_backup_id(std::string_view text);

}  // namespace sqlbak
