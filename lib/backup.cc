#include "lib/backup.h"

#include "lib/host_name.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <map>
#include <unordered_map>
#include <utility>

#include "lib/compression.h"
#include "lib/pack.h"
#include "lib/restore.h"
#include "lib/thread_priority.h"
#include "lib/timefmt.h"

namespace sqlbak {
namespace {

// Uncompressed bytes per block and per pack. Blocks are the unit of
// compression (bigger compresses better, smaller wastes less on restore of a
// single page); packs are the unit of storage and upload.
constexpr size_t kBlockBytes = 1024 * 1024;
constexpr size_t kPackBytes = 16 * 1024 * 1024;

// A queue with a bound, so a fast producer waits for a slow consumer
// instead of filling memory.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}
  // False when the queue was closed.
  bool push(T item) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }
  // False when closed and drained.
  bool pop(T* item) {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return false;
    *item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return true;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return items_.size();
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<T> items_;
  size_t capacity_;
  bool closed_ = false;
};

struct Block {
  uint64_t seq = 0;   // blocks are stored in this order
  uint32_t pack = 0;  // global pack number
  std::string raw;
  std::vector<Digest> hashes;
  std::vector<uint32_t> lengths;
  bool last_in_pack = false;
  std::string stored;  // filled by a compressor
};

// A pack assembled and waiting for the store.
struct FinishedPack {
  uint32_t pack = 0;
  std::string bytes;
  std::string index;
};

// Pages this backup has already queued, so that a page that occurs again
// (SQLite zeroes freed pages; applications repeat content) is stored once.
// A fixed number of slots, each holding the last page whose hash maps to it:
// memory stays the same whatever the database size, at the price of storing
// again a repeat that a colliding page pushed out. Lookups compare whole hashes.
class RecentPages {
 public:
  static constexpr size_t kSlots = 1 << 16;  // 2.5 MiB
  RecentPages() : slots_(kSlots) {}
  const PageRef* find(const Digest& hash) const {
    const Slot& s = slots_[slot_of(hash)];
    return s.used && s.hash == hash ? &s.ref : nullptr;
  }
  void remember(const Digest& hash, PageRef ref) { slots_[slot_of(hash)] = Slot{hash, ref, true}; }

 private:
  struct Slot {
    Digest hash{};
    PageRef ref;
    bool used = false;
  };
  static size_t slot_of(const Digest& h) {
    uint64_t v;
    std::memcpy(&v, h.data(), sizeof v);  // SHA-256 bits are already uniform
    return static_cast<size_t>(v) & (kSlots - 1);
  }
  std::vector<Slot> slots_;
};

}  // namespace

// The pipeline of one target: dedup on the caller's thread, compression on
// several threads, assembly into packs and storage on one more.
class TargetWriter {
 public:
  TargetWriter(Repository* repo, KnownPages known, CompressionSettings compression, int compressors)
      : repo_(repo),
        known_(std::move(known)),
        codec_(codec_for(compression.algorithm)),
        level_(compression.level),
        next_pack_(static_cast<uint32_t>(known_.packs.size())),
        blocks_capacity_(static_cast<size_t>(2 * std::max(1, compressors))),
        // Only the sink's hasher pushes blocks, and it may wait: it holds no
        // lock of the source. So the queue holds no more than the backlog.
        blocks_(blocks_capacity_),
        compressed_(static_cast<size_t>(2 * std::max(1, compressors))),
        finished_(1) {
    for (int i = 0; i < std::max(1, compressors); ++i)
      compressors_.emplace_back([this] { compress_loop(); });
    assembler_ = std::thread([this] { assemble_loop(); });
    storer_ = std::thread([this] { store_loop(); });
  }

  ~TargetWriter() { shutdown(); }

  Repository* repo() const { return repo_; }
  Status status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

  // True when the compressors have fallen behind: the next step should wait
  // rather than block its thread on a full queue.
  bool backlogged() const { return blocks_.size() >= blocks_capacity_; }
  bool idle() const {
    return !failed_.load() ? blocks_.size() == 0 && compressed_.size() == 0 && finished_.size() == 0 &&
                                 working_.load() == 0
                           : true;
  }

