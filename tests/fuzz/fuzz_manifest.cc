// Fuzzes the manifest reader (lib/manifest.h): decode_manifest() on any bytes,
// and decode_page_runs() on what it accepts.
//
// A manifest carries the SHA-256 of its body, which random mutations almost
// never keep right; so each input is decoded twice: as it is (the checksum
// and framing checks) and, when it is a JSON object with a "manifest" body,
// once more with "sha256" recomputed (everything behind the checksum).
//
// Checked for each manifest that decodes:
//  - its page size is one SQLite can have (a power of two, 512..65536);
//  - it re-encodes (encode_manifest) to bytes that decode to a manifest that
//    encodes to the same bytes: the stored form is a fixed point;
//  - its page runs either expand to exactly page_count pages (when that is
//    small enough to expand here), every page in a listed pack, and encode
//    back to runs that expand to the same pages; or are refused as corrupt.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/manifest.h"
#include "lib/sha256.h"

namespace {

using nlohmann::json;

// decode_page_runs() allocates one PageRef per page of the database; a
// manifest may legitimately describe 2^32 pages, which is no bug but would
// only exhaust the fuzzer's memory.
constexpr uint32_t kMaxPagesToExpand = 1u << 20;

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_manifest: invariant broken: %s: %s\n", what, detail.c_str());
  std::abort();
}

bool same_refs(const std::vector<sqlbak::PageRef>& a, const std::vector<sqlbak::PageRef>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].pack != b[i].pack || a[i].entry != b[i].entry) return false;
  return true;
}

void check_manifest(const sqlbak::Manifest& m) {
  if (m.page_size < 512 || m.page_size > 65536 || (m.page_size & (m.page_size - 1)) != 0)
    fail("accepted page size", std::to_string(m.page_size));

  const std::string encoded = sqlbak::encode_manifest(m);
  auto again = sqlbak::decode_manifest(encoded);
  if (!again.ok()) fail("re-encoded manifest does not decode", again.status().message() + "\n" + encoded);
  const std::string encoded_again = sqlbak::encode_manifest(*again);
  if (encoded_again != encoded) fail("manifest changes through encode/decode", encoded + "\nvs\n" + encoded_again);

  (void)sqlbak::manifest_key(m.database, m.id);
  (void)sqlbak::looks_like_backup_id(m.id);

  if (m.page_count > kMaxPagesToExpand) return;
  auto refs = sqlbak::decode_page_runs(m.runs, m.page_count, m.packs.size());
  if (!refs.ok()) return;
  if (refs->size() != m.page_count) fail("page map size", std::to_string(refs->size()));
  for (const sqlbak::PageRef& r : *refs)
    if (r.pack != sqlbak::PageRef::kNoPack && r.pack >= m.packs.size()) fail("page in unlisted pack", std::to_string(r.pack));
  const std::vector<sqlbak::PageRun> runs = sqlbak::encode_page_runs(*refs);
  auto refs_again = sqlbak::decode_page_runs(runs, m.page_count, m.packs.size());
  if (!refs_again.ok()) fail("re-encoded page runs do not decode", refs_again.status().message());
  if (!same_refs(*refs, *refs_again)) fail("page map changes through encode/decode", encoded);
}

void decode_and_check(std::string_view bytes) {
  auto m = sqlbak::decode_manifest(bytes);
  if (!m.ok()) {
    if (m.status().message().empty()) fail("empty error message", std::string(bytes));
    return;
  }
  check_manifest(*m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  json w = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  decode_and_check(bytes);

  if (w.is_discarded() || !w.is_object() || !w.contains("manifest") || !w["manifest"].is_object()) return 0;
  w["sha256"] = sqlbak::to_hex(sqlbak::sha256(w["manifest"].dump()));
  decode_and_check(w.dump());
  return 0;
}
