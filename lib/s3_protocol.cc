#include "lib/s3_protocol.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "lib/s3_xml.h"
#include "lib/sha256.h"
#include "lib/timefmt.h"

namespace sqlbak {

using nlohmann::json;

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// A bucket name usable as a DNS label under the AWS host: 3..63 of [a-z0-9-],
// no dots, starting and ending with a letter or digit.
bool dns_label_bucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return b.front() != '-' && b.back() != '-';
}

// S3's rules for bucket names, loosely (other servers accept a little more):
// 3..63 characters of [a-z0-9.-_], no slashes.
bool plausible_bucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.' || c == '_'))
      return false;
  return true;
}

bool parse_u64(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

std::string base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<size_t>(n));
  return out;
}

struct Md5 {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  explicit Md5(std::string_view data) {
    // EVP_Digest only fails when out of memory.
    if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_md5(), nullptr) != 1) std::abort();
  }
};

std::string lower_hex(const unsigned char* bytes, unsigned int size) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * size);
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 15]);
  }
  return out;
}

}  // namespace

std::string S3Address::display() const {
  return scheme + "://" + authority + base_path + "/" + bucket + "/" + prefix;
}

Result<S3Address> make_s3_address(std::string_view endpoint, std::string_view bucket,
                                  std::string_view prefix) {
  S3Address a;
  size_t sep = endpoint.find("://");
  if (sep == std::string_view::npos)
    return Status::InvalidArgument("endpoint '" + std::string(endpoint) + "' is not an http:// or https:// URL");
  a.scheme = std::string(endpoint.substr(0, sep));
  std::transform(a.scheme.begin(), a.scheme.end(), a.scheme.begin(), lower);
  if (a.scheme != "http" && a.scheme != "https")
    return Status::InvalidArgument("endpoint '" + std::string(endpoint) + "' is not an http:// or https:// URL");
  std::string_view rest = endpoint.substr(sep + 3);
  size_t slash = rest.find('/');
  a.authority = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    a.base_path = std::string(path);
  }
  if (a.authority.empty() || a.authority.find_first_of("?#@ ") != std::string::npos)
    return Status::InvalidArgument("endpoint '" + std::string(endpoint) + "' has no usable host");
  if (a.base_path.find_first_of("?# ") != std::string::npos)
    return Status::InvalidArgument("endpoint '" + std::string(endpoint) + "' must not have a query");
  if (!plausible_bucket(bucket))
    return Status::InvalidArgument("'" + std::string(bucket) + "' is not a valid bucket name");
  a.bucket = std::string(bucket);
  while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
  a.prefix = std::string(prefix);
  if (!a.prefix.empty() && a.prefix.back() != '/') a.prefix.push_back('/');
  if (a.prefix.find("//") != std::string::npos)
    return Status::InvalidArgument("prefix '" + std::string(prefix) + "' has an empty segment");

  std::string host = a.authority.substr(0, a.authority.rfind(':') == std::string::npos
                                                ? a.authority.size()
                                                : a.authority.rfind(':'));
  std::transform(host.begin(), host.end(), host.begin(), lower);
  a.virtual_host = ends_with(host, ".amazonaws.com") && a.base_path.empty() && dns_label_bucket(a.bucket);
  return a;
}

