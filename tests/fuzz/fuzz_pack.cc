// Fuzzes the pack and index readers (lib/pack.h): decode_pack_index() on any
// bytes (an index object), and read_pack_index(), read_block() and
// decode_block() on any bytes (a pack), as restore and load_known_pages read
// them.
//
// Checked on every input:
//  - an index that decodes re-encodes (encode_pack_index) to the same bytes:
//    the format has one encoding;
//  - a pack whose index reads has that index as its trailer, i.e. the
//    trailer alone decodes to the same entries;
//  - every block an entry points at either is refused or lies inside the
//    pack; a block that decodes has exactly its announced size, at most
//    kMaxBlockRawSize (lib/compression.h); the pages of its entries are
//    hashed where they lie inside it (as restore does).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lib/pack.h"
#include "lib/sha256.h"

namespace {

// Entries may all point at different offsets; a few blocks are enough.
constexpr size_t kMaxBlocksPerPack = 64;

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_pack: invariant broken: %s: %s\n", what, detail.c_str());
  std::abort();
}

bool same_entries(const std::vector<sqlbak::PackIndexEntry>& a, const std::vector<sqlbak::PackIndexEntry>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].hash != b[i].hash || a[i].block_offset != b[i].block_offset ||
        a[i].offset_in_block != b[i].offset_in_block || a[i].length != b[i].length)
      return false;
  return true;
}

void check_index(std::string_view bytes) {
  auto entries = sqlbak::decode_pack_index(bytes);
  if (!entries.ok()) {
    if (entries.status().message().empty()) fail("empty error message", "index");
    return;
  }
  if (sqlbak::encode_pack_index(*entries) != bytes) fail("index does not re-encode to itself", std::to_string(bytes.size()));
}

void check_pack(std::string_view pack) {
  auto entries = sqlbak::read_pack_index(pack);
  if (!entries.ok()) {
    if (entries.status().message().empty()) fail("empty error message", "pack");
    return;
  }
  // The trailer is the index object: [index offset .. size - 16).
  uint64_t index_offset = 0;
  for (int i = 7; i >= 0; --i) index_offset = index_offset << 8 | static_cast<uint8_t>(pack[pack.size() - 16 + static_cast<size_t>(i)]);
  auto trailer = sqlbak::decode_pack_index(pack.substr(index_offset, pack.size() - 16 - index_offset));
  if (!trailer.ok() || !same_entries(*entries, *trailer)) fail("pack index is not its trailer", "");

  std::set<uint64_t> offsets;
  for (const sqlbak::PackIndexEntry& e : *entries) {
    if (offsets.size() >= kMaxBlocksPerPack && !offsets.contains(e.block_offset)) continue;
    offsets.insert(e.block_offset);
  }
  for (uint64_t offset : offsets) {
    std::string_view stored;
    auto header = sqlbak::read_block(pack, offset, &stored);
    if (!header.ok()) continue;
    if (stored.data() < pack.data() || stored.data() + stored.size() > pack.data() + pack.size() ||
        stored.size() != header->stored_size)
      fail("block lies outside the pack", std::to_string(offset));
    std::string block;
    if (!sqlbak::decode_block(pack, offset, &block).ok()) continue;
    if (block.size() != header->raw_size) fail("block has another size than announced", std::to_string(offset));
    if (block.size() > sqlbak::kMaxBlockRawSize) fail("block larger than a block holds", std::to_string(offset));
    for (const sqlbak::PackIndexEntry& e : *entries) {
      if (e.block_offset != offset || static_cast<uint64_t>(e.offset_in_block) + e.length > block.size()) continue;
      (void)(sqlbak::sha256(block.data() + e.offset_in_block, e.length) == e.hash);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_index(bytes);
  check_pack(bytes);
  return 0;
}
