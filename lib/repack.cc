#include "lib/repack.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "lib/compression.h"
#include "lib/pack.h"

namespace sqlbak {
namespace {

// The block and pack sizes of the backup's writer (lib/backup.cc keeps them
// private): repacked packs are cut the same way as the packs a backup writes.
constexpr size_t kBlockBytes = 1024 * 1024;
constexpr size_t kPackBytes = 16 * 1024 * 1024;
// Pack header, and footer (index offset + end magic): docs/FORMAT.md, "Packs".
constexpr uint64_t kPackHeaderBytes = 16;
constexpr uint64_t kPackFooterBytes = 16;
constexpr uint64_t kIndexHeaderBytes = 16;

// One pack that some manifest lists.
struct PackState {
  ManifestPack info;
  bool usable = true;  // false: never repacked (manifests disagree, index unreadable, ...)
  std::vector<PackIndexEntry> entries;
  bool candidate = false;
  bool repacked = false;  // its live pages are in the new packs
  uint64_t live_bytes = 0;  // stored bytes of its needed pages, estimated per block
  uint64_t live_entries = 0;
};

bool contains(const std::vector<Digest>& sorted, const Digest& d) {
  return std::binary_search(sorted.begin(), sorted.end(), d);
}

// Finds the stored extent of every block from the index alone: a block runs
// from its header to the next block's header (the last one to the index).
// Sets live_bytes / live_entries of PS; false when the index cannot describe
// the pack (then it is not touched).
bool measure_liveness(PackState& ps, const std::vector<Digest>& needed) {
  const uint64_t tail = ps.info.index_size + kPackFooterBytes;
  if (ps.info.size < kPackHeaderBytes + tail) return false;
  const uint64_t index_offset = ps.info.size - tail;
  size_t i = 0;
  const auto& e = ps.entries;
  while (i < e.size()) {
    const uint64_t offset = e[i].block_offset;
    size_t j = i, live = 0;
    for (; j < e.size() && e[j].block_offset == offset; ++j)
      if (contains(needed, e[j].hash)) ++live;
    const uint64_t end = j < e.size() ? e[j].block_offset : index_offset;
    if (offset < kPackHeaderBytes || end <= offset || end > index_offset) return false;
    ps.live_bytes += (end - offset) * live / (j - i);
    ps.live_entries += live;
    i = j;
  }
  return true;
}

// Assembles copied pages into new packs exactly as a backup does (blocks of
// kBlockBytes through compress_block, PackBuilder, a pack closed at
// kPackBytes of pages) and stores each: the pack, then its index.
class RepackWriter {
 public:
  struct Place {
    uint32_t pack = 0;  // into packs()
    uint32_t entry = 0;
  };

  RepackWriter(Repository& repo, const RepackOptions& options, RepackResult* result)
      : repo_(repo), options_(options), result_(result) {}

  bool placed(const Digest& hash) const { return places_.count(hash) != 0; }
  const Place* find(const Digest& hash) const {
    auto it = places_.find(hash);
    return it == places_.end() ? nullptr : &it->second;
  }
  const std::vector<ManifestPack>& packs() const { return packs_; }
  const Digest& hash_at(const Place& p) const { return hashes_[p.pack][p.entry]; }

  Status add(BlockCodec codec, std::string_view page, const Digest& hash) {
    if (!block_hashes_.empty() && codec != codec_) SQLBAK_RETURN_IF_ERROR(flush_block());
    codec_ = codec;
    places_[hash] = Place{static_cast<uint32_t>(packs_.size()), entries_in_pack_++};
    if (hashes_.size() <= packs_.size()) hashes_.resize(packs_.size() + 1);
    hashes_[packs_.size()].push_back(hash);
    raw_.append(page);
    block_hashes_.push_back(hash);
    block_lengths_.push_back(static_cast<uint32_t>(page.size()));
    pack_raw_bytes_ += page.size();
    if (pack_raw_bytes_ >= kPackBytes) {
      SQLBAK_RETURN_IF_ERROR(flush_block());
      return flush_pack();
    }
    if (raw_.size() >= kBlockBytes) return flush_block();
    return Status::Ok();
  }

