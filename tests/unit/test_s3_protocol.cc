#include <catch2/catch.hpp>

#include "lib/s3_protocol.h"
#include "lib/sha256.h"
#include "lib/s3_xml.h"

#include <vector>

using namespace sqlbak;

TEST_CASE("S3 addresses: path style for other servers, virtual host on AWS", "[s3]") {
  auto local = make_s3_address("http://127.0.0.1:9000/", "backups", "host1/sqlbak");
  REQUIRE(local.ok());
  CHECK_FALSE(local->virtual_host);
  CHECK(local->prefix == "host1/sqlbak/");
  CHECK(local->display() == "http://127.0.0.1:9000/backups/host1/sqlbak/");
  CHECK(s3_url(*local, "host1/sqlbak/packs/ab/abcd") == "http://127.0.0.1:9000/backups/host1/sqlbak/packs/ab/abcd");
  CHECK(s3_url(*local, "") == "http://127.0.0.1:9000/backups");
  CHECK(s3_url(*local, "", {{"list-type", "2"}, {"prefix", "host1/sqlbak/"}}) ==
        "http://127.0.0.1:9000/backups/?list-type=2&prefix=host1%2Fsqlbak%2F");

  auto aws = make_s3_address("https://s3.eu-west-1.amazonaws.com", "my-backups", "sqlbak/");
  REQUIRE(aws.ok());
  CHECK(aws->virtual_host);
  CHECK(s3_url(*aws, "sqlbak/config") == "https://my-backups.s3.eu-west-1.amazonaws.com/sqlbak/config");
  CHECK(s3_url(*aws, "", {{"delete", ""}}) == "https://my-backups.s3.eu-west-1.amazonaws.com/?delete=");
  CHECK(aws->display() == "https://s3.eu-west-1.amazonaws.com/my-backups/sqlbak/");

  // Dotted bucket names would not match AWS's wildcard certificate: path style.
  auto dotted = make_s3_address("https://S3.AMAZONAWS.COM", "my.backups", "");
  REQUIRE(dotted.ok());
  CHECK_FALSE(dotted->virtual_host);
  CHECK(s3_url(*dotted, "config") == "https://S3.AMAZONAWS.COM/my.backups/config");

  // An endpoint behind a path keeps it.
  auto behind = make_s3_address("https://gw.example.com/s3/", "b-1", "/p");
  REQUIRE(behind.ok());
  CHECK(behind->prefix == "p/");
  CHECK(s3_url(*behind, "p/x") == "https://gw.example.com/s3/b-1/p/x");
}

TEST_CASE("S3 addresses refuse bad endpoints, buckets and prefixes", "[s3]") {
  CHECK(make_s3_address("ftp://x", "bucket", "").status().code() == ErrorCode::kInvalidArgument);
  CHECK(make_s3_address("127.0.0.1:9000", "bucket", "").status().code() == ErrorCode::kInvalidArgument);
  CHECK(make_s3_address("http://", "bucket", "").status().code() == ErrorCode::kInvalidArgument);
  CHECK(make_s3_address("http://user@host", "bucket", "").status().code() == ErrorCode::kInvalidArgument);
  CHECK(make_s3_address("http://host/?x=1", "bucket", "").status().code() == ErrorCode::kInvalidArgument);
  CHECK(make_s3_address("http://host", "b", "").status().code() == ErrorCode::kInvalidArgument);
  CHECK(make_s3_address("http://host", "a/b", "").status().code() == ErrorCode::kInvalidArgument);
  CHECK(make_s3_address("http://host", "bucket", "a//b").status().code() == ErrorCode::kInvalidArgument);
  auto empty_prefix = make_s3_address("http://host", "bucket", "");
  REQUIRE(empty_prefix.ok());
  CHECK(empty_prefix->prefix.empty());
}

TEST_CASE("URI encoding and canonical query strings follow SigV4", "[s3]") {
  CHECK(uri_encode("a-b_c.d~e/f g+h=i&j%", true) == "a-b_c.d~e/f%20g%2Bh%3Di%26j%25");
  CHECK(uri_encode("a/b", false) == "a%2Fb");
  CHECK(uri_encode("\xC3\xA9", false) == "%C3%A9");
  // Sorted by name (then value), empty values as "name=", values encoded.
  CHECK(canonical_query({{"prefix", "a b/"}, {"list-type", "2"}, {"continuation-token", "x+y=="}}) ==
        "continuation-token=x%2By%3D%3D&list-type=2&prefix=a%20b%2F");
  CHECK(canonical_query({{"uploads", ""}}) == "uploads=");
  CHECK(canonical_query({{"uploadId", "u"}, {"partNumber", "10"}}) == "partNumber=10&uploadId=u");
  CHECK(canonical_query({}).empty());
}

