#include "lib/s3_store.h"

#include "lib/host_name.h"

#include <curl/curl.h>
#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "lib/s3_protocol.h"
#include "lib/sha256.h"
#include "lib/timefmt.h"

namespace sqlbak {

namespace {

// SHA-256 of the empty payload, for requests without a body.
constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr size_t kDeleteBatch = 1000;  // S3's limit per DeleteObjects request
constexpr size_t kIdlePoolHandles = 16;

enum class Op { kPut, kGet, kList, kDelete };

struct HttpRequest {
  const char* method = "GET";  // GET HEAD PUT POST DELETE
  Op op = Op::kGet;
  std::string url;
  std::vector<std::string> headers;
  std::string_view body;  // PUT and POST
  // The body's digests when the caller has them (uploads of packs): else they
  // are computed for the request.
  const BodyDigests* digests = nullptr;
};

struct HttpResponse {
  long status = 0;
  TransportError transport = TransportError::kNone;
  std::string transport_message;
  std::string body;
  std::string etag;
  std::string content_range;
};

// What a caller makes of a complete 2xx response: done (ok or a final error),
// or a transient problem (a body that does not match what was sent) to retry.
struct Verdict {
  Status status;
  bool retry = false;
  static Verdict Done(Status s = Status::Ok()) { return {std::move(s), false}; }
  static Verdict Retry(std::string why) { return {Status::Corruption(std::move(why)), true}; }
};

TransportError classify_curl(CURLcode rc) {
  switch (rc) {
    case CURLE_OK: return TransportError::kNone;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return TransportError::kResolve;
    case CURLE_COULDNT_CONNECT: return TransportError::kConnect;
    case CURLE_OPERATION_TIMEDOUT: return TransportError::kTimeout;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return TransportError::kConnection;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE: return TransportError::kTls;
    default: return TransportError::kOther;
  }
}

std::string random_token() {
  std::random_device rd;
  std::string s;
  static const char* kHex = "0123456789abcdef";
  for (int i = 0; i < 4; ++i) {
    uint32_t v = rd();
    for (int j = 0; j < 8; ++j, v >>= 4) s.push_back(kHex[v & 15]);
  }
  return s;
}

double random_unit() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// Reads a credentials file: its first line, without surrounding whitespace.
Result<std::string> read_secret(const std::string& target, const char* key, const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::FromErrno(errno, "target '" + target + "': cannot read " + key + " " + path);
  std::string line;
  std::getline(in, line);
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!line.empty() && space(line.back())) line.pop_back();
  size_t start = 0;
  while (start < line.size() && space(line[start])) ++start;
  line.erase(0, start);
  if (line.empty()) return Status::InvalidArgument("target '" + target + "': " + key + " " + path + " is empty");
  return line;
}

void default_warning(const std::string& text) {
  std::cerr << program_invocation_short_name << ": warning: " << text << "\n";
}

size_t write_body(char* ptr, size_t size, size_t nmemb, void* userdata) {
  static_cast<std::string*>(userdata)->append(ptr, size * nmemb);
  return size * nmemb;
}

struct HeaderSink {
  HttpResponse* response;
  bool body_expected;  // a GET: its Content-Length is the size of what follows
};

size_t read_header(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* sink = static_cast<HeaderSink*>(userdata);
  std::string_view line(buffer, size * nitems);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.substr(0, 5) == "HTTP/") {  // a new response (after a 100 Continue)
    sink->response->etag.clear();
    sink->response->content_range.clear();
    return size * nitems;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * nitems;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (name == "etag") sink->response->etag = normalize_etag(value);
  if (name == "content-range") sink->response->content_range = std::string(value);
  if (name == "content-length" && sink->body_expected) {
    // A pack arrives in one piece: room for it up front, rather than doubling
    // the buffer (and briefly holding twice the pack) as it comes. Bounded, as
    // the header is the server's word.
    constexpr uint64_t kMaxReserve = 64ull << 20;
    uint64_t length = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (ec == std::errc() && end == value.data() + value.size())
      sink->response->body.reserve(static_cast<size_t>(std::min(length, kMaxReserve)));
  }
  return size * nitems;
}

struct UploadSource {
  std::string_view data;
  size_t pos = 0;
};

size_t read_upload(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* src = static_cast<UploadSource*>(userdata);
  size_t n = std::min(size * nitems, src->data.size() - src->pos);
  std::memcpy(buffer, src->data.data() + src->pos, n);
  src->pos += n;
  return n;
}

int seek_upload(void* userdata, curl_off_t offset, int origin) {
  auto* src = static_cast<UploadSource*>(userdata);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > src->data.size())
    return CURL_SEEKFUNC_CANTSEEK;
  src->pos = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

std::once_flag curl_init_once;

}  // namespace

