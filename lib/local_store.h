// LocalObjectStore: an ObjectStore in a local directory.
//
// put() writes ROOT/tmp/<pid>-<random>, fsyncs it, renames it to its key and
// fsyncs the directory, so a crash leaves either the old state or the new
// object, never a partial one. Temporary files of dead processes are removed
// when a lock is next taken.
//
// Locks are flock(2) locks on ROOT/locks/<name>.lock: the kernel drops them
// when the holding process dies, so a crashed backup never blocks the next.
// The lock file records the holder (host, pid, time) for the error message.
//
// counters() counts each call as the request an object store would make:
// put() a PUT, get(), get_range() and exists() a GET, list() a LIST, remove()
// a DELETE (so remove_many() one DELETE per key); bytes are object bodies
// written and read. Locks are flock(2) calls, not requests, and are not counted.
//
// The directory ROOT must exist; the store creates its sub-directories.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "lib/object_store.h"

namespace sqlbak {

class LocalObjectStore : public ObjectStore {
 public:
  // Checks that ROOT is an existing, writable directory. NAME is the target's
  // name, used in messages.
  static Result<std::unique_ptr<LocalObjectStore>> open(const std::string& name,
                                                        const std::string& root,
                                                        bool writable);

  std::string describe() const override;
  Status put(const std::string& key, std::string_view data) override;
  Status get(const std::string& key, std::string* data) const override;
  Status get_range(const std::string& key, uint64_t offset, uint64_t length,
                   std::string* data) const override;
  Result<bool> exists(const std::string& key) const override;
  Result<std::vector<ObjectInfo>> list(const std::string& prefix) const override;
  Status remove(const std::string& key) override;
  Result<std::unique_ptr<StoreLock>> lock(const std::string& name) override;
  Result<std::unique_ptr<StoreLock>> lock_shared(const std::string& name) override;
  TransferCounters counters() const override;

  const std::string& root() const { return root_; }

 private:
  LocalObjectStore(std::string name, std::string root)
      : name_(std::move(name)), root_(std::move(root)) {}
  std::string path_of(const std::string& key) const { return root_ + "/" + key; }
  Status ensure_dir(const std::string& dir) const;
  void remove_stale_temporaries() const;
  // Opens ROOT/locks/NAME.lock and flocks it with OPERATION (LOCK_EX or LOCK_SH).
  Result<int> flock_file(const std::string& name, int operation) const;

  std::string name_;
  std::string root_;
  // Mutable: reads count too. Relaxed atomics: totals, no ordering needed.
  mutable std::atomic<uint64_t> puts_{0}, gets_{0}, lists_{0}, deletes_{0};
  mutable std::atomic<uint64_t> bytes_written_{0}, bytes_read_{0};
};

}  // namespace sqlbak