  void cancel() { fail(Status::Cancelled("backup cancelled")); }

  // Called before the first page when the database is in WAL mode.
  void run_in_background() { background_.store(true); }

  // Called on the sink's hashing thread for every page the snapshot writes.
  void add_page(uint32_t page, const uint8_t* data, uint32_t size, const Digest& hash) {
    if (failed_.load()) return;
    if (refs_.size() < page) refs_.resize(page);
    if (const KnownPage* k = known_.find(hash)) {
      refs_[page - 1] = PageRef{k->pack, k->entry};
      return;
    }
    if (const PageRef* seen = recent_.find(hash)) {
      refs_[page - 1] = *seen;
      return;
    }
    const PageRef ref{next_pack_, entries_in_pack_++};
    recent_.remember(hash, ref);
    refs_[page - 1] = ref;
    ++new_page_count_;
    block_.raw.append(reinterpret_cast<const char*>(data), size);
    block_.hashes.push_back(hash);
    block_.lengths.push_back(size);
    pack_raw_bytes_ += size;
    if (pack_raw_bytes_ >= kPackBytes) {
      submit_block(/*last_in_pack=*/true);
    } else if (block_.raw.size() >= kBlockBytes) {
      submit_block(false);
    }
  }

  void truncate(uint32_t page_count) {
    if (refs_.size() > page_count) refs_.resize(page_count);
  }

  // Flushes everything; returns the first error of the pipeline.
  Status finish() {
    // A pack is open while it has entries, even when its last block went out
    // full: an empty block marked last closes it.
    if (entries_in_pack_ > 0) submit_block(true);
    shutdown();
    return status();
  }

  // After finish(): the manifest fields that this target determines.
  Status fill_manifest(uint32_t page_count, Manifest* m) const {
    std::vector<PageRef> refs = refs_;
    refs.resize(page_count);
    const uint32_t lock_byte_page = static_cast<uint32_t>(0x40000000ull / m->page_size) + 1;
    // Map global pack numbers to the manifest's own list of the packs it uses.
    std::unordered_map<uint32_t, uint32_t> remap;
    bool reused = false;
    for (uint32_t i = 0; i < refs.size(); ++i) {
      PageRef& r = refs[i];
      if (r.pack == PageRef::kNoPack) {
        if (i + 1 == lock_byte_page) continue;
        return Status::Internal("page " + std::to_string(i + 1) + " was never copied");
      }
      auto [it, inserted] = remap.emplace(r.pack, static_cast<uint32_t>(m->packs.size()));
      if (inserted) {
        if (r.pack < known_.packs.size()) {
          m->packs.push_back(known_.packs[r.pack]);
          reused = true;
        } else {
          m->packs.push_back(stored_packs_.at(r.pack));
        }
      }
      r.pack = it->second;
    }
    m->runs = encode_page_runs(refs);
    m->kind = reused ? "incremental" : "full";
    m->stored_bytes = stored_bytes_;
    m->new_pages = new_page_count_;
    return Status::Ok();
  }

 private:
  void submit_block(bool last_in_pack) {
    block_.pack = next_pack_;  // also for the empty block that only closes a pack
    block_.last_in_pack = last_in_pack;
    block_.seq = next_seq_++;
    if (!blocks_.push(std::move(block_))) failed_.store(true);
    block_ = Block{};
    if (last_in_pack) {
      ++next_pack_;
      entries_in_pack_ = 0;
      pack_raw_bytes_ = 0;
    }
  }