// ------------------------------------------------------------------------------------
// The shared state of a store and its locks.

class S3ObjectStore::Client {
 public:
  Client(std::string name, S3Address address, std::string region, std::string key_id,
         std::string secret, const TargetConfig& target, S3StoreOptions options)
      : name_(std::move(name)),
        address_(std::move(address)),
        sigv4_("aws:amz:" + region + ":s3"),
        key_id_(std::move(key_id)),
        secret_(std::move(secret)),
        storage_class_(target.storage_class),
        sse_(target.sse),
        sse_kms_key_id_(target.sse_kms_key_id),
        options_(std::move(options)) {
    if (options_.lock_refresh.count() <= 0) options_.lock_refresh = options_.lock_ttl / 3;
    if (!options_.now_ms)
      options_.now_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
      };
    if (options_.upload_threads < 1) options_.upload_threads = 1;
  }

  ~Client() {
    for (CURL* h : idle_) curl_easy_cleanup(h);
  }

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const S3StoreOptions& options() const { return options_; }
  const S3Address& address() const { return address_; }

  std::string describe() const { return "s3 target '" + name_ + "' (" + address_.display() + ")"; }
  std::string context() const { return "target '" + name_ + "' (s3 " + address_.display() + ")"; }
  std::string endpoint() const { return address_.scheme + "://" + address_.authority; }

  std::string url(const std::string& key, const QueryParams& query = {}) const {
    return s3_url(address_, key.empty() ? std::string() : address_.prefix + key, query);
  }
  std::string bucket_url(const QueryParams& query) const { return s3_url(address_, "", query); }

  // Headers of a request creating an object: storage class and encryption.
  void add_object_headers(std::vector<std::string>* headers) const {
    if (!storage_class_.empty()) headers->push_back("x-amz-storage-class: " + storage_class_);
    if (!sse_.empty()) headers->push_back("x-amz-server-side-encryption: " + sse_);
    if (!sse_kms_key_id_.empty())
      headers->push_back("x-amz-server-side-encryption-aws-kms-key-id: " + sse_kms_key_id_);
  }
  // With SSE-KMS the ETag is not the MD5 of the object.
  bool etag_is_md5() const { return sse_ != "aws:kms"; }

  // One HTTP exchange, no retries.
  HttpResponse perform(const HttpRequest& req) {
    CURL* h = acquire();
    HttpResponse resp;
    HeaderSink header_sink{&resp, std::string_view(req.method) == "GET"};
    UploadSource upload{req.body, 0};
    char errbuf[CURL_ERROR_SIZE] = {0};

    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_timeout.count()));
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4_.c_str());
    curl_easy_setopt(h, CURLOPT_USERNAME, key_id_.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, secret_.c_str());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp.body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, read_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &header_sink);

    std::vector<std::string> headers = req.headers;
    const std::string method = req.method;
    const bool has_body = method == "PUT" || method == "POST";
    if (has_body) {
      const BodyDigests computed = req.digests != nullptr ? BodyDigests{} : body_digests(req.body);
      const BodyDigests& d = req.digests != nullptr ? *req.digests : computed;
      headers.push_back("x-amz-content-sha256: " + d.sha256_hex);
      headers.push_back("Content-MD5: " + d.md5_base64);
      // libcurl sends "Expect: 100-continue" before bodies over 1 MiB; an empty
      // "Expect:" would turn that off, but libcurl 7.88 signs the header it does
      // not send, which AWS refuses. One round trip per large body is cheap.
    } else {
      headers.push_back(std::string("x-amz-content-sha256: ") + kEmptySha256);
    }
    if (method == "PUT") {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, read_upload);
      curl_easy_setopt(h, CURLOPT_READDATA, &upload);
      curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_upload);
      curl_easy_setopt(h, CURLOPT_SEEKDATA, &upload);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    } else if (method == "POST") {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      // Never a null pointer: with one, libcurl would read the body from stdin.
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.empty() ? "" : req.body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    } else if (method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (method == "DELETE") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    curl_slist* list = nullptr;
    for (const std::string& hd : headers) list = curl_slist_append(list, hd.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);

    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
    resp.transport = classify_curl(rc);
    if (rc != CURLE_OK) {
      resp.transport_message = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
      long os_errno = 0;
      if (curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK && os_errno != 0)
        resp.transport_message += std::string(" (") + std::strerror(static_cast<int>(os_errno)) + ")";
    }
    curl_off_t sent = 0;
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &sent);
    curl_slist_free_all(list);
    release(h);

    switch (req.op) {
      case Op::kPut: put_requests_++; break;
      case Op::kGet: get_requests_++; break;
      case Op::kList: list_requests_++; break;
      case Op::kDelete: delete_requests_++; break;
    }
    bytes_uploaded_ += static_cast<uint64_t>(std::max<curl_off_t>(sent, 0));
    bytes_downloaded_ += resp.body.size();
    return resp;
  }

  // Runs a request until it succeeds, fails for good, or the retry budget is
  // spent. BUILD fills in each attempt (it may depend on earlier ones: a resumed
  // download); ON_SUCCESS judges a complete 2xx answer; ON_PARTIAL sees a 2xx
  // answer cut short (to keep what arrived). Errors become s3_failure_status().
  Status execute(const char* label, const std::string& object, const std::function<void(HttpRequest&)>& build,
                 const std::function<Verdict(HttpResponse&)>& on_success,
                 const std::function<void(HttpResponse&)>& on_partial = nullptr,
                 const std::function<bool(const HttpResponse&)>& accept_failure = nullptr) {
    RetrySchedule schedule(options_.retry, random_unit);
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      HttpRequest req;
      build(req);
      HttpResponse resp = perform(req);
      bool success_status = resp.status >= 200 && resp.status < 300;
      std::string retry_reason;
      S3ErrorBody err;
      if (success_status && resp.transport == TransportError::kNone) {
        Verdict v = on_success(resp);
        if (!v.retry) return v.status;
        retry_reason = v.status.message();
      } else if (accept_failure && resp.transport == TransportError::kNone && accept_failure(resp)) {
        return Status::Ok();
      } else {
        if (success_status && on_partial) on_partial(resp);
        if (!success_status) err = parse_error_body(resp.body);
        if (!is_transient_failure(static_cast<int>(resp.status), resp.transport, err.code))
          return failure(label, object, resp, err, schedule.attempts() + 1);
      }
      auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
      auto delay = schedule.after_failure(elapsed);
      if (!delay) {
        if (!retry_reason.empty())
          return Status::Corruption(context() + ": " + label + " " + object + ": " + retry_reason + " after " +
                                    std::to_string(schedule.attempts()) + " attempts");
        return failure(label, object, resp, err, schedule.attempts());
      }
      std::this_thread::sleep_for(*delay);
    }
  }

  Status failure(const char* label, const std::string& object, const HttpResponse& resp, const S3ErrorBody& err,
                 int attempts) const {
    FailedRequest f;
    f.target = context();
    f.method = label;
    f.object = object;
    f.bucket = address_.bucket;
    f.endpoint = endpoint();
    f.http_status = static_cast<int>(resp.status);
    f.transport = resp.transport;
    f.transport_message = resp.transport_message;
    f.error = err;
    f.attempts = attempts;
    return s3_failure_status(f);
  }

  void warn(const std::string& text) {
    {
      std::lock_guard<std::mutex> g(mu_);
      warnings_.push_back(text);
    }
    if (options_.on_warning)
      options_.on_warning(text);
    else
      default_warning(text);
  }

  std::vector<std::string> take_warnings() {
    std::lock_guard<std::mutex> g(mu_);
    return std::exchange(warnings_, {});
  }

  TransferCounters counters() const {
    return {put_requests_.load(), get_requests_.load(),   list_requests_.load(),
            delete_requests_.load(), bytes_uploaded_.load(), bytes_downloaded_.load()};
  }

  int64_t now_ms() const { return options_.now_ms(); }

  // Every object below PREFIX (relative to the target's prefix), all pages.
  Result<std::vector<ObjectInfo>> list_objects(const std::string& prefix) {
    const std::string& root = address_.prefix;
    std::vector<ObjectInfo> out;
    std::string token;
    do {
      QueryParams q{{"list-type", "2"}, {"prefix", root + prefix}};
      if (!token.empty()) q.push_back({"continuation-token", token});
      std::string next;
      Status st = execute(
          "LIST", prefix.empty() ? "(all objects)" : prefix + "*",
          [&](HttpRequest& r) {
            r.op = Op::kList;
            r.url = bucket_url(q);
          },
          [&](HttpResponse& resp) {
            auto page = parse_list_objects_v2(resp.body);
            if (!page.ok()) return Verdict::Done(page.status().WithContext(context() + ": LIST " + prefix));
            for (ObjectInfo& o : page->objects) {
              if (o.key.compare(0, root.size(), root) != 0) continue;
              o.key.erase(0, root.size());
              out.push_back(std::move(o));
            }
            next = page->truncated ? page->next_token : "";
            return Verdict::Done();
          });
      if (!st.ok()) return st;
      if (!next.empty() && next == token)
        return Status::IOError(context() + ": LIST " + prefix + ": the server repeats its continuation token");
      token = next;
    } while (!token.empty());
    return out;
  }

 private:
  CURL* acquire() {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    CURL* h = curl_easy_init();
    if (h == nullptr) std::abort();  // only when out of memory
    return h;
  }
  void release(CURL* h) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (idle_.size() < kIdlePoolHandles) {
        idle_.push_back(h);
        return;
      }
    }
    curl_easy_cleanup(h);
  }

  const std::string name_;
  const S3Address address_;
  const std::string sigv4_;
  const std::string key_id_;
  const std::string secret_;
  const std::string storage_class_, sse_, sse_kms_key_id_;
  S3StoreOptions options_;

  std::mutex mu_;
  std::vector<CURL*> idle_;             // GUARDED_BY(mu_)
  std::vector<std::string> warnings_;   // GUARDED_BY(mu_)
  std::atomic<uint64_t> put_requests_{0}, get_requests_{0}, list_requests_{0}, delete_requests_{0};
  std::atomic<uint64_t> bytes_uploaded_{0}, bytes_downloaded_{0};
};