TEST_CASE("ListObjectsV2 answers are read with continuation tokens", "[s3]") {
  auto page = parse_list_objects_v2(
      "<?xml version=\"1.0\"?><ListBucketResult><Name>b</Name><Prefix>p/</Prefix>"
      "<KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>"
      "<NextContinuationToken>tok+/=</NextContinuationToken>"
      "<Contents><Key>p/packs/ab/ab01</Key><Size>17000000</Size><ETag>\"x\"</ETag></Contents>"
      "<Contents><Key>p/config</Key><Size>80</Size></Contents></ListBucketResult>");
  REQUIRE(page.ok());
  REQUIRE(page->objects.size() == 2);
  CHECK(page->objects[0].key == "p/packs/ab/ab01");
  CHECK(page->objects[0].size == 17000000);
  CHECK(page->truncated);
  CHECK(page->next_token == "tok+/=");

  auto last = parse_list_objects_v2("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  REQUIRE(last.ok());
  CHECK(last->objects.empty());
  CHECK_FALSE(last->truncated);

  CHECK_FALSE(parse_list_objects_v2("<Error><Code>AccessDenied</Code></Error>").ok());
  CHECK_FALSE(parse_list_objects_v2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>").ok());
  CHECK_FALSE(parse_list_objects_v2("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents>"
                                    "</ListBucketResult>").ok());
  CHECK_FALSE(parse_list_objects_v2("not xml").ok());
}

TEST_CASE("DeleteObjects requests and answers", "[s3]") {
  std::string xml = delete_objects_xml({"p/a&b", "p/c"});
  auto doc = parse_xml(xml);
  REQUIRE(doc.ok());
  CHECK(doc->name == "Delete");
  CHECK(doc->child_text("Quiet") == "true");
  auto objects = doc->children_named("Object");
  REQUIRE(objects.size() == 2);
  CHECK(objects[0]->child_text("Key") == "p/a&b");

  auto ok = parse_delete_result("<DeleteResult><Deleted><Key>p/a</Key></Deleted></DeleteResult>");
  REQUIRE(ok.ok());
  CHECK(ok->empty());
  auto failures = parse_delete_result(
      "<DeleteResult><Deleted><Key>p/a</Key></Deleted>"
      "<Error><Key>p/b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>");
  REQUIRE(failures.ok());
  REQUIRE(failures->size() == 1);
  CHECK((*failures)[0].key == "p/b");
  CHECK((*failures)[0].code == "AccessDenied");
  CHECK((*failures)[0].message == "Access Denied");
  CHECK_FALSE(parse_delete_result("<Error><Code>MalformedXML</Code></Error>").ok());
}

TEST_CASE("multipart documents", "[s3]") {
  auto id = parse_initiate_multipart(
      "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>abc123</UploadId>"
      "</InitiateMultipartUploadResult>");
  REQUIRE(id.ok());
  CHECK(*id == "abc123");
  CHECK_FALSE(parse_initiate_multipart("<InitiateMultipartUploadResult/>").ok());

  auto doc = parse_xml(complete_multipart_xml({"e1", "e2"}));
  REQUIRE(doc.ok());
  auto parts = doc->children_named("Part");
  REQUIRE(parts.size() == 2);
  CHECK(parts[1]->child_text("PartNumber") == "2");
  CHECK(parts[1]->child_text("ETag") == "\"e2\"");
}

TEST_CASE("error documents", "[s3]") {
  auto e = parse_error_body(
      "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce your rate</Message>"
      "<RequestId>1</RequestId></Error>");
  CHECK(e.code == "SlowDown");
  CHECK(e.message == "Reduce your rate");
  CHECK(parse_error_body("").empty());
  CHECK(parse_error_body("<html>503</html>").empty());
  CHECK(parse_error_body("<CompleteMultipartUploadResult/>").empty());
}

TEST_CASE("digests for Content-MD5 and ETags", "[s3]") {
  CHECK(content_md5("") == "1B2M2Y8AsgTpgAmY7PhCfg==");
  CHECK(md5_hex("") == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(md5_hex("The quick brown fox jumps over the lazy dog") == "9e107d9d372bb6826bd81d3542a419d6");
  CHECK(content_md5("The quick brown fox jumps over the lazy dog") == "nhB9nTcrtoJr2B01QqQZ1g==");
  CHECK(normalize_etag("\"9E107D9D372BB6826BD81D3542A419D6\"") == "9e107d9d372bb6826bd81d3542a419d6");
  CHECK(normalize_etag("W-x") == "w-x");
}

TEST_CASE("an upload's digests, computed once, equal the ones computed apart", "[s3]") {
  for (std::string body : {std::string(), std::string("The quick brown fox jumps over the lazy dog"),
                           std::string(3 << 20, '\x5a')}) {
    const BodyDigests d = body_digests(body);
    CHECK(d.md5_hex == md5_hex(body));
    CHECK(d.md5_base64 == content_md5(body));
    CHECK(d.sha256_hex == to_hex(sha256(body)));
  }
  CHECK(body_digests("").sha256_hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("parts are even, about part_size, and never below S3's minimum", "[s3]") {
  const uint64_t MiB = 1024 * 1024;
  auto check_plan = [&](uint64_t size, uint64_t part_size) {
    auto parts = plan_parts(size, part_size);
    uint64_t sum = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      INFO("size " << size << " part " << i);
      CHECK(parts[i].offset == sum);
      CHECK(parts[i].size > 0);
      if (i + 1 < parts.size()) {
        CHECK(parts[i].size >= kMinPartSize);
        CHECK(parts[i].size == parts[0].size);
      }
      sum += parts[i].size;
    }
    CHECK(sum == size);
    return parts;
  };
  CHECK(check_plan(3 * MiB, 6 * MiB).size() == 1);
  // A full pack of random pages (just under 16 MiB): three parts of ~5.2 MiB.
  auto pack = check_plan(16 * MiB - 300 * 1024, 6 * MiB);
  CHECK(pack.size() == 3);
  // 12 MiB: two parts of 6 MiB.
  auto twelve = check_plan(12 * MiB, 6 * MiB);
  REQUIRE(twelve.size() == 2);
  CHECK(twelve[0].size == 6 * MiB);
  // 9 MiB cannot make two parts of 5 MiB: one part, larger than part_size.
  auto nine = check_plan(9 * MiB, 6 * MiB);
  REQUIRE(nine.size() == 1);
  CHECK(nine[0].size == 9 * MiB);
  // 10 MiB + 1: two parts, the last one byte smaller, both above the minimum.
  auto ten = check_plan(10 * MiB + 1, 6 * MiB);
  REQUIRE(ten.size() == 2);
  CHECK(ten[1].size >= kMinPartSize);
  // Large objects: about part_size each.
  CHECK(check_plan(100 * MiB + 3, 6 * MiB).size() == 17);
  CHECK(check_plan(1, 6 * MiB).size() == 1);
  // A smaller minimum (tests) allows smaller parts.
  CHECK(plan_parts(100, 30, 10).size() == 4);
}

TEST_CASE("lock records round-trip and expire", "[s3]") {
  LockRecord r;
  r.host = "db1";
  r.pid = 4242;
  r.token = "0123456789abcdef";
  r.since_ms = 1795625412000;
  r.expires_ms = r.since_ms + 600000;
  auto back = decode_lock_record(encode_lock_record(r));
  REQUIRE(back.ok());
  CHECK(back->host == "db1");
  CHECK(back->pid == 4242);
  CHECK(back->token == r.token);
  CHECK(back->since_ms == r.since_ms);
  CHECK(back->expires_ms == r.expires_ms);
  CHECK(describe_lock_holder(r) ==
        "host db1, pid 4242, since 2026-11-25T16:50:12Z, expires 2026-11-25T17:00:12Z");
  CHECK(back->exclusive);
  r.exclusive = false;
  auto shared = decode_lock_record(encode_lock_record(r));
  REQUIRE(shared.ok());
  CHECK_FALSE(shared->exclusive);
  CHECK(describe_lock_holder(r) ==
        "host db1, pid 4242, since 2026-11-25T16:50:12Z, expires 2026-11-25T17:00:12Z, shared");
  CHECK_FALSE(lock_expired(r, r.expires_ms - 1));
  CHECK(lock_expired(r, r.expires_ms));
  CHECK_FALSE(decode_lock_record("host db1, pid 1").ok());
  CHECK_FALSE(decode_lock_record("{\"host\":\"h\",\"pid\":1,\"token\":\"t\",\"mode\":\"both\","
                                 "\"since_unix_ms\":1,\"expires_unix_ms\":2}").ok());
  CHECK_FALSE(decode_lock_record("{\"host\":\"h\",\"pid\":1}").ok());
  CHECK_FALSE(decode_lock_record("{\"host\":\"h\",\"pid\":1,\"token\":\"\",\"since_unix_ms\":1,"
                                 "\"expires_unix_ms\":2}").ok());
}

TEST_CASE("failed requests become one clear error with the right code", "[s3]") {
  FailedRequest f;
  f.target = "target 'offsite' (s3 http://127.0.0.1:9000/bucket/prefix/)";
  f.bucket = "bucket";
  f.endpoint = "http://127.0.0.1:9000";
  f.method = "PUT";
  f.object = "packs/ab/abcd";

  SECTION("5xx after retries") {
    f.http_status = 503;
    f.error = {"SlowDown", "Please reduce your request rate."};
    f.attempts = 6;
    Status s = s3_failure_status(f);
    CHECK(s.code() == ErrorCode::kIOError);
    CHECK(s.message() ==
          "target 'offsite' (s3 http://127.0.0.1:9000/bucket/prefix/): PUT packs/ab/abcd: HTTP 503 after 6 "
          "attempts: SlowDown: Please reduce your request rate.");
  }
  SECTION("403 asks to check the credentials") {
    f.http_status = 403;
    f.error = {"InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."};
    Status s = s3_failure_status(f);
    CHECK(s.code() == ErrorCode::kPermissionDenied);
    CHECK(s.message().find("HTTP 403: InvalidAccessKeyId") != std::string::npos);
    CHECK(s.message().find("records. Check the target's credentials") != std::string::npos);
    CHECK(s.message().find("after") == std::string::npos);
  }
  SECTION("404 NoSuchKey is not found") {
    f.method = "GET";
    f.http_status = 404;
    f.error = {"NoSuchKey", "The specified key does not exist."};
    CHECK(s3_failure_status(f).code() == ErrorCode::kNotFound);
  }
  SECTION("a missing bucket is named") {
    f.method = "LIST";
    f.object = "";
    f.http_status = 404;
    f.error = {"NoSuchBucket", "The specified bucket does not exist"};
    Status s = s3_failure_status(f);
    CHECK(s.code() == ErrorCode::kInvalidArgument);
    CHECK(s.message() ==
          "target 'offsite' (s3 http://127.0.0.1:9000/bucket/prefix/): bucket 'bucket' does not exist at "
          "http://127.0.0.1:9000 (LIST: HTTP 404: NoSuchBucket: The specified bucket does not exist)");
  }
  SECTION("no server: cannot reach") {
    f.transport = TransportError::kConnect;
    f.transport_message = "Failed to connect to 127.0.0.1 port 9000: Connection refused";
    f.attempts = 3;
    Status s = s3_failure_status(f);
    CHECK(s.code() == ErrorCode::kIOError);
    CHECK(s.message() ==
          "target 'offsite' (s3 http://127.0.0.1:9000/bucket/prefix/): PUT packs/ab/abcd: cannot reach "
          "http://127.0.0.1:9000 after 3 attempts: Failed to connect to 127.0.0.1 port 9000: Connection refused");
  }
  SECTION("an answer cut short") {
    f.method = "GET";
    f.http_status = 200;
    f.transport = TransportError::kConnection;
    f.transport_message = "transfer closed with 100 bytes remaining to read";
    f.attempts = 6;
    Status s = s3_failure_status(f);
    CHECK(s.code() == ErrorCode::kIOError);
    CHECK(s.message().find("HTTP 200 after 6 attempts: the answer was cut short") != std::string::npos);
  }
  SECTION("a range past the end, a damaged upload") {
    f.http_status = 416;
    f.error = {"InvalidRange", "The requested range is not satisfiable"};
    CHECK(s3_failure_status(f).code() == ErrorCode::kCorruption);
    f.http_status = 400;
    f.error = {"BadDigest", "The Content-MD5 you specified did not match what we received."};
    CHECK(s3_failure_status(f).code() == ErrorCode::kCorruption);
  }
  SECTION("other 4xx") {
    f.http_status = 400;
    f.error = {"InvalidStorageClass", "The storage class you specified is not valid"};
    CHECK(s3_failure_status(f).code() == ErrorCode::kInvalidArgument);
    f.error = {"MalformedXML", ""};
    Status s = s3_failure_status(f);
    CHECK(s.code() == ErrorCode::kIOError);
    CHECK(s.message().find("HTTP 400: MalformedXML") != std::string::npos);
  }
}

TEST_CASE("exclusive holders exclude everyone, shared ones only exclusive holders", "[s3]") {
  LockRecord shared_holder;
  shared_holder.exclusive = false;
  LockRecord exclusive_holder;
  exclusive_holder.exclusive = true;
  CHECK_FALSE(lock_conflicts(false, shared_holder));
  CHECK(lock_conflicts(false, exclusive_holder));
  CHECK(lock_conflicts(true, shared_holder));
  CHECK(lock_conflicts(true, exclusive_holder));
  CHECK(lock_folder("db-shop") == "locks/db-shop/");
  CHECK(lock_object_key("repository", "0a1b") == "locks/repository/0a1b.lock");
}