  void fail(const Status& st) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.ok()) error_ = st;
    }
    failed_.store(true);
    blocks_.close();
    compressed_.close();
    finished_.close();
  }

  // Each pipeline thread, at each item: lowers its own priority once, if asked.
  void maybe_yield(bool* done) {
    if (*done || !background_.load()) return;
    run_below_applications();
    *done = true;
  }

  void compress_loop() {
    bool yielded = false;
    Block block;
    while (blocks_.pop(&block)) {
      WorkingGuard guard(working_);
      maybe_yield(&yielded);
      if (!block.hashes.empty()) {
        Status st = compress_block(codec_, level_, block.raw, &block.stored);
        if (!st.ok()) return fail(st);
      }
      std::string().swap(block.raw);  // the sizes in block.lengths say how long it was
      if (!compressed_.push(std::move(block))) return;
    }
  }

  // Assembles compressed blocks into packs in their original order (the
  // compressors finish out of order) and hands each finished pack to the
  // storer, so that the next pack is compressed while one is written or
  // uploaded (an S3 PUT of a pack takes as long as compressing it).
  void assemble_loop() {
    bool yielded = false;
    std::map<uint64_t, Block> waiting;
    uint64_t next = 0;
    PackBuilder builder;
    Block block;
    while (compressed_.pop(&block)) {
      WorkingGuard guard(working_);
      maybe_yield(&yielded);
      waiting.emplace(block.seq, std::move(block));
      for (auto it = waiting.begin(); it != waiting.end() && it->first == next; it = waiting.erase(it), ++next) {
        Block& b = it->second;
        uint32_t raw_size = 0;
        for (uint32_t len : b.lengths) raw_size += len;
        if (!b.hashes.empty()) builder.add_block(codec_, raw_size, b.stored, b.hashes, b.lengths);
        if (!b.last_in_pack) continue;
        FinishedPack done;
        done.pack = b.pack;
        done.bytes = builder.finish(&done.index);
        builder = PackBuilder();
        if (!finished_.push(std::move(done))) return;
      }
    }
  }

  void store_loop() {
    bool yielded = false;
    FinishedPack done;
    while (finished_.pop(&done)) {
      WorkingGuard guard(working_);
      maybe_yield(&yielded);
      if (failed_.load()) return;  // a pack of a failed backup is not worth a PUT
      Status st = store_pack(done.pack, done.bytes, done.index);
      if (!st.ok()) return fail(st);
      done = FinishedPack{};
    }
  }

  Status store_pack(uint32_t pack, const std::string& bytes, const std::string& index) {
    const Digest id = sha256(bytes);
    // The pack first: an index must never name a pack that is not there.
    SQLBAK_RETURN_IF_ERROR(repo_->store().put(Repository::pack_key(id), bytes));
    SQLBAK_RETURN_IF_ERROR(repo_->store().put(Repository::index_key(id), index));
    std::lock_guard<std::mutex> lock(mu_);
    stored_packs_[pack] = ManifestPack{id, bytes.size(), sha256(index), index.size()};
    stored_bytes_ += bytes.size() + index.size();
    return Status::Ok();
  }

  void shutdown() {
    blocks_.close();
    for (std::thread& t : compressors_)
      if (t.joinable()) t.join();
    compressed_.close();
    if (assembler_.joinable()) assembler_.join();
    finished_.close();
    if (storer_.joinable()) storer_.join();
  }

  Repository* repo_;
  KnownPages known_;
  BlockCodec codec_;
  int level_;

  // Step thread only.
  std::vector<PageRef> refs_;
  RecentPages recent_;
  uint64_t new_page_count_ = 0;
  Block block_;
  uint32_t next_pack_;
  uint32_t entries_in_pack_ = 0;
  size_t pack_raw_bytes_ = 0;
  uint64_t next_seq_ = 0;

  const size_t blocks_capacity_;
  BoundedQueue<Block> blocks_;
  BoundedQueue<Block> compressed_;
  // One pack waits while one is being stored: at most two packs (32 MiB) more
  // than the compressors hold.
  BoundedQueue<FinishedPack> finished_;
  std::vector<std::thread> compressors_;
  std::thread assembler_;
  std::thread storer_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> background_{false};
  std::atomic<int> working_{0};  // compressors, assembler and storer busy with an item

  // Counts a thread as busy with an item for as long as it lives.
  struct WorkingGuard {
    explicit WorkingGuard(std::atomic<int>& n) : n_(n) { ++n_; }
    ~WorkingGuard() { --n_; }
    std::atomic<int>& n_;
  };

  mutable std::mutex mu_;
  Status error_;  // GUARDED_BY(mu_)
  std::unordered_map<uint32_t, ManifestPack> stored_packs_;  // GUARDED_BY(mu_)
  uint64_t stored_bytes_ = 0;                                // GUARDED_BY(mu_)
};