// ------------------------------------------------------------------------------------

Result<std::unique_ptr<S3ObjectStore>> S3ObjectStore::open(const TargetConfig& target, bool /*writable*/,
                                                           S3StoreOptions options) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  auto address = make_s3_address(target.endpoint, target.bucket, target.prefix);
  if (!address.ok()) return address.status().WithContext("target '" + target.name + "'");
  if (target.region.empty()) return Status::InvalidArgument("target '" + target.name + "' has no region");
  auto key_id = read_secret(target.name, "access_key_id_file", target.access_key_id_file);
  if (!key_id.ok()) return key_id.status();
  auto secret = read_secret(target.name, "secret_access_key_file", target.secret_access_key_file);
  if (!secret.ok()) return secret.status();

  auto client = std::make_shared<Client>(target.name, std::move(address).value(), target.region,
                                         std::move(key_id).value(), std::move(secret).value(), target,
                                         std::move(options));
  // One cheap request: is the bucket there, and do the credentials work?
  QueryParams q{{"list-type", "2"}, {"max-keys", "1"}, {"prefix", client->address().prefix}};
  Status st = client->execute(
      "LIST", "", [&](HttpRequest& r) { r.op = Op::kList; r.url = client->bucket_url(q); },
      [](HttpResponse& resp) {
        auto page = parse_list_objects_v2(resp.body);
        return Verdict::Done(page.ok() ? Status::Ok() : page.status());
      });
  if (!st.ok()) return st;
  return std::unique_ptr<S3ObjectStore>(new S3ObjectStore(std::move(client)));
}

