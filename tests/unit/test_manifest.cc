#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "lib/manifest.h"
#include "lib/sha256.h"

using namespace sqlbak;

TEST_CASE("page runs merge consecutive entries and keep gaps") {
  std::vector<PageRef> refs(10);
  for (uint32_t i = 0; i < 10; ++i) refs[i] = {0, i};
  refs[4] = {1, 7};                 // a changed page in another pack
  refs[8] = {PageRef::kNoPack, 0};  // the lock-byte page
  auto runs = encode_page_runs(refs);
  REQUIRE(runs.size() == 4);
  CHECK(runs[0].first_page == 1);
  CHECK(runs[0].count == 4);
  CHECK(runs[1].pack == 1);
  CHECK(runs[1].first_entry == 7);
  CHECK(runs[2].first_page == 6);
  CHECK(runs[2].count == 3);
  CHECK(runs[3].first_page == 10);
  auto back = decode_page_runs(runs, 10, 2);
  REQUIRE(back.ok());
  for (uint32_t i = 0; i < 10; ++i) {
    CHECK(back.value()[i].pack == refs[i].pack);
    if (refs[i].pack != PageRef::kNoPack) CHECK(back.value()[i].entry == refs[i].entry);
  }
  CHECK(decode_page_runs(runs, 9, 2).status().code() == ErrorCode::kCorruption);
  CHECK(decode_page_runs(runs, 10, 1).status().code() == ErrorCode::kCorruption);
}

TEST_CASE("a large unchanged database has a small page map") {
  std::vector<PageRef> refs(262144);
  for (uint32_t i = 0; i < refs.size(); ++i) refs[i] = {i / 4096, i % 4096};
  for (uint32_t i = 0; i < refs.size(); i += 100) refs[i] = {100, i / 100};  // 1 % changed
  auto runs = encode_page_runs(refs);
  CHECK(runs.size() < 6000);
}

namespace {
Manifest sample() {
  Manifest m;
  m.id = make_backup_id(1764088212000);
  m.database = "shop";
  m.created = "2025-11-25T16:30:12Z";
  m.created_unix_ms = 1764088212000;
  m.kind = "full";
  m.page_size = 4096;
  m.page_count = 3;
  m.journal_mode = "wal";
  m.sqlite_version = "3.40.1";
  m.source_path = "/srv/app/shop \"quoted\" é.db";
  m.compression = "zstd";
  m.compression_level = 3;
  m.verify = "integrity";
  m.verification = "ok";
  m.packs.push_back({sha256("pack"), 123, sha256("index"), 64});
  m.runs.push_back({1, 3, 0, 0});
  return m;
}
}  // namespace

TEST_CASE("manifests round-trip and carry their own SHA-256") {
  Manifest m = sample();
  std::string text = encode_manifest(m);
  auto back = decode_manifest(text);
  REQUIRE(back.ok());
  CHECK(back->id == m.id);
  CHECK(back->source_path == m.source_path);
  CHECK(back->packs[0].id == m.packs[0].id);
  CHECK(back->runs[0].count == 3);

  std::string tampered = text;
  size_t pos = tampered.find("\"page_count\": 3");
  REQUIRE(pos != std::string::npos);
  tampered[pos + 14] = '4';
  CHECK(decode_manifest(tampered).status().code() == ErrorCode::kCorruption);
  CHECK(decode_manifest("{not json").status().code() == ErrorCode::kCorruption);
  std::string future = text;
  future.replace(future.find("\"format\": 1"), 11, "\"format\": 2");
  CHECK(decode_manifest(future).status().code() == ErrorCode::kUnsupported);
}

TEST_CASE("backup ids sort by time and are recognised") {
  std::string id = make_backup_id(1764088212000);
  CHECK(id.substr(0, 16) == "20251125T163012Z");
  CHECK(looks_like_backup_id(id));
  CHECK_FALSE(looks_like_backup_id("shop"));
  CHECK_FALSE(looks_like_backup_id("20251125T163012Z-ABCDEF"));
  CHECK(make_backup_id(1764088213000) > id);
}

namespace {
// SAMPLE() encoded, with the body field KEY set to VALUE and the SHA-256
// recomputed: what someone who can write the target can store.
std::string with_field(const std::string& key, const nlohmann::json& value) {
  nlohmann::json w = nlohmann::json::parse(encode_manifest(sample()));
  w["manifest"][nlohmann::json::json_pointer(key)] = value;
  w["sha256"] = to_hex(sha256(w["manifest"].dump()));
  return w.dump(1);
}
}  // namespace

// Found by fuzz_manifest: numbers outside a field's type were undefined
// behaviour (1e300 as int64_t) or silently truncated (2^32 + 3 pages read
// as 3, format 2^32 + 1 as format 1).
TEST_CASE("manifest numbers that are not integers of the field's range are refused") {
  REQUIRE(decode_manifest(with_field("/created_unix_ms", 1764088212000)).ok());
  auto huge = decode_manifest(with_field("/created_unix_ms", 1e300));
  CHECK(huge.status().code() == ErrorCode::kCorruption);
  CHECK(huge.status().message() == "manifest field 'created_unix_ms' is not an integer: 1e+300");
  auto pages = decode_manifest(with_field("/page_count", 4294967299ull));
  CHECK(pages.status().code() == ErrorCode::kCorruption);
  CHECK(pages.status().message() == "manifest field 'page_count' is out of range (0..4294967295): 4294967299");
  CHECK(decode_manifest(with_field("/page_count", -1)).status().message().find("'page_count'") != std::string::npos);
  CHECK(decode_manifest(with_field("/restarts", 1.5)).status().message().find("'restarts'") != std::string::npos);
  CHECK(decode_manifest(with_field("/page_size", true)).status().message().find("'page_size'") != std::string::npos);
  CHECK(decode_manifest(with_field("/source_bytes", -5)).status().code() == ErrorCode::kCorruption);
  CHECK(decode_manifest(with_field("/duration_ms", 18446744073709551615ull)).status().code() == ErrorCode::kCorruption);
  CHECK(decode_manifest(with_field("/settings/compression_level", 2147483648ll)).status().message().find(
            "'settings.compression_level'") != std::string::npos);
  CHECK(decode_manifest(with_field("/settings/compression_level", -5)).ok());  // zstd's fast levels
  CHECK(decode_manifest(with_field("/packs/0/size", 1e20)).status().message().find("'packs[0].size'") !=
        std::string::npos);
  CHECK(decode_manifest(with_field("/pages/0/1", 4294967296ull)).status().message().find("'pages[0][1]'") !=
        std::string::npos);
  CHECK(decode_manifest(with_field("/pages", 5)).status().code() == ErrorCode::kCorruption);

  nlohmann::json w = nlohmann::json::parse(encode_manifest(sample()));
  w["format"] = 4294967297ull;
  CHECK(decode_manifest(w.dump()).status().code() == ErrorCode::kUnsupported);
  w["format"] = 1.0;
  CHECK(decode_manifest(w.dump()).status().code() == ErrorCode::kCorruption);
}