std::string uri_encode(std::string_view text, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
    if (unreserved) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string canonical_query(QueryParams params) {
  for (auto& [k, v] : params) {
    k = uri_encode(k, false);
    v = uri_encode(v, false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out.push_back('&');
    out += k + "=" + v;
  }
  return out;
}

std::string s3_url(const S3Address& a, std::string_view full_key, const QueryParams& query) {
  std::string url = a.scheme + "://";
  if (a.virtual_host) {
    url += a.bucket + "." + a.authority + "/";
  } else {
    url += a.authority + a.base_path + "/" + a.bucket;
    if (!full_key.empty() || !query.empty()) url += "/";
  }
  url += uri_encode(full_key, true);
  if (!query.empty()) url += "?" + canonical_query(query);
  return url;
}

Result<ListPage> parse_list_objects_v2(std::string_view xml) {
  auto doc = parse_xml(xml);
  if (!doc.ok()) return doc.status().WithContext("ListObjectsV2 answer");
  if (doc->name != "ListBucketResult")
    return Status::Corruption("ListObjectsV2 answer is <" + doc->name + ">, not <ListBucketResult>");
  ListPage page;
  for (const XmlElement* c : doc->children_named("Contents")) {
    ObjectInfo o;
    o.key = c->child_text("Key");
    if (o.key.empty() || !parse_u64(c->child_text("Size"), &o.size))
      return Status::Corruption("ListObjectsV2 answer has an entry without a key or size");
    page.objects.push_back(std::move(o));
  }
  page.truncated = doc->child_text("IsTruncated") == "true";
  page.next_token = doc->child_text("NextContinuationToken");
  if (page.truncated && page.next_token.empty())
    return Status::Corruption("ListObjectsV2 answer is truncated but has no NextContinuationToken");
  return page;
}

std::string delete_objects_xml(const std::vector<std::string>& full_keys) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>";
  for (const std::string& k : full_keys) out += "<Object><Key>" + xml_escape(k) + "</Key></Object>";
  out += "</Delete>";
  return out;
}

Result<std::vector<DeleteFailure>> parse_delete_result(std::string_view xml) {
  auto doc = parse_xml(xml);
  if (!doc.ok()) return doc.status().WithContext("DeleteObjects answer");
  if (doc->name != "DeleteResult")
    return Status::Corruption("DeleteObjects answer is <" + doc->name + ">, not <DeleteResult>");
  std::vector<DeleteFailure> out;
  for (const XmlElement* e : doc->children_named("Error"))
    out.push_back({e->child_text("Key"), e->child_text("Code"), e->child_text("Message")});
  return out;
}

Result<std::string> parse_initiate_multipart(std::string_view xml) {
  auto doc = parse_xml(xml);
  if (!doc.ok()) return doc.status().WithContext("CreateMultipartUpload answer");
  std::string id = doc->name == "InitiateMultipartUploadResult" ? doc->child_text("UploadId") : "";
  if (id.empty()) return Status::Corruption("CreateMultipartUpload answer has no UploadId");
  return id;
}

std::string complete_multipart_xml(const std::vector<std::string>& etags) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (size_t i = 0; i < etags.size(); ++i)
    out += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>\"" +
           xml_escape(etags[i]) + "\"</ETag></Part>";
  out += "</CompleteMultipartUpload>";
  return out;
}

S3ErrorBody parse_error_body(std::string_view body) {
  auto doc = parse_xml(body);
  if (!doc.ok() || doc->name != "Error") return {};
  return {doc->child_text("Code"), doc->child_text("Message")};
}

std::string content_md5(std::string_view data) {
  Md5 m(data);
  return base64(m.digest, m.size);
}

std::string md5_hex(std::string_view data) {
  Md5 m(data);
  return lower_hex(m.digest, m.size);
}

BodyDigests body_digests(std::string_view body) {
  BodyDigests d;
  d.sha256_hex = to_hex(sha256(body));
  Md5 m(body);
  d.md5_base64 = base64(m.digest, m.size);
  d.md5_hex = lower_hex(m.digest, m.size);
  return d;
}