// Hashes each page once and hands it to every target still working, on a
// thread of its own: the step thread copies pages into batches and goes on
// reading while the previous batch is hashed and looked up. Batches are applied
// in the order they were written, so a page rewritten by a restarted step
// keeps its last version, and a truncation lands after the pages before it.
class FanOutSink : public PageSink {
 public:
  explicit FanOutSink(std::vector<TargetWriter*> writers)
      : writers_(std::move(writers)), queue_(kBacklogBatches + kStepRoomBatches) {
    hasher_ = std::thread([this] { hash_loop(); });
  }
  ~FanOutSink() override { stop(); }

  void set_page_size(uint32_t ps) { page_size_ = ps; }
  // Called before the first page when the database is in WAL mode.
  void run_in_background() { background_.store(true); }

  Status write_pages(uint32_t first_page, const uint8_t* data, uint32_t count) override {
    if (Status st = all_failed(); !st.ok()) return st;
    for (uint32_t i = 0; i < count; ++i) {
      batch_.numbers.push_back(first_page + i);
      batch_.bytes.append(reinterpret_cast<const char*>(data) + static_cast<size_t>(i) * page_size_, page_size_);
      if (batch_.bytes.size() >= kBatchBytes) submit();
    }
    return Status::Ok();
  }

  void truncate(uint32_t page_count) override {
    batch_.truncate_to = page_count;
    submit();
  }

  // True when the hasher has fallen behind: the next step should wait rather
  // than block its thread (which may hold the source's lock) on a full queue.
  bool backlogged() const { return queue_.size() >= kBacklogBatches; }

  // Hands over the pages of a partial batch; does not wait.
  void flush() {
    if (!batch_.numbers.empty()) submit();
  }

  // Waits until every page written so far has reached the targets.
  void drain() {
    flush();
    std::unique_lock<std::mutex> lock(mu_);
    drained_.wait(lock, [&] { return outstanding_ == 0; });
  }

  // REQUIRES: the copy is done (its last batch was flushed).
  bool idle() const {
    std::lock_guard<std::mutex> lock(mu_);
    return outstanding_ == 0;
  }

  // Ends the hashing thread; pages still queued are dropped.
  void stop() {
    queue_.close();
    if (hasher_.joinable()) hasher_.join();
  }

 private:
  // 1 MiB of pages per batch. A backlog is one default step (1024 pages of
  // 4 KiB) waiting: more than the hasher does while a step waits out its
  // kRetryLater (kBacklogRetryMs), so that it does not run dry; and there is
  // room for one more step beyond the mark. Every batch queued is memory.
  static constexpr size_t kBatchBytes = 1024 * 1024;
  static constexpr size_t kBacklogBatches = 4;
  static constexpr size_t kStepRoomBatches = 4;

 public:
  static constexpr int kBacklogRetryMs = 5;

 private:

  struct PageBatch {
    std::vector<uint32_t> numbers;         // 1-based page numbers, in write order
    std::string bytes;                     // numbers.size() pages, back to back
    std::optional<uint32_t> truncate_to;  // applied after the pages
  };

  Status all_failed() const {
    for (TargetWriter* w : writers_)
      if (w->status().ok()) return Status::Ok();
    return writers_.front()->status();
  }

  void submit() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++outstanding_;
    }
    PageBatch next;
    next.bytes.reserve(kBatchBytes + page_size_);
    if (!queue_.push(std::exchange(batch_, std::move(next)))) finished_one();
  }

  void finished_one() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--outstanding_ == 0) drained_.notify_all();
  }

  void hash_loop() {
    bool yielded = false;
    PageBatch batch;
    while (queue_.pop(&batch)) {
      if (!yielded && background_.load()) {
        run_below_applications();
        yielded = true;
      }
      apply(batch);
      batch = PageBatch{};
      finished_one();
    }
    // Closed with batches still queued: nobody will apply them.
    std::lock_guard<std::mutex> lock(mu_);
    outstanding_ = 0;
    drained_.notify_all();
  }

  void apply(const PageBatch& batch) {
    for (size_t i = 0; i < batch.numbers.size(); ++i) {
      if (!all_failed().ok()) return;  // cancelled, or every target broke
      const uint8_t* page = reinterpret_cast<const uint8_t*>(batch.bytes.data()) + i * page_size_;
      const Digest hash = sha256(page, page_size_);
      for (TargetWriter* w : writers_)
        if (w->status().ok()) w->add_page(batch.numbers[i], page, page_size_, hash);
    }
    if (batch.truncate_to)
      for (TargetWriter* w : writers_) w->truncate(*batch.truncate_to);
  }

  std::vector<TargetWriter*> writers_;
  uint32_t page_size_ = 0;
  std::atomic<bool> background_{false};
  PageBatch batch_;  // being filled by the step thread
  BoundedQueue<PageBatch> queue_;
  std::thread hasher_;
  mutable std::mutex mu_;
  std::condition_variable drained_;
  int outstanding_ = 0;  // GUARDED_BY(mu_): batches submitted and not yet applied
};

