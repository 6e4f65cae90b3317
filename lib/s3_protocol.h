// The S3 REST protocol as sqlbak speaks it, without the network: where an
// object's URL is, the canonical query strings, the XML documents sent and
// received, the digests S3 wants in headers, how a large object is cut into
// parts, the lock object's contents, and what a failed request means to a
// user (an ErrorCode and one clear sentence). lib/s3_store.cc does the I/O.
//
// Thread-safety: functions are reentrant; the structs are plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/object_store.h"
#include "lib/s3_retry.h"
#include "lib/status.h"

namespace sqlbak {

// Where a target's objects live.
//
// Path style, ENDPOINT/BUCKET/PREFIX+KEY, for every endpoint that is not AWS
// (MinIO, Ceph RGW, s3rver). On an AWS endpoint (host ending in
// ".amazonaws.com") a bucket whose name is a valid DNS label without dots is
// addressed virtual-host style, https://BUCKET.HOST/PREFIX+KEY, as AWS prefers;
// buckets with dots stay path style (their certificates would not match).
struct S3Address {
  std::string scheme;     // "http" or "https"
  std::string authority;  // "host" or "host:port"
  std::string base_path;  // "" or "/path" of an endpoint behind a path
  std::string bucket;
  std::string prefix;     // "" or ending in "/"
  bool virtual_host = false;

