// Pack objects: the byte format of stored pages (docs/FORMAT.md, "Packs").
//
// A pack holds blocks; a block is a compressed run of pages; the pack ends
// with an index of its pages (hash, block, place in the block) that is also
// stored on its own as an index object, so that a backup learns which pages a
// target holds without reading any pack. A pack's name is the SHA-256 of its
// bytes, so every reader can check it.
//
// Pure encoding and decoding: no I/O. Thread-safety: values only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/compression.h"
#include "lib/sha256.h"
#include "lib/status.h"

namespace sqlbak {

inline constexpr uint32_t kPackFormatVersion = 1;
inline constexpr size_t kBlockHeaderSize = 12;
inline constexpr size_t kIndexEntrySize = 48;

// One page stored in a pack.
struct PackIndexEntry {
  Digest hash{};              // SHA-256 of the page bytes
  uint64_t block_offset = 0;  // where the block's header starts in the pack
  uint32_t offset_in_block = 0;  // where the page starts in the decompressed block
  uint32_t length = 0;           // page size in bytes
};

struct BlockHeader {
  BlockCodec codec = BlockCodec::kNone;
  uint32_t raw_size = 0;     // decompressed bytes
  uint32_t stored_size = 0;  // bytes that follow the header
};

// Builds one pack in memory.
class PackBuilder {
 public:
  PackBuilder();
  // Appends a block of RAW_SIZE bytes of pages (back to back) compressed as
  // STORED, holding the pages described by HASHES / LENGTHS in order.
  void add_block(BlockCodec codec, uint32_t raw_size, std::string_view stored,
                 const std::vector<Digest>& hashes, const std::vector<uint32_t>& lengths);
  size_t size() const { return bytes_.size(); }
  size_t entry_count() const { return entries_.size(); }
  // Finishes the pack: appends the index and footer. Returns the pack bytes;
  // INDEX receives the index object bytes.
  std::string finish(std::string* index);

 private:
  std::string bytes_;
  std::vector<PackIndexEntry> entries_;
};

// Encodes ENTRIES as an index object (also the pack's trailer).
std::string encode_pack_index(const std::vector<PackIndexEntry>& entries);

// Decodes an index object. kCorruption naming what is wrong.
Result<std::vector<PackIndexEntry>> decode_pack_index(std::string_view bytes);

// Checks a whole pack's framing (magic, footer) and returns its trailer's index.
Result<std::vector<PackIndexEntry>> read_pack_index(std::string_view pack);

// Decodes the block header at OFFSET of PACK and returns a view of its stored bytes.
Result<BlockHeader> read_block(std::string_view pack, uint64_t offset, std::string_view* stored);

// Decompresses the block at OFFSET of PACK into OUT.
Status decode_block(std::string_view pack, uint64_t offset, std::string* out);

}  // namespace sqlbak
