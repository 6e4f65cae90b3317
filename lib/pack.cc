#include "lib/pack.h"

#include <cstring>

namespace sqlbak {
namespace {

constexpr char kPackMagic[8] = {'S', 'Q', 'L', 'B', 'A', 'K', 'P', 'K'};
constexpr char kIndexMagic[8] = {'S', 'Q', 'L', 'B', 'A', 'K', 'I', 'X'};
constexpr char kEndMagic[8] = {'S', 'Q', 'L', 'B', 'A', 'K', 'P', 'E'};
constexpr size_t kPackHeaderSize = 16;  // magic + version + reserved
constexpr size_t kIndexHeaderSize = 16;  // magic + version + count
constexpr size_t kFooterSize = 16;       // index offset + end magic

void put_u32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}
uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

PackBuilder::PackBuilder() {
  bytes_.append(kPackMagic, 8);
  put_u32(&bytes_, kPackFormatVersion);
  put_u32(&bytes_, 0);
}

void PackBuilder::add_block(BlockCodec codec, uint32_t raw_size, std::string_view stored,
                            const std::vector<Digest>& hashes,
                            const std::vector<uint32_t>& lengths) {
  const uint64_t block_offset = bytes_.size();
  bytes_.push_back(static_cast<char>(codec));
  bytes_.append(3, '\0');
  put_u32(&bytes_, raw_size);
  put_u32(&bytes_, static_cast<uint32_t>(stored.size()));
  bytes_.append(stored);
  uint32_t offset = 0;
  for (size_t i = 0; i < hashes.size(); ++i) {
    entries_.push_back({hashes[i], block_offset, offset, lengths[i]});
    offset += lengths[i];
  }
}

std::string PackBuilder::finish(std::string* index) {
  *index = encode_pack_index(entries_);
  const uint64_t index_offset = bytes_.size();
  bytes_.append(*index);
  put_u64(&bytes_, index_offset);
  bytes_.append(kEndMagic, 8);
  return std::move(bytes_);
}

std::string encode_pack_index(const std::vector<PackIndexEntry>& entries) {
  std::string s;
  s.reserve(kIndexHeaderSize + entries.size() * kIndexEntrySize);
  s.append(kIndexMagic, 8);
  put_u32(&s, kPackFormatVersion);
  put_u32(&s, static_cast<uint32_t>(entries.size()));
  for (const PackIndexEntry& e : entries) {
    s.append(reinterpret_cast<const char*>(e.hash.data()), e.hash.size());
    put_u64(&s, e.block_offset);
    put_u32(&s, e.offset_in_block);
    put_u32(&s, e.length);
  }
  return s;
}

Result<std::vector<PackIndexEntry>> decode_pack_index(std::string_view b) {
  if (b.size() < kIndexHeaderSize || std::memcmp(b.data(), kIndexMagic, 8) != 0)
    return Status::Corruption("not a pack index (bad magic)");
  uint32_t version = get_u32(b.data() + 8);
  if (version != kPackFormatVersion)
    return Status::Unsupported("pack index format version " + std::to_string(version) +
                               " is not supported");
  uint32_t count = get_u32(b.data() + 12);
  if (b.size() != kIndexHeaderSize + static_cast<size_t>(count) * kIndexEntrySize)
    return Status::Corruption("pack index size does not match its entry count");
  std::vector<PackIndexEntry> entries(count);
  const char* p = b.data() + kIndexHeaderSize;
  for (uint32_t i = 0; i < count; ++i, p += kIndexEntrySize) {
    std::memcpy(entries[i].hash.data(), p, 32);
    entries[i].block_offset = get_u64(p + 32);
    entries[i].offset_in_block = get_u32(p + 40);
    entries[i].length = get_u32(p + 44);
  }
  return entries;
}

Result<std::vector<PackIndexEntry>> read_pack_index(std::string_view pack) {
  if (pack.size() < kPackHeaderSize + kIndexHeaderSize + kFooterSize ||
      std::memcmp(pack.data(), kPackMagic, 8) != 0 ||
      std::memcmp(pack.data() + pack.size() - 8, kEndMagic, 8) != 0)
    return Status::Corruption("not a pack (bad magic)");
  uint64_t index_offset = get_u64(pack.data() + pack.size() - kFooterSize);
  if (index_offset < kPackHeaderSize || index_offset > pack.size() - kFooterSize)
    return Status::Corruption("pack footer points outside the pack");
  return decode_pack_index(
      pack.substr(index_offset, pack.size() - kFooterSize - index_offset));
}

Result<BlockHeader> read_block(std::string_view pack, uint64_t offset, std::string_view* stored) {
  // OFFSET comes from an index and may be anything: compare what is left
  // after it, as OFFSET + kBlockHeaderSize could wrap around 2^64.
  if (offset < kPackHeaderSize || offset > pack.size() || pack.size() - offset < kBlockHeaderSize)
    return Status::Corruption("block offset " + std::to_string(offset) + " is outside the pack");
  const char* p = pack.data() + offset;
  BlockHeader h;
  h.codec = static_cast<BlockCodec>(static_cast<uint8_t>(p[0]));
  h.raw_size = get_u32(p + 4);
  h.stored_size = get_u32(p + 8);
  if (h.stored_size > pack.size() - offset - kBlockHeaderSize)
    return Status::Corruption("block at offset " + std::to_string(offset) + " overruns the pack");
  *stored = pack.substr(offset + kBlockHeaderSize, h.stored_size);
  return h;
}

Status decode_block(std::string_view pack, uint64_t offset, std::string* out) {
  std::string_view stored;
  Result<BlockHeader> h = read_block(pack, offset, &stored);
  if (!h.ok()) return h.status();
  return decompress_block(h->codec, stored, h->raw_size, out)
      .WithContext("block at offset " + std::to_string(offset));
}

}  // namespace sqlbak