  // "http://127.0.0.1:9000/bucket/prefix/", the address users configured.
  std::string display() const;
};

// Checks and normalises the configured endpoint, bucket and prefix. The
// endpoint is "http[s]://host[:port][/path]" (a trailing "/" is dropped); the
// prefix loses leading slashes and gains a trailing one when not empty.
// kInvalidArgument naming what is wrong.
Result<S3Address> make_s3_address(std::string_view endpoint, std::string_view bucket,
                                  std::string_view prefix);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// RFC 3986 percent-encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~
// (and "/" when KEEP_SLASH) becomes %XX with upper-case hex.
std::string uri_encode(std::string_view text, bool keep_slash);

// The canonical SigV4 query string: names and values encoded, sorted by name
// then value, empty values written "name=". libcurl (7.88) signs the query as
// it finds it in the URL, so URLs are built with this order already.
std::string canonical_query(QueryParams params);

// URL of the object FULL_KEY (the prefix already included), or of the bucket
// itself when FULL_KEY is empty; QUERY appended canonically.
std::string s3_url(const S3Address& address, std::string_view full_key, const QueryParams& query = {});

// --- documents -------------------------------------------------------------------

// One page of a ListObjectsV2 answer. Keys are as S3 sent them (with the prefix).
struct ListPage {
  std::vector<ObjectInfo> objects;
  bool truncated = false;
  std::string next_token;  // NextContinuationToken when truncated
};
// kCorruption when the document is not a ListBucketResult, or is truncated
// without a continuation token.
Result<ListPage> parse_list_objects_v2(std::string_view xml);

// <Delete><Quiet>true</Quiet><Object><Key>...</Key></Object>...</Delete>
std::string delete_objects_xml(const std::vector<std::string>& full_keys);

struct DeleteFailure {
  std::string key, code, message;
};
// The <Error> entries of a DeleteResult (empty: every key was deleted).
Result<std::vector<DeleteFailure>> parse_delete_result(std::string_view xml);

// The UploadId of an InitiateMultipartUploadResult.
Result<std::string> parse_initiate_multipart(std::string_view xml);

// <CompleteMultipartUpload> listing part numbers 1..N with ETAGS[i-1].
std::string complete_multipart_xml(const std::vector<std::string>& etags);

// S3's error document: <Error><Code>..</Code><Message>..</Message></Error>.
// Also found in a "200 OK" answer to CompleteMultipartUpload. Empty fields when
// BODY is not such a document.
struct S3ErrorBody {
  std::string code, message;
  bool empty() const { return code.empty() && message.empty(); }
};
S3ErrorBody parse_error_body(std::string_view body);

// --- digests -----------------------------------------------------------------------

// Base64 of the MD5 of DATA: the Content-MD5 header.
std::string content_md5(std::string_view data);
// Lower-case hex of the MD5 of DATA: the ETag S3 gives a single-part object
// (without SSE-KMS) and each part of a multipart upload.
std::string md5_hex(std::string_view data);
// The digests of an upload's body: its headers and its ETag check need them
// all, computed once per body rather than once per header or attempt.
struct BodyDigests {
  std::string sha256_hex;  // x-amz-content-sha256
  std::string md5_base64;  // Content-MD5
  std::string md5_hex;     // what a plain ETag must equal
};
BodyDigests body_digests(std::string_view body);
// ETAG without its quotes, lower-cased.
std::string normalize_etag(std::string_view etag);

// --- multipart ---------------------------------------------------------------------

struct PartRange {
  uint64_t offset = 0, size = 0;
};
// S3 refuses parts below 5 MiB, except the last.
inline constexpr uint64_t kMinPartSize = 5 * 1024 * 1024;

// Cuts SIZE bytes into parts of about PART_SIZE bytes, all of equal size but
// the last (a few bytes smaller), none below MIN_PART_SIZE: as many parts as
// PART_SIZE asks for, but fewer when they would be too small (then parts are
// larger than PART_SIZE). SIZE below 2 * MIN_PART_SIZE gives one part.
// REQUIRES: part_size > 0, min_part_size > 0.
std::vector<PartRange> plan_parts(uint64_t size, uint64_t part_size, uint64_t min_part_size = kMinPartSize);

// --- locks -------------------------------------------------------------------------

// One holder of lock NAME: the object locks/NAME/<token>.lock (JSON). See
// docs/S3.md ("Locks") for the protocol.
struct LockRecord {
  std::string host;
  int64_t pid = 0;
  std::string token;  // random, unique to one holder; also the object's name
  bool exclusive = true;
  int64_t since_ms = 0;
  int64_t expires_ms = 0;
};
std::string encode_lock_record(const LockRecord& r);
// kCorruption when TEXT is not a lock record.
Result<LockRecord> decode_lock_record(std::string_view text);
// "host db1, pid 4242, since 2026-11-25T16:50:12Z, expires 2026-11-25T17:00:12Z"
// (", shared" appended for a shared holder).
std::string describe_lock_holder(const LockRecord& r);
bool lock_expired(const LockRecord& r, int64_t now_ms);
// Whether a holder in mode WANT_EXCLUSIVE must give way to HOLDER: exclusive
// holders exclude everyone, shared ones only exclusive holders.
bool lock_conflicts(bool want_exclusive, const LockRecord& holder);
// The key of a holder's object, and the folder of lock NAME's holders.
std::string lock_folder(std::string_view name);
std::string lock_object_key(std::string_view name, std::string_view token);

// --- errors ------------------------------------------------------------------------

// Everything known about a request that failed for good.
struct FailedRequest {
  std::string target;  // "target 'offsite' (s3 http://127.0.0.1:9000/bucket/prefix/)"
  std::string method;  // "PUT", "GET", "LIST", ...
  std::string object;  // the key below the prefix; "" for the bucket itself
  std::string bucket;
  std::string endpoint;  // scheme://authority, for "cannot reach"
  int http_status = 0;   // 0: no response
  TransportError transport = TransportError::kNone;
  std::string transport_message;  // libcurl's text
  S3ErrorBody error;
  int attempts = 1;
};

// The Status a user sees: "TARGET: METHOD OBJECT: HTTP 503 after 6 attempts:
// SlowDown: Please reduce your request rate." Codes: 404 NoSuchKey kNotFound;
// NoSuchBucket kInvalidArgument naming the bucket; 403 kPermissionDenied with a
// hint to check the credentials; 416 and BadDigest kCorruption; no response
// kIOError "cannot reach ENDPOINT"; everything else kIOError.
Status s3_failure_status(const FailedRequest& request);

}  // namespace sqlbak