std::string normalize_etag(std::string_view etag) {
  while (!etag.empty() && (etag.front() == '"' || etag.front() == ' ')) etag.remove_prefix(1);
  while (!etag.empty() && (etag.back() == '"' || etag.back() == ' ')) etag.remove_suffix(1);
  std::string out(etag);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

std::vector<PartRange> plan_parts(uint64_t size, uint64_t part_size, uint64_t min_part_size) {
  if (size == 0) return {PartRange{0, 0}};
  uint64_t count = std::min((size + part_size - 1) / part_size, size / min_part_size);
  count = std::max<uint64_t>(count, 1);
  uint64_t each = (size + count - 1) / count;
  std::vector<PartRange> parts;
  for (uint64_t off = 0; off < size; off += each) parts.push_back({off, std::min(each, size - off)});
  return parts;
}

std::string encode_lock_record(const LockRecord& r) {
  json j{{"host", r.host},
         {"pid", r.pid},
         {"token", r.token},
         {"mode", r.exclusive ? "exclusive" : "shared"},
         {"since", format_iso_utc(r.since_ms)},
         {"since_unix_ms", r.since_ms},
         {"expires", format_iso_utc(r.expires_ms)},
         {"expires_unix_ms", r.expires_ms}};
  return j.dump(1) + "\n";
}

Result<LockRecord> decode_lock_record(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  auto bad = [] { return Status::Corruption("not a sqlbak lock record"); };
  if (j.is_discarded() || !j.is_object()) return bad();
  LockRecord r;
  auto str = [&](const char* k, std::string* out) {
    if (!j.contains(k) || !j[k].is_string()) return false;
    *out = j[k].get<std::string>();
    return true;
  };
  auto num = [&](const char* k, int64_t* out) {
    if (!j.contains(k) || !j[k].is_number_integer()) return false;
    *out = j[k].get<int64_t>();
    return true;
  };
  if (!str("host", &r.host) || !num("pid", &r.pid) || !str("token", &r.token) ||
      !num("since_unix_ms", &r.since_ms) || !num("expires_unix_ms", &r.expires_ms) || r.token.empty())
    return bad();
  std::string mode = "exclusive";
  if (j.contains("mode") && !str("mode", &mode)) return bad();
  if (mode != "exclusive" && mode != "shared") return bad();
  r.exclusive = mode == "exclusive";
  return r;
}

std::string describe_lock_holder(const LockRecord& r) {
  return "host " + r.host + ", pid " + std::to_string(r.pid) + ", since " + format_iso_utc(r.since_ms) +
         ", expires " + format_iso_utc(r.expires_ms) + (r.exclusive ? "" : ", shared");
}

bool lock_expired(const LockRecord& r, int64_t now_ms) { return now_ms >= r.expires_ms; }

bool lock_conflicts(bool want_exclusive, const LockRecord& holder) { return want_exclusive || holder.exclusive; }

std::string lock_folder(std::string_view name) { return "locks/" + std::string(name) + "/"; }

std::string lock_object_key(std::string_view name, std::string_view token) {
  return lock_folder(name) + std::string(token) + ".lock";
}

Status s3_failure_status(const FailedRequest& f) {
  std::string head = f.target + ": " + f.method + " " +
                     (f.object.empty() ? "bucket '" + f.bucket + "'" : f.object) + ": ";
  std::string tries = f.attempts > 1 ? " after " + std::to_string(f.attempts) + " attempts" : "";
  std::string s3 = f.error.code.empty() ? f.error.message
                                        : f.error.code + (f.error.message.empty() ? "" : ": " + f.error.message);

  if (f.http_status == 0) {
    std::string why = f.transport_message.empty() ? "no answer" : f.transport_message;
    switch (f.transport) {
      case TransportError::kResolve:
      case TransportError::kConnect:
        return Status::IOError(head + "cannot reach " + f.endpoint + tries + ": " + why);
      case TransportError::kTimeout:
        return Status::IOError(head + "no answer from " + f.endpoint + " in time" + tries + ": " + why);
      case TransportError::kConnection:
        return Status::IOError(head + "connection to " + f.endpoint + " broken" + tries + ": " + why);
      case TransportError::kTls:
        return Status::IOError(head + "TLS with " + f.endpoint + " failed: " + why);
      default:
        return Status::IOError(head + why + tries);
    }
  }
  std::string http = "HTTP " + std::to_string(f.http_status) + tries;
  if (f.transport != TransportError::kNone)
    return Status::IOError(head + http + ": the answer was cut short: " + f.transport_message);
  std::string detail = http + (s3.empty() ? "" : ": " + s3);

  if (f.error.code == "NoSuchBucket")
    return Status::InvalidArgument(f.target + ": bucket '" + f.bucket + "' does not exist at " + f.endpoint +
                                   " (" + f.method + (f.object.empty() ? "" : " " + f.object) + ": " +
                                   detail + ")");
  if (f.http_status == 403 || f.error.code == "InvalidAccessKeyId" || f.error.code == "SignatureDoesNotMatch") {
    bool sentence = !detail.empty() && detail.back() == '.';
    return {ErrorCode::kPermissionDenied,
            head + detail + (sentence ? " Check" : "; check") +
                " the target's credentials (access_key_id_file, secret_access_key_file) and that they may use "
                "bucket '" + f.bucket + "'"};
  }
  if (f.http_status == 404) return Status::NotFound(head + detail);
  if (f.http_status == 416 || f.error.code == "InvalidRange" || f.error.code == "BadDigest")
    return Status::Corruption(head + detail);
  if (f.error.code == "InvalidStorageClass" || f.error.code == "KMS.NotFoundException")
    return Status::InvalidArgument(head + detail);
  return Status::IOError(head + detail);
}

}  // namespace sqlbak