S3ObjectStore::~S3ObjectStore() = default;

std::string S3ObjectStore::describe() const { return client_->describe(); }

TransferCounters S3ObjectStore::counters() const { return client_->counters(); }

std::vector<std::string> S3ObjectStore::take_warnings() { return client_->take_warnings(); }

Status S3ObjectStore::put(const std::string& key, std::string_view data) {
  if (!is_valid_object_key(key)) return Status::Internal("invalid object key '" + key + "'");
  if (data.size() > client_->options().multipart_threshold) return put_multipart(key, data);
  return put_single(key, data);
}

Status S3ObjectStore::put_single(const std::string& key, std::string_view data) {
  const BodyDigests digests = body_digests(data);
  const std::string& md5 = digests.md5_hex;
  return client_->execute(
      "PUT", key,
      [&](HttpRequest& r) {
        r.method = "PUT";
        r.op = Op::kPut;
        r.url = client_->url(key);
        r.body = data;
        r.digests = &digests;
        r.headers.push_back("Content-Type: application/octet-stream");
        client_->add_object_headers(&r.headers);
      },
      [&](HttpResponse& resp) {
        // An ETag of 32 hex digits is the MD5 of what the server stored.
        if (client_->etag_is_md5() && resp.etag.size() == 32 && resp.etag != md5)
          return Verdict::Retry("the server stored something else (ETag " + resp.etag + ", MD5 sent " + md5 + ")");
        return Verdict::Done();
      });
}