BackupJob::~BackupJob() {
  if (reader_) reader_->close();
  if (sink_) sink_->stop();  // the hasher calls into the writers
  writers_.clear();  // joins the pipeline threads before the locks go
}

Result<std::unique_ptr<BackupJob>> BackupJob::start(BackupRequest request) {
  if (request.targets.empty()) return Status::InvalidArgument("database '" + request.database.name + "' has no targets");
  std::unique_ptr<BackupJob> job(new BackupJob());
  job->request_ = std::move(request);
  const DatabaseConfig& db = job->request_.database;
  job->started_ms_ = job->request_.now_ms();
  job->id_ = make_backup_id(job->started_ms_);

  std::vector<TargetWriter*> raw_writers;
  for (Repository* repo : job->request_.targets) {
    // Shared repository lock first: a prune that runs now must finish before
    // this backup reads which pages the target holds.
    auto repository_lock = repo->lock_for_backup(std::chrono::seconds(60));
    if (!repository_lock.ok())
      return repository_lock.status().WithContext("database '" + db.name + "'");
    job->locks_.push_back(std::move(repository_lock).value());
    auto lock = repo->lock_database(db.name);
    if (!lock.ok())
      return lock.status().WithContext("database '" + db.name + "'");
    job->locks_.push_back(std::move(lock).value());
    auto known = repo->load_known_pages();
    if (!known.ok()) return known.status().WithContext(repo->describe());
    job->writers_.push_back(std::make_unique<TargetWriter>(
        repo, std::move(known).value(), db.settings.compression, job->request_.compress_threads));
    raw_writers.push_back(job->writers_.back().get());
  }
  job->sink_ = std::make_unique<FanOutSink>(raw_writers);
  SnapshotOptions snapshot_options;
  // In WAL mode the check reads the copy's snapshot while the copy runs.
  snapshot_options.concurrent_check = db.settings.verify;
  snapshot_options.check_in_background = true;
  auto reader = SnapshotReader::open(db.path, db.settings.step_pages, db.settings.busy_timeout,
                                     job->sink_.get(), snapshot_options);
  if (!reader.ok()) return reader.status().WithContext("database '" + db.name + "'");
  job->reader_ = std::move(reader).value();
  job->sink_->set_page_size(job->reader_->info().page_size);
  if (job->reader_->info().wal) {
    job->sink_->run_in_background();
    for (auto& w : job->writers_) w->run_in_background();
  }
  return job;
}

void BackupJob::cancel() {
  reader_->cancel();
  for (auto& w : writers_) w->cancel();
}

Result<StepOutcome> BackupJob::step() {
  if (sink_->backlogged()) return StepOutcome{StepState::kRetryLater, FanOutSink::kBacklogRetryMs};
  for (auto& w : writers_)
    if (w->status().ok() && w->backlogged()) return StepOutcome{StepState::kRetryLater, 20};
  auto outcome = reader_->step();
  if (!outcome.ok()) return outcome.status().WithContext("database '" + request_.database.name + "'");
  // The last pages go to the hasher now, so it works while the image is checked.
  if (outcome->state == StepState::kDone) sink_->flush();
  return outcome;
}

void BackupJob::check_snapshot() {
  if (check_) return;
  const VerifyMode verify = request_.database.settings.verify;
  // In WAL mode the check reads the pinned snapshot while the pipeline drains.
  if (verify != VerifyMode::kNone && reader_->info().wal)
    check_ = reader_->check(verify);
  else
    check_ = std::string("skipped");
}

