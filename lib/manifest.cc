#include "lib/manifest.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <random>

namespace sqlbak {

using nlohmann::json;

std::vector<PageRun> encode_page_runs(const std::vector<PageRef>& refs) {
  std::vector<PageRun> runs;
  for (uint32_t i = 0; i < refs.size(); ++i) {
    const PageRef& r = refs[i];
    if (r.pack == PageRef::kNoPack) continue;
    const uint32_t page = i + 1;
    if (!runs.empty()) {
      PageRun& last = runs.back();
      if (last.pack == r.pack && last.first_page + last.count == page &&
          last.first_entry + last.count == r.entry) {
        ++last.count;
        continue;
      }
    }
    runs.push_back({page, 1, r.pack, r.entry});
  }
  return runs;
}

Result<std::vector<PageRef>> decode_page_runs(const std::vector<PageRun>& runs,
                                             uint32_t page_count, size_t pack_count) {
  std::vector<PageRef> refs(page_count);
  for (const PageRun& run : runs) {
    if (run.first_page == 0 || run.count == 0 ||
        static_cast<uint64_t>(run.first_page) + run.count - 1 > page_count)
      return Status::Corruption("page run starting at page " + std::to_string(run.first_page) +
                                " lies outside the database of " + std::to_string(page_count) +
                                " pages");
    if (run.pack >= pack_count)
      return Status::Corruption("page run names pack " + std::to_string(run.pack) +
                                " but the manifest lists " + std::to_string(pack_count));
    for (uint32_t k = 0; k < run.count; ++k)
      refs[run.first_page - 1 + k] = PageRef{run.pack, run.first_entry + k};
  }
  return refs;
}

namespace {

json to_json(const Manifest& m) {
  json packs = json::array();
  for (const ManifestPack& p : m.packs)
    packs.push_back({{"id", to_hex(p.id)},
                     {"size", p.size},
                     {"index_sha256", to_hex(p.index_sha256)},
                     {"index_size", p.index_size}});
  json pages = json::array();
  for (const PageRun& r : m.runs) pages.push_back({r.first_page, r.count, r.pack, r.first_entry});
  return json{{"id", m.id},
              {"database", m.database},
              {"created", m.created},
              {"created_unix_ms", m.created_unix_ms},
              {"kind", m.kind},
              {"page_size", m.page_size},
              {"page_count", m.page_count},
              {"journal_mode", m.journal_mode},
              {"sqlite_version", m.sqlite_version},
              {"source_path", m.source_path},
              {"source_bytes", m.source_bytes},
              {"stored_bytes", m.stored_bytes},
              {"new_pages", m.new_pages},
              {"duration_ms", m.duration_ms},
              {"restarts", m.restarts},
              {"settings",
               {{"compression", m.compression},
                {"compression_level", m.compression_level},
                {"verify", m.verify},
                {"step_pages", m.step_pages}}},
              {"verification", m.verification},
              {"host", m.host},
              {"packs", packs},
              {"pages", pages}};
}

Status read_digest(const json& j, const char* key, Digest* out) {
  if (!j.contains(key) || !j[key].is_string() || !from_hex(j[key].get<std::string>(), out))
    return Status::Corruption(std::string("manifest field '") + key + "' is not a SHA-256");
  return Status::Ok();
}

}  // namespace

std::string encode_manifest(const Manifest& m) {
  const std::string body = to_json(m).dump();
  // The body is embedded as parsed JSON; decode_manifest re-dumps it, and
  // nlohmann's compact dump of sorted keys and integers is canonical.
  json wrapper{{"format", kManifestFormatVersion}, {"sha256", to_hex(sha256(body))},
               {"manifest", json::parse(body)}};
  return wrapper.dump(1) + "\n";
}

Result<Manifest> decode_manifest(std::string_view bytes) {
  json w = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (w.is_discarded() || !w.is_object()) return Status::Corruption("manifest is not valid JSON");
  if (!w.contains("format") || !w["format"].is_number_integer())
    return Status::Corruption("manifest has no format version");
  if (w["format"].get<int>() != kManifestFormatVersion)
    return Status::Unsupported("manifest format version " + w["format"].dump() +
                               " is not supported by this sqlbak");
  if (!w.contains("manifest") || !w["manifest"].is_object())
    return Status::Corruption("manifest has no body");
  const json& j = w["manifest"];
  Digest expected{};
  SQLBAK_RETURN_IF_ERROR(read_digest(w, "sha256", &expected));
  if (sha256(j.dump()) != expected) return Status::Corruption("manifest SHA-256 mismatch");

  Manifest m;
  try {
    m.id = j.at("id").get<std::string>();
    m.database = j.at("database").get<std::string>();
    m.created = j.at("created").get<std::string>();
    m.created_unix_ms = j.at("created_unix_ms").get<int64_t>();
    m.kind = j.at("kind").get<std::string>();
    m.page_size = j.at("page_size").get<uint32_t>();
    m.page_count = j.at("page_count").get<uint32_t>();
    m.journal_mode = j.at("journal_mode").get<std::string>();
    m.sqlite_version = j.at("sqlite_version").get<std::string>();
    m.source_path = j.at("source_path").get<std::string>();
    m.source_bytes = j.at("source_bytes").get<uint64_t>();
    m.stored_bytes = j.at("stored_bytes").get<uint64_t>();
    m.new_pages = j.at("new_pages").get<uint64_t>();
    m.duration_ms = j.at("duration_ms").get<int64_t>();
    m.restarts = j.at("restarts").get<uint32_t>();
    const json& s = j.at("settings");
    m.compression = s.at("compression").get<std::string>();
    m.compression_level = s.at("compression_level").get<int>();
    m.verify = s.at("verify").get<std::string>();
    m.step_pages = s.at("step_pages").get<uint32_t>();
    m.verification = j.at("verification").get<std::string>();
    m.host = j.at("host").get<std::string>();
    for (const json& p : j.at("packs")) {
      ManifestPack mp;
      SQLBAK_RETURN_IF_ERROR(read_digest(p, "id", &mp.id));
      SQLBAK_RETURN_IF_ERROR(read_digest(p, "index_sha256", &mp.index_sha256));
      mp.size = p.at("size").get<uint64_t>();
      mp.index_size = p.at("index_size").get<uint64_t>();
      m.packs.push_back(mp);
    }
    for (const json& r : j.at("pages")) {
      if (!r.is_array() || r.size() != 4) return Status::Corruption("malformed page run");
      m.runs.push_back({r[0].get<uint32_t>(), r[1].get<uint32_t>(), r[2].get<uint32_t>(),
                        r[3].get<uint32_t>()});
    }
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("malformed manifest: ") + e.what());
  }
  if (m.page_size < 512 || m.page_size > 65536 || (m.page_size & (m.page_size - 1)) != 0)
    return Status::Corruption("manifest page size " + std::to_string(m.page_size) + " is invalid");
  return m;
}

std::string manifest_key(const std::string& database, const std::string& id) {
  return "manifests/" + database + "/" + id + ".json";
}

std::string make_backup_id(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  thread_local std::mt19937 rng(std::random_device{}());
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%06x", static_cast<unsigned>(rng() & 0xffffff));
  return std::string(buf) + "-" + suffix;
}

bool looks_like_backup_id(std::string_view t) {
  if (t.size() != 23 || t[8] != 'T' || t[15] != 'Z' || t[16] != '-') return false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (i == 8 || i == 15 || i == 16) continue;
    char c = t[i];
    bool digit = c >= '0' && c <= '9';
    bool hex = digit || (c >= 'a' && c <= 'f');
    if (i < 15 ? !digit : !hex) return false;
  }
  return true;
}

}  // namespace sqlbak