Status S3ObjectStore::put_multipart(const std::string& key, std::string_view data) {
  Client& c = *client_;
  std::string upload_id;
  Status st = c.execute(
      "POST", key + " (start multipart upload)",
      [&](HttpRequest& r) {
        r.method = "POST";
        r.op = Op::kPut;
        r.url = c.url(key, {{"uploads", ""}});
        r.headers.push_back("Content-Type: application/octet-stream");
        c.add_object_headers(&r.headers);
      },
      [&](HttpResponse& resp) {
        auto id = parse_initiate_multipart(resp.body);
        if (!id.ok()) return Verdict::Done(id.status().WithContext(c.context() + ": POST " + key));
        upload_id = std::move(id).value();
        return Verdict::Done();
      });
  if (!st.ok()) return st;

  const std::vector<PartRange> parts = plan_parts(data.size(), c.options().part_size);
  std::vector<std::string> etags(parts.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mu;
  Status first_error;

  auto worker = [&] {
    for (;;) {
      size_t i = next++;
      if (i >= parts.size() || failed.load()) return;
      std::string_view body = data.substr(parts[i].offset, parts[i].size);
      const BodyDigests digests = body_digests(body);
      const std::string& md5 = digests.md5_hex;
      const std::string part_no = std::to_string(i + 1);
      Status pst = c.execute(
          "PUT", key + " (part " + part_no + " of " + std::to_string(parts.size()) + ")",
          [&](HttpRequest& r) {
            r.method = "PUT";
            r.op = Op::kPut;
            r.url = c.url(key, {{"partNumber", part_no}, {"uploadId", upload_id}});
            r.body = body;
            r.digests = &digests;
          },
          [&](HttpResponse& resp) {
            if (resp.etag.size() == 32 && resp.etag != md5)
              return Verdict::Retry("the server stored something else (ETag " + resp.etag + ", MD5 sent " + md5 + ")");
            etags[i] = resp.etag.empty() ? md5 : resp.etag;
            return Verdict::Done();
          });
      if (!pst.ok()) {
        std::lock_guard<std::mutex> g(error_mu);
        if (!failed.exchange(true)) first_error = pst;
        return;
      }
    }
  };
  const size_t nthreads = std::min<size_t>(static_cast<size_t>(c.options().upload_threads), parts.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < nthreads; ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();

  if (!failed.load()) {
    const std::string xml = complete_multipart_xml(etags);
    st = c.execute(
        "POST", key + " (complete multipart upload)",
        [&](HttpRequest& r) {
          r.method = "POST";
          r.op = Op::kPut;
          r.url = c.url(key, {{"uploadId", upload_id}});
          r.body = xml;
          r.headers.push_back("Content-Type: application/xml");
        },
        [&](HttpResponse& resp) {
          // S3 may answer 200 and still fail: the error is in the body.
          S3ErrorBody err = parse_error_body(resp.body);
          if (err.empty()) return Verdict::Done();
          std::string why = "HTTP 200 with error " + err.code + ": " + err.message;
          if (err.code == "InternalError" || err.code == "SlowDown" || err.code == "ServiceUnavailable")
            return Verdict::Retry(why);
          return Verdict::Done(Status::IOError(c.context() + ": POST " + key + ": " + why));
        });
    if (st.ok()) return st;
    first_error = st;
  }

  // Parts of an unfinished upload are billed until it is aborted.
  Status abort = c.execute(
      "DELETE", key + " (abort multipart upload)",
      [&](HttpRequest& r) {
        r.method = "DELETE";
        r.op = Op::kDelete;
        r.url = c.url(key, {{"uploadId", upload_id}});
      },
      [](HttpResponse&) { return Verdict::Done(); },
      nullptr, [](const HttpResponse& resp) { return resp.status == 404; });  // already gone
  if (!abort.ok())
    return Status(first_error.code(), first_error.message() + "; aborting multipart upload " + upload_id +
                                          " failed too (" + abort.message() + ")");
  return first_error;
}

Status S3ObjectStore::get(const std::string& key, std::string* data) const {
  if (!is_valid_object_key(key)) return Status::InvalidArgument("invalid object key '" + key + "'");
  Client& c = *client_;
  std::string out;
  std::string etag;
  Status corrupt;
  // Appends what a (possibly resumed, possibly cut) answer brought.
  auto take = [&](HttpResponse& resp) {
    if (resp.status == 200) {  // the whole object from its start
      out = std::move(resp.body);
      etag = resp.etag;
    } else if (resp.status == 206) {
      uint64_t start = 0;
      if (std::sscanf(resp.content_range.c_str(), "bytes %" SCNu64 "-", &start) != 1 || start != out.size()) {
        corrupt = Status::Corruption(c.context() + ": GET " + key + ": resumed at the wrong offset (" +
                                     resp.content_range + ")");
        return;
      }
      out += resp.body;
    }
  };
  Status st = c.execute(
      "GET", key,
      [&](HttpRequest& r) {
        r.op = Op::kGet;
        r.url = c.url(key);
        if (!out.empty()) {  // resume after a cut: the rest of the same object
          r.headers.push_back("Range: bytes=" + std::to_string(out.size()) + "-");
          if (!etag.empty()) r.headers.push_back("If-Match: \"" + etag + "\"");
        }
      },
      [&](HttpResponse& resp) {
        take(resp);
        return Verdict::Done(corrupt);
      },
      [&](HttpResponse& resp) { take(resp); });
  if (!st.ok()) return st;
  *data = std::move(out);
  return Status::Ok();
}

Status S3ObjectStore::get_range(const std::string& key, uint64_t offset, uint64_t length,
                                std::string* data) const {
  if (!is_valid_object_key(key)) return Status::InvalidArgument("invalid object key '" + key + "'");
  if (length == 0) {
    data->clear();
    return Status::Ok();
  }
  Client& c = *client_;
  const std::string what = key + " (bytes " + std::to_string(offset) + "-" + std::to_string(offset + length - 1) + ")";
  return c.execute(
      "GET", what,
      [&](HttpRequest& r) {
        r.op = Op::kGet;
        r.url = c.url(key);
        r.headers.push_back("Range: bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1));
      },
      [&](HttpResponse& resp) {
        std::string& body = resp.body;
        if (resp.status == 200) {  // the server ignored the range
          if (body.size() >= offset) body = body.substr(offset, length);
          else body.clear();
        }
        if (body.size() != length)
          return Verdict::Done(Status::Corruption(c.context() + ": GET " + what + ": object " + key +
                                                  " is shorter than expected"));
        *data = std::move(body);
        return Verdict::Done();
      });
}

Result<bool> S3ObjectStore::exists(const std::string& key) const {
  if (!is_valid_object_key(key)) return Status::InvalidArgument("invalid object key '" + key + "'");
  Client& c = *client_;
  bool found = true;
  Status st = c.execute(
      "HEAD", key,
      [&](HttpRequest& r) {
        r.method = "HEAD";
        r.op = Op::kGet;
        r.url = c.url(key);
      },
      [](HttpResponse&) { return Verdict::Done(); }, nullptr,
      [&](const HttpResponse& resp) {
        if (resp.status != 404) return false;
        found = false;
        return true;
      });
  if (!st.ok()) return st;
  return found;
}

Result<std::vector<ObjectInfo>> S3ObjectStore::list(const std::string& prefix) const {
  auto all = client_->list_objects(prefix);
  if (!all.ok()) return all;
  // As on a local target, lock objects are bookkeeping, not repository objects.
  if (prefix.rfind("locks/", 0) != 0)
    std::erase_if(*all, [](const ObjectInfo& o) { return o.key.rfind("locks/", 0) == 0; });
  return all;
}

Status S3ObjectStore::remove(const std::string& key) {
  if (!is_valid_object_key(key)) return Status::InvalidArgument("invalid object key '" + key + "'");
  Client& c = *client_;
  return c.execute(
      "DELETE", key,
      [&](HttpRequest& r) {
        r.method = "DELETE";
        r.op = Op::kDelete;
        r.url = c.url(key);
      },
      [](HttpResponse&) { return Verdict::Done(); }, nullptr,
      [](const HttpResponse& resp) { return resp.status == 404 && parse_error_body(resp.body).code != "NoSuchBucket"; });
}

Status S3ObjectStore::remove_many(const std::vector<std::string>& keys) {
  Client& c = *client_;
  for (const std::string& k : keys)
    if (!is_valid_object_key(k)) return Status::InvalidArgument("invalid object key '" + k + "'");
  std::vector<std::string> failures;
  size_t failed = 0;
  for (size_t first = 0; first < keys.size(); first += kDeleteBatch) {
    std::vector<std::string> batch;
    for (size_t i = first; i < std::min(keys.size(), first + kDeleteBatch); ++i)
      batch.push_back(c.address().prefix + keys[i]);
    // Keys S3 could not delete for a passing reason go again, within the budget.
    RetrySchedule schedule(c.options().retry, random_unit);
    const auto start = std::chrono::steady_clock::now();
    while (!batch.empty()) {
      const std::string xml = delete_objects_xml(batch);
      std::vector<DeleteFailure> errors;
      Status st = c.execute(
          "DELETE", std::to_string(batch.size()) + " objects",
          [&](HttpRequest& r) {
            r.method = "POST";
            r.op = Op::kDelete;
            r.url = c.bucket_url({{"delete", ""}});
            r.body = xml;
            r.headers.push_back("Content-Type: application/xml");
          },
          [&](HttpResponse& resp) {
            auto result = parse_delete_result(resp.body);
            if (!result.ok()) return Verdict::Done(result.status().WithContext(c.context() + ": DeleteObjects"));
            errors = std::move(result).value();
            return Verdict::Done();
          });
      if (!st.ok()) return st;
      std::vector<std::string> again;
      for (DeleteFailure& e : errors) {
        if (e.code == "InternalError" || e.code == "SlowDown" || e.code == "ServiceUnavailable") {
          again.push_back(e.key);
          continue;
        }
        std::string key = e.key.compare(0, c.address().prefix.size(), c.address().prefix) == 0
                              ? e.key.substr(c.address().prefix.size())
                              : e.key;
        ++failed;
        if (failures.size() < 5) failures.push_back(key + ": " + e.code + (e.message.empty() ? "" : ": " + e.message));
      }
      batch = std::move(again);
      if (batch.empty()) break;
      auto elapsed =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
      auto delay = schedule.after_failure(elapsed);
      if (!delay) {
        failed += batch.size();
        for (const std::string& k : batch)
          if (failures.size() < 5) failures.push_back(k.substr(c.address().prefix.size()) + ": still failing");
        break;
      }
      std::this_thread::sleep_for(*delay);
    }
  }
  if (failed == 0) return Status::Ok();
  std::string msg = c.context() + ": could not delete " + std::to_string(failed) + " of " +
                    std::to_string(keys.size()) + " objects: ";
  for (size_t i = 0; i < failures.size(); ++i) msg += (i ? "; " : "") + failures[i];
  if (failed > failures.size()) msg += "; ...";
  return Status::IOError(msg);
}

// ------------------------------------------------------------------------------------
// Locks: one object per holder, locks/NAME/TOKEN.lock. A contender writes its
// own object, then lists the others; see docs/S3.md ("Locks").

namespace {

struct Holder {
  std::string key;
  LockRecord record;
};

Status get_object(S3ObjectStore::Client& c, const std::string& key, std::string* body) {
  return c.execute(
      "GET", key,
      [&](HttpRequest& r) {
        r.op = Op::kGet;
        r.url = c.url(key);
      },
      [&](HttpResponse& resp) {
        *body = std::move(resp.body);
        return Verdict::Done();
      });
}

Status put_record(S3ObjectStore::Client& c, const std::string& key, const LockRecord& rec) {
  const std::string body = encode_lock_record(rec);
  return c.execute(
      "PUT", key,
      [&](HttpRequest& r) {
        r.method = "PUT";
        r.op = Op::kPut;
        r.url = c.url(key);
        r.body = body;
        r.headers.push_back("Content-Type: application/json");
      },
      [](HttpResponse&) { return Verdict::Done(); });
}

Status delete_object(S3ObjectStore::Client& c, const std::string& key) {
  return c.execute(
      "DELETE", key,
      [&](HttpRequest& r) {
        r.method = "DELETE";
        r.op = Op::kDelete;
        r.url = c.url(key);
      },
      [](HttpResponse&) { return Verdict::Done(); }, nullptr,
      [](const HttpResponse& resp) { return resp.status == 404; });
}

// Every holder of lock NAME but the one whose object is MINE. An object that
// vanished between the listing and its GET is left out; one that is not a lock
// record counts as an expired exclusive holder (removed when the lock is next
// taken).
Result<std::vector<Holder>> read_holders(S3ObjectStore::Client& c, const std::string& name,
                                         const std::string& mine = "") {
  auto objects = c.list_objects(lock_folder(name));
  if (!objects.ok()) return objects.status();
  std::vector<Holder> out;
  for (const ObjectInfo& o : *objects) {
    if (o.key == mine) continue;
    std::string body;
    Status st = get_object(c, o.key, &body);
    if (st.code() == ErrorCode::kNotFound) continue;
    if (!st.ok()) return st;
    auto rec = decode_lock_record(body);
    Holder h{o.key, {}};
    if (rec.ok()) {
      h.record = std::move(rec).value();
    } else {
      h.record.host = "unknown (" + o.key + " is not a lock record)";
      h.record.token = o.key;
    }
    out.push_back(std::move(h));
  }
  return out;
}

class S3Lock : public StoreLock {
 public:
  S3Lock(std::shared_ptr<S3ObjectStore::Client> client, std::string key, std::string what, LockRecord record)
      : client_(std::move(client)), key_(std::move(key)), what_(std::move(what)), record_(std::move(record)) {
    refresher_ = std::thread([this] { refresh_loop(); });
  }

  ~S3Lock() override {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    refresher_.join();
    if (lost_) return;
    // The object is ours alone (its name is our token): deleting it cannot
    // release anybody else's lock.
    Status st = delete_object(*client_, key_);
    if (!st.ok()) client_->warn("could not release the lock " + what_ + " (it expires by itself): " + st.message());
  }

 private:
  void refresh_loop() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stop_) {
      if (cv_.wait_for(lk, client_->options().lock_refresh, [&] { return stop_; })) return;
      lk.unlock();
      bool keep = refresh_once();
      lk.lock();
      if (!keep) return;
    }
  }

  // Pushes the expiry on; false when the lock is no longer ours.
  bool refresh_once() {
    S3ObjectStore::Client& c = *client_;
    std::string body;
    Status st = get_object(c, key_, &body);
    if (st.code() == ErrorCode::kNotFound) {
      // Removed by another process that found it expired (this one was
      // suspended, or could not refresh for a whole lock_ttl).
      lost_ = true;
      c.warn("lost the lock " + what_ + ": another process removed it after it expired");
      return false;
    }
    LockRecord next = record_;
    next.expires_ms = c.now_ms() + c.options().lock_ttl.count();
    if (st.ok()) st = put_record(c, key_, next);
    if (st.ok())
      record_ = next;
    else
      c.warn("could not refresh the lock " + what_ + " (trying again later): " + st.message());
    return true;
  }

  std::shared_ptr<S3ObjectStore::Client> client_;
  const std::string key_, what_;
  LockRecord record_;  // the refresher's, then the destructor's after join
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::atomic<bool> lost_{false};
  std::thread refresher_;
};

Result<std::unique_ptr<StoreLock>> take_lock(const std::shared_ptr<S3ObjectStore::Client>& client,
                                             const std::string& name, bool exclusive) {
  if (!is_valid_object_key(name)) return Status::Internal("invalid lock name '" + name + "'");
  S3ObjectStore::Client& c = *client;
  const std::string what = "'" + name + "' on " + c.describe();
  auto locked_by = [&](const LockRecord& holder) {
    return Status::Locked(what + " is locked by another process (" + describe_lock_holder(holder) + ")");
  };

  // Contenders that collide all back off; they try again after a random
  // pause, and the first to come back finds the field clear (or finds a
  // winner in step 1 and is refused). Bounded: a lock is taken without waiting.
  constexpr int kRounds = 5;
  Status refused;
  for (int round = 0; round < kRounds; ++round) {
    if (round > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(100 + 400 * random_unit()) * round));

    // 1. Look first, so that a refusal writes nothing.
    auto holders = read_holders(c, name);
    if (!holders.ok()) return holders.status();
    int64_t now = c.now_ms();
    for (const Holder& h : *holders)
      if (lock_conflicts(exclusive, h.record) && !lock_expired(h.record, now)) return locked_by(h.record);

    // 2. Announce: our own object, which nobody else writes.
    LockRecord mine;
    mine.host = local_host_name();
    mine.pid = ::getpid();
    mine.token = random_token();
    mine.exclusive = exclusive;
    mine.since_ms = now;
    mine.expires_ms = now + c.options().lock_ttl.count();
    const std::string key = lock_object_key(name, mine.token);
    SQLBAK_RETURN_IF_ERROR(put_record(c, key, mine));

    // 3. Check: of two conflicting contenders, the one that lists last sees the
    // other's object (S3 lists what was written before), so at most one stays.
    holders = read_holders(c, name, key);
    if (!holders.ok()) {
      (void)delete_object(c, key);
      return holders.status();
    }
    now = c.now_ms();
    std::vector<const Holder*> stale;
    const Holder* conflict = nullptr;
    for (const Holder& h : *holders) {
      if (lock_expired(h.record, now))
        stale.push_back(&h);
      else if (lock_conflicts(exclusive, h.record) && conflict == nullptr)
        conflict = &h;
    }
    if (conflict != nullptr) {
      (void)delete_object(c, key);
      refused = locked_by(conflict->record);
      continue;
    }
    // Holders that expired are gone (a crash, a lost host): remove their objects.
    for (const Holder* h : stale) {
      if (lock_conflicts(exclusive, h->record))
        c.warn("took over the lock " + what + " from " + describe_lock_holder(h->record) + ", which had expired");
      (void)delete_object(c, h->key);
    }
    return std::unique_ptr<StoreLock>(new S3Lock(client, key, what, mine));
  }
  return refused;
}

}  // namespace

Result<std::unique_ptr<StoreLock>> S3ObjectStore::lock(const std::string& name) {
  return take_lock(client_, name, true);
}

Result<std::unique_ptr<StoreLock>> S3ObjectStore::lock_shared(const std::string& name) {
  return take_lock(client_, name, false);
}

}  // namespace sqlbak