bool BackupJob::pipelines_idle() const {
  if (!sink_->idle()) return false;
  for (const auto& w : writers_)
    if (!w->idle()) return false;
  return true;
}

std::vector<TargetOutcome> BackupJob::finish() {
  const DatabaseConfig& db = request_.database;
  const SnapshotInfo info = reader_->info();
  const VerifyMode verify = db.settings.verify;
  std::vector<TargetOutcome> outcomes;

  check_snapshot();
  Result<std::string> check = *check_;
  reader_->close();
  sink_->drain();

  for (auto& w : writers_) {
    TargetOutcome out;
    out.target = w->repo()->target_name();
    out.status = w->finish();
    Manifest& m = out.manifest;
    m.id = id_;
    m.database = db.name;
    m.created_unix_ms = started_ms_;
    m.created = format_iso_utc(started_ms_);
    m.page_size = info.page_size;
    m.page_count = info.page_count;
    m.journal_mode = info.journal_mode;
    m.sqlite_version = sqlite3_libversion();
    m.source_path = db.path;
    m.source_bytes = static_cast<uint64_t>(info.page_size) * info.page_count;
    m.restarts = static_cast<uint32_t>(reader_->restarts());
    m.compression = to_string(db.settings.compression.algorithm);
    m.compression_level = db.settings.compression.level;
    m.verify = to_string(verify);
    m.step_pages = static_cast<uint32_t>(db.settings.step_pages);
    m.host = local_host_name();
    if (out.status.ok()) out.status = w->fill_manifest(info.page_count, &m);
    outcomes.push_back(std::move(out));
  }

  // Rollback mode: nothing pins what was copied, so check the stored image.
  if (verify != VerifyMode::kNone && !info.wal) {
    check = Status::Internal("no target to check the image from");
    for (const TargetOutcome& o : outcomes) {
      if (!o.status.ok()) continue;
      const Repository* repo = nullptr;
      for (auto& w : writers_)
        if (w->repo()->target_name() == o.target) repo = w->repo();
      check = verify_backup(*repo, o.manifest, request_.scratch_dir, verify);
      break;
    }
  }
  const char* check_name = verify == VerifyMode::kQuick ? "quick_check" : "integrity_check";
  for (TargetOutcome& o : outcomes) {
    if (!o.status.ok()) {
      o.status = o.status.WithContext("database '" + db.name + "' on target '" + o.target + "'");
      continue;
    }
    if (!check.ok()) {
      o.status = check.status().WithContext("database '" + db.name + "': " + check_name +
                                            " of the backup image failed; backup not published");
      continue;
    }
    if (*check != "ok" && *check != "skipped") {
      o.status = Status::Corruption("database '" + db.name + "' failed " + check_name + ": " +
                                    *check + "; backup not published");
      continue;
    }
    o.manifest.verification = *check;
    o.manifest.duration_ms = request_.now_ms() - started_ms_;
    o.status = (*std::find_if(writers_.begin(), writers_.end(), [&](auto& w) {
                  return w->repo()->target_name() == o.target;
                }))->repo()->write_manifest(o.manifest);
    if (!o.status.ok()) o.status = o.status.WithContext("database '" + db.name + "'");
  }
  return outcomes;
}

std::vector<TargetOutcome> run_backup(BackupRequest request,
                                      const std::function<void(uint32_t, uint32_t)>& progress,
                                      Status* start_error) {
  auto job = BackupJob::start(std::move(request));
  if (!job.ok()) {
    *start_error = job.status();
    return {};
  }
  *start_error = Status::Ok();
  for (;;) {
    auto outcome = (*job)->step();
    if (!outcome.ok()) {
      *start_error = outcome.status();
      return {};
    }
    if (progress) progress((*job)->pages_done(), (*job)->pages_total());
    if (outcome->state == StepState::kDone) break;
    if (outcome->state == StepState::kRetryLater)
      std::this_thread::sleep_for(std::chrono::milliseconds(outcome->retry_after_ms));
  }
  return (*job)->finish();
}

}  // namespace sqlbak