  Status finish() {
    SQLBAK_RETURN_IF_ERROR(flush_block());
    return flush_pack();
  }

 private:
  Status flush_block() {
    if (block_hashes_.empty()) return Status::Ok();
    const int level = codec_ == BlockCodec::kGzip ? options_.gzip_level : options_.zstd_level;
    std::string stored;
    SQLBAK_RETURN_IF_ERROR(compress_block(codec_, level, raw_, &stored));
    builder_.add_block(codec_, static_cast<uint32_t>(raw_.size()), stored, block_hashes_,
                       block_lengths_);
    raw_.clear();
    block_hashes_.clear();
    block_lengths_.clear();
    return Status::Ok();
  }

  Status flush_pack() {
    if (builder_.entry_count() == 0) return Status::Ok();
    std::string index;
    const std::string bytes = builder_.finish(&index);
    builder_ = PackBuilder();
    const Digest id = sha256(bytes);
    // The pack first: an index must never name a pack that is not there.
    for (const auto& [key, data] : {std::pair<std::string, std::string_view>{Repository::pack_key(id), bytes},
                                    {Repository::index_key(id), index}}) {
      if (options_.before_write) options_.before_write(key);
      SQLBAK_RETURN_IF_ERROR(repo_.store().put(key, data).WithContext("repack of " + repo_.describe()));
    }
    packs_.push_back(ManifestPack{id, bytes.size(), sha256(index), index.size()});
    result_->packs_written++;
    result_->bytes_written += bytes.size() + index.size();
    entries_in_pack_ = 0;
    pack_raw_bytes_ = 0;
    return Status::Ok();
  }

