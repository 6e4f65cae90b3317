// S3ObjectStore: an ObjectStore in an S3-compatible bucket (AWS S3, MinIO,
// Ceph RGW, s3rver), below a key prefix. The repository format is the local
// target's (docs/FORMAT.md); docs/S3.md describes addressing, credentials,
// retries, locks, multipart uploads and what each request costs.
//
// HTTP and SigV4 signing are libcurl's (CURLOPT_AWS_SIGV4). Every request
// carries x-amz-content-sha256 with its payload's SHA-256; uploads carry
// Content-MD5, so a body damaged on the way is refused by the server, and the
// ETag S3 answers with is compared with the MD5 of what was sent.
//
// put() is atomic by S3's semantics. Objects over options.multipart_threshold
// go up as multipart uploads whose parts are sent in parallel; a failed one is
// aborted. get() resumes a download cut short from where it stopped (a Range
// request pinned to the object's ETag) instead of starting over.
//
// Requests that fail transiently are retried with exponential backoff and full
// jitter (lib/s3_retry.h); then the error names the target, the request, the
// object and the last HTTP status and S3 error code.
//
// Locks (lock() exclusive, lock_shared() shared) are one object per holder,
// locks/NAME/TOKEN.lock (host, pid, mode, expiry; JSON). A contender lists the
// holders, writes its own object, lists again, and backs off (removing its
// object) if a conflicting holder that has not expired is there. Of two
// contenders at least one sees the other, so no compare-and-swap is needed;
// both may back off. The expiry is pushed on by a background thread while the
// lock is held; the object is deleted on release. Holders past their expiry
// (a crashed process, a lost host) are removed, with a warning. See
// docs/S3.md ("Locks").
//
// Secrets are never part of any message.
//
// Thread-safety: safe to use from several threads at once (each request takes
// a libcurl easy handle from a small pool). A StoreLock may outlive its store.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/config.h"
#include "lib/object_store.h"
#include "lib/s3_retry.h"

namespace sqlbak {

struct S3StoreOptions {
  RetryPolicy retry;
  std::chrono::milliseconds connect_timeout{10'000};
  // A transfer that moves less than one byte per second for this long is cut
  // (and retried): a stalled connection, without limiting large objects.
  std::chrono::seconds stall_timeout{60};
  // Larger objects go up in parts. A pack holds 16 MiB of pages and is a little
  // smaller compressed, even of random data: 10 MiB sends every full pack in parts.
  uint64_t multipart_threshold = 10 * 1024 * 1024;
  uint64_t part_size = 6 * 1024 * 1024;  // about; see plan_parts(): a pack is 2-3 parts
  int upload_threads = 4;                           // parts in flight per object
  std::chrono::milliseconds lock_ttl{10 * 60 * 1000};
  // 0: a third of lock_ttl.
  std::chrono::milliseconds lock_refresh{0};
  // Wall-clock time for lock records; the system clock when empty.
  std::function<int64_t()> now_ms;
  // Receives warnings (a lock taken over or lost). When empty they are written
  // to stderr as "PROGRAM: warning: TEXT". Also kept for take_warnings().
  std::function<void(const std::string&)> on_warning;
};

class S3ObjectStore : public ObjectStore {
 public:
  // Reads the credentials from TARGET's files, checks the endpoint, bucket and
  // prefix, and checks that the bucket answers (one ListObjectsV2 of at most one
  // key). WRITABLE needs nothing more: objects are created on first put().
  // Errors name the target: a missing bucket is kInvalidArgument, refused
  // credentials kPermissionDenied, an unreachable endpoint kIOError.
  static Result<std::unique_ptr<S3ObjectStore>> open(const TargetConfig& target, bool writable,
                                                     S3StoreOptions options = {});
  ~S3ObjectStore() override;

  // "s3 target 'NAME' (ENDPOINT/BUCKET/PREFIX)"
  std::string describe() const override;
  Status put(const std::string& key, std::string_view data) override;
  Status get(const std::string& key, std::string* data) const override;
  Status get_range(const std::string& key, uint64_t offset, uint64_t length,
                   std::string* data) const override;
  Result<bool> exists(const std::string& key) const override;
  Result<std::vector<ObjectInfo>> list(const std::string& prefix) const override;
  Status remove(const std::string& key) override;
  // DeleteObjects, up to 1000 keys per request; every per-key error is reported.
  Status remove_many(const std::vector<std::string>& keys) override;
  Result<std::unique_ptr<StoreLock>> lock(const std::string& name) override;
  Result<std::unique_ptr<StoreLock>> lock_shared(const std::string& name) override;
  TransferCounters counters() const override;
  int parallel_reads() const override { return 4; }

  // Warnings gathered so far (and cleared).
  std::vector<std::string> take_warnings();

  class Client;  // the shared state: address, credentials, handles, counters

 private:
  explicit S3ObjectStore(std::shared_ptr<Client> client) : client_(std::move(client)) {}
  Status put_single(const std::string& key, std::string_view data);
  Status put_multipart(const std::string& key, std::string_view data);

  std::shared_ptr<Client> client_;
};

}  // namespace sqlbak
