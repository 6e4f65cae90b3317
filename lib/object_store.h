// ObjectStore: where a repository keeps its immutable objects. The local
// directory target implements it (local_store.h); the S3 target will be a
// second implementation. Nothing above this interface knows which one it uses.
//
// Keys are relative slash-separated names made of [A-Za-z0-9._/-] with no
// "." or ".." segments ("packs/ab/abcd...", "manifests/shop/2026...json").
// Objects are immutable: put() of an existing key replaces it atomically, but
// the repository never does that except for identical content.
//
// Thread-safety: implementations are safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/status.h"

namespace sqlbak {

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
};

// Requests a store has made and bytes it has moved since it was opened (S3
// bills per request). Every attempt counts, retries included. A store that
// does not count returns zeros.
struct TransferCounters {
  uint64_t put_requests = 0;     // PUT and POST (uploads, multipart steps)
  uint64_t get_requests = 0;     // GET and HEAD
  uint64_t list_requests = 0;
  uint64_t delete_requests = 0;  // DELETE and batch deletes
  uint64_t bytes_uploaded = 0;   // request bodies sent
  uint64_t bytes_downloaded = 0; // response bodies received
};

// Held while one process writes one database's backups to a target. Released
// by the destructor; an implementation must also release it when its holder
// dies (local: flock; S3: an expiry).
class StoreLock {
 public:
  virtual ~StoreLock() = default;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // A human name for messages: "local target 'local' (/var/backups/sqlbak)".
  virtual std::string describe() const = 0;

  // Stores DATA under KEY atomically: readers see all of it or nothing, and it
  // is durable when put() returns OK.
  virtual Status put(const std::string& key, std::string_view data) = 0;

  // Reads a whole object. kNotFound when absent.
  virtual Status get(const std::string& key, std::string* data) const = 0;

  // Reads LENGTH bytes at OFFSET; kCorruption when the object is shorter.
  virtual Status get_range(const std::string& key, uint64_t offset, uint64_t length,
                           std::string* data) const = 0;

  virtual Result<bool> exists(const std::string& key) const = 0;

  // Every object whose key starts with PREFIX, in no particular order.
  virtual Result<std::vector<ObjectInfo>> list(const std::string& prefix) const = 0;

  // Removes KEY; removing an absent key is OK.
  virtual Status remove(const std::string& key) = 0;

  // Removes every key of KEYS (absent ones are OK). The default removes them one
  // by one and stops at the first error; S3 sends batches of up to 1000 keys.
  virtual Status remove_many(const std::vector<std::string>& keys) {
    for (const std::string& key : keys) SQLBAK_RETURN_IF_ERROR(remove(key));
    return Status::Ok();
  }

  // What this store has done so far; see TransferCounters.
  virtual TransferCounters counters() const { return {}; }

  // How many objects a reader (restore, verify) should fetch at once. Local
  // reads are bound by the two cores that decompress; a remote store's by the
  // round trips, which more requests in flight hide.
  virtual int parallel_reads() const { return 2; }

  // Takes the exclusive lock NAME without waiting. kLocked naming the holder
  // (host, pid, since) when another process has it.
  virtual Result<std::unique_ptr<StoreLock>> lock(const std::string& name) = 0;

  // Takes lock NAME in shared mode without waiting: any number of shared
  // holders, but none while someone holds it through lock(). Backups hold the
  // repository lock shared; prune holds it exclusively. kLocked naming the
  // exclusive holder otherwise.
  // Every implementation must override it; the default only names what is missing.
  virtual Result<std::unique_ptr<StoreLock>> lock_shared(const std::string& name) {
    return Status::Unsupported(describe() + ": shared lock '" + name +
                               "' not implemented (ObjectStore::lock_shared)");
  }
};

// True when KEY is a well-formed object key (see above).
bool is_valid_object_key(std::string_view key);

}  // namespace sqlbak