  Repository& repo_;
  const RepackOptions& options_;
  RepackResult* result_;
  PackBuilder builder_;
  BlockCodec codec_ = BlockCodec::kZstd;
  std::string raw_;
  std::vector<Digest> block_hashes_;
  std::vector<uint32_t> block_lengths_;
  size_t pack_raw_bytes_ = 0;
  uint32_t entries_in_pack_ = 0;
  std::map<Digest, Place> places_;
  std::vector<ManifestPack> packs_;
  std::vector<std::vector<Digest>> hashes_;  // per new pack, per entry
};

struct LivePage {
  BlockCodec codec;
  std::string bytes;
  Digest hash;
};

// Reads pack PS whole, checks it against its name and its index, and returns
// its pages that are NEEDED and not yet in WRITER, each checked against its
// SHA-256. An error names what is damaged.
Result<std::vector<LivePage>> read_live_pages(const Repository& repo, const PackState& ps,
                                              const std::vector<Digest>& needed,
                                              const RepackWriter& writer) {
  const std::string key = Repository::pack_key(ps.info.id);
  std::string pack;
  SQLBAK_RETURN_IF_ERROR(repo.store().get(key, &pack).WithContext("object " + key));
  if (sha256(pack) != ps.info.id)
    return Status::Corruption("object " + key + ": SHA-256 mismatch (the object is damaged)");
  auto trailer = read_pack_index(pack);
  if (!trailer.ok()) return trailer.status().WithContext("object " + key);
  if (sha256(encode_pack_index(*trailer)) != ps.info.index_sha256)
    return Status::Corruption("object " + key + ": its index differs from its index object");

  std::vector<LivePage> live;
  std::set<Digest> taken;
  std::string block;
  uint64_t block_offset = UINT64_MAX;
  BlockCodec codec = BlockCodec::kNone;
  for (const PackIndexEntry& e : ps.entries) {
    if (!contains(needed, e.hash) || writer.placed(e.hash) || !taken.insert(e.hash).second) continue;
    if (e.block_offset != block_offset) {
      std::string_view stored;
      auto header = read_block(pack, e.block_offset, &stored);
      if (!header.ok()) return header.status().WithContext("object " + key);
      Status st = decompress_block(header->codec, stored, header->raw_size, &block);
      if (!st.ok())
        return st.WithContext("object " + key + ": block at offset " + std::to_string(e.block_offset));
      codec = header->codec;
      block_offset = e.block_offset;
    }
    if (static_cast<uint64_t>(e.offset_in_block) + e.length > block.size())
      return Status::Corruption("object " + key + ": a page lies outside its block");
    std::string_view page(block.data() + e.offset_in_block, e.length);
    if (sha256(page) != e.hash)
      return Status::Corruption("object " + key + ": a page does not match its SHA-256");
    live.push_back(LivePage{codec, std::string(page), e.hash});
  }
  return live;
}

// M with every page that lived in a repacked pack moved to its new place.
// Pack numbers are given in order of first use, as a backup gives them.
Result<Manifest> rewrite_manifest(const Manifest& m, const std::map<Digest, PackState>& packs,
                                  const RepackWriter& writer) {
  auto refs = decode_page_runs(m.runs, m.page_count, m.packs.size());
  if (!refs.ok()) return refs.status();
  Manifest out = m;
  out.packs.clear();
  std::map<Digest, uint32_t> numbers;
  auto number_of = [&](const ManifestPack& p) {
    auto [it, inserted] = numbers.emplace(p.id, static_cast<uint32_t>(out.packs.size()));
    if (inserted) out.packs.push_back(p);
    return it->second;
  };
  for (PageRef& r : *refs) {
    if (r.pack == PageRef::kNoPack) continue;
    const ManifestPack& old = m.packs[r.pack];
    const PackState& ps = packs.at(old.id);
    if (!ps.repacked) {
      r.pack = number_of(old);
      continue;
    }
    const Digest& hash = ps.entries.at(r.entry).hash;
    const RepackWriter::Place* place = writer.find(hash);
    if (place == nullptr || writer.hash_at(*place) != hash)
      return Status::Internal("repack lost a page of backup " + m.id);
    r.pack = number_of(writer.packs()[place->pack]);
    r.entry = place->entry;
  }
  out.runs = encode_page_runs(*refs);
  // What is written must read back as the same backup.
  auto check = decode_manifest(encode_manifest(out));
  if (!check.ok() || check->id != m.id || check->runs.size() != out.runs.size())
    return Status::Internal("rewritten manifest of backup " + m.id + " does not read back");
  return out;
}

}  // namespace

Result<RepackResult> repack_packs(Repository& repo, std::vector<Manifest>& manifests,
                                  const RepackOptions& options) {
  RepackResult result;

  // Every pack some manifest lists, as it lists it. Two manifests that
  // disagree about a pack, or a page map that does not decode: not touched.
  std::map<Digest, PackState> packs;
  for (const Manifest& m : manifests) {
    const bool map_ok = decode_page_runs(m.runs, m.page_count, m.packs.size()).ok();
    for (const ManifestPack& p : m.packs) {
      PackState fresh;
      fresh.info = p;
      auto [it, inserted] = packs.emplace(p.id, std::move(fresh));
      if (!map_ok || it->second.info.index_sha256 != p.index_sha256 ||
          it->second.info.size != p.size || it->second.info.index_size != p.index_size)
        it->second.usable = false;
    }
  }
  for (auto& [id, ps] : packs) {
    if (!ps.usable) continue;
    std::string bytes;
    ps.usable = repo.store().get(Repository::index_key(id), &bytes).ok() &&
                sha256(bytes) == ps.info.index_sha256;
    if (!ps.usable) continue;
    auto entries = decode_pack_index(bytes);
    ps.usable = entries.ok();
    if (ps.usable) ps.entries = std::move(entries).value();
  }

  // The pages the backups need, by hash: what makes a page of a pack live,
  // whichever copy of it a manifest points to (so that the plan is the same
  // before and after some manifests have been moved to the new packs).
  std::vector<Digest> needed;
  for (const Manifest& m : manifests) {
    for (const PageRun& run : m.runs) {
      if (run.pack >= m.packs.size()) continue;
      PackState& ps = packs.at(m.packs[run.pack].id);
      if (!ps.usable) continue;
      if (static_cast<uint64_t>(run.first_entry) + run.count > ps.entries.size()) {
        ps.usable = false;
        continue;
      }
      for (uint32_t k = 0; k < run.count; ++k) needed.push_back(ps.entries[run.first_entry + k].hash);
    }
  }
  std::sort(needed.begin(), needed.end());
  needed.erase(std::unique(needed.begin(), needed.end()), needed.end());

  // The plan.
  uint64_t reclaim = 0, live_pages = 0, estimate_written = 0;
  std::vector<PackState*> candidates;
  for (auto& [id, ps] : packs) {
    if (!ps.usable || !measure_liveness(ps, needed) || ps.live_entries == 0) continue;
    if (static_cast<double>(ps.live_bytes) >= options.max_live_fraction * static_cast<double>(ps.info.size))
      continue;
    // The new copy of its live pages: about their stored bytes, plus their
    // index twice (trailer and object).
    const uint64_t rewritten = ps.live_bytes + 2 * (kIndexHeaderBytes + kIndexEntrySize * ps.live_entries);
    const uint64_t old_bytes = ps.info.size + ps.info.index_size;
    if (rewritten >= old_bytes) continue;
    reclaim += old_bytes - rewritten;
    estimate_written += rewritten;
    live_pages += ps.live_entries;
    ps.candidate = true;
    candidates.push_back(&ps);
  }
  if (candidates.empty() || reclaim < options.min_reclaim_bytes) return result;

  if (options.dry_run) {
    for (PackState* ps : candidates) {
      result.packs_repacked++;
      result.bytes_repacked += ps->info.size + ps->info.index_size;
      result.repacked.push_back(to_hex(ps->info.id));
    }
    result.bytes_written = estimate_written;
    result.live_pages = live_pages;
    for (const Manifest& m : manifests)
      if (std::any_of(m.packs.begin(), m.packs.end(),
                      [&](const ManifestPack& p) { return packs.at(p.id).candidate; }))
        result.manifests_rewritten++;
    return result;
  }

  // (1) New packs. Candidates in name order, pages in index order: the same
  // input gives the same packs.
  RepackWriter writer(repo, options, &result);
  for (PackState* ps : candidates) {
    auto live = read_live_pages(repo, *ps, needed, writer);
    if (!live.ok()) {
      // Its pages stay where they are; `verify` tells which backups suffer.
      result.problems.push_back("pack " + to_hex(ps->info.id) + " not repacked: " +
                                live.status().message());
      continue;
    }
    for (const LivePage& page : *live) SQLBAK_RETURN_IF_ERROR(writer.add(page.codec, page.bytes, page.hash));
    ps->repacked = true;
    result.packs_repacked++;
    result.bytes_repacked += ps->info.size + ps->info.index_size;
    result.live_pages += live->size();
    result.repacked.push_back(to_hex(ps->info.id));
  }
  SQLBAK_RETURN_IF_ERROR(writer.finish());

  // (2) Every manifest that used a repacked pack, replaced in one put each.
  for (Manifest& m : manifests) {
    const bool affected = std::any_of(m.packs.begin(), m.packs.end(),
                                      [&](const ManifestPack& p) { return packs.at(p.id).repacked; });
    if (!affected) continue;
    auto rewritten = rewrite_manifest(m, packs, writer);
    if (!rewritten.ok()) return rewritten.status().WithContext("repack of " + repo.describe());
    const std::string key = manifest_key(m.database, m.id);
    if (options.before_write) options.before_write(key);
    SQLBAK_RETURN_IF_ERROR(repo.write_manifest(*rewritten).WithContext("repack of " + repo.describe()));
    m = std::move(rewritten).value();
    result.manifests_rewritten++;
  }
  return result;
}

}  // namespace sqlbak
