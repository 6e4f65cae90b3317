#include "lib/manifest.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <limits>
#include <random>
#include <utility>

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

// Reads V, the manifest field NAME, into OUT. Only a JSON integer in OUT's
// range is accepted: nlohmann holds 1.5, 1e300 and integers beyond 64 bits as
// doubles, and get<T>() of a double outside T's range is undefined behaviour;
// an integer outside T's range would be truncated to a valid-looking value.
template <typename T>
Status read_integer(const json& v, const std::string& name, T* out) {
  bool in_range = false;
  if (v.is_number_unsigned()) {
    in_range = std::in_range<T>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    in_range = std::in_range<T>(v.get<int64_t>());
  } else {
    return Status::Corruption("manifest field '" + name + "' is not an integer: " + v.dump());
  }
  if (!in_range)
    return Status::Corruption("manifest field '" + name + "' is out of range (" +
                              std::to_string(std::numeric_limits<T>::min()) + ".." +
                              std::to_string(std::numeric_limits<T>::max()) + "): " + v.dump());
  *out = v.get<T>();
  return Status::Ok();
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
  // Compared as JSON numbers: get<int>() would read 4294967297 as 1.
  if (w["format"] != kManifestFormatVersion)
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
    SQLBAK_RETURN_IF_ERROR(read_integer(j.at("created_unix_ms"), "created_unix_ms", &m.created_unix_ms));
    m.kind = j.at("kind").get<std::string>();
    SQLBAK_RETURN_IF_ERROR(read_integer(j.at("page_size"), "page_size", &m.page_size));
    SQLBAK_RETURN_IF_ERROR(read_integer(j.at("page_count"), "page_count", &m.page_count));
    m.journal_mode = j.at("journal_mode").get<std::string>();
    m.sqlite_version = j.at("sqlite_version").get<std::string>();
    m.source_path = j.at("source_path").get<std::string>();
    SQLBAK_RETURN_IF_ERROR(read_integer(j.at("source_bytes"), "source_bytes", &m.source_bytes));
    SQLBAK_RETURN_IF_ERROR(read_integer(j.at("stored_bytes"), "stored_bytes", &m.stored_bytes));
    SQLBAK_RETURN_IF_ERROR(read_integer(j.at("new_pages"), "new_pages", &m.new_pages));
    SQLBAK_RETURN_IF_ERROR(read_integer(j.at("duration_ms"), "duration_ms", &m.duration_ms));
    SQLBAK_RETURN_IF_ERROR(read_integer(j.at("restarts"), "restarts", &m.restarts));
    const json& s = j.at("settings");
    m.compression = s.at("compression").get<std::string>();
    SQLBAK_RETURN_IF_ERROR(
        read_integer(s.at("compression_level"), "settings.compression_level", &m.compression_level));
    m.verify = s.at("verify").get<std::string>();
    SQLBAK_RETURN_IF_ERROR(read_integer(s.at("step_pages"), "settings.step_pages", &m.step_pages));
    m.verification = j.at("verification").get<std::string>();
    m.host = j.at("host").get<std::string>();
    // Iterating a JSON scalar would visit the scalar itself.
    if (!j.at("packs").is_array()) return Status::Corruption("manifest field 'packs' is not a list");
    for (const json& p : j.at("packs")) {
      const std::string where = "packs[" + std::to_string(m.packs.size()) + "]";
      ManifestPack mp;
      SQLBAK_RETURN_IF_ERROR(read_digest(p, "id", &mp.id));
      SQLBAK_RETURN_IF_ERROR(read_digest(p, "index_sha256", &mp.index_sha256));
      SQLBAK_RETURN_IF_ERROR(read_integer(p.at("size"), where + ".size", &mp.size));
      SQLBAK_RETURN_IF_ERROR(read_integer(p.at("index_size"), where + ".index_size", &mp.index_size));
      m.packs.push_back(mp);
    }
    if (!j.at("pages").is_array()) return Status::Corruption("manifest field 'pages' is not a list");
    for (const json& r : j.at("pages")) {
      if (!r.is_array() || r.size() != 4) return Status::Corruption("malformed page run");
      const std::string where = "pages[" + std::to_string(m.runs.size()) + "]";
      PageRun run;
      SQLBAK_RETURN_IF_ERROR(read_integer(r[0], where + "[0]", &run.first_page));
      SQLBAK_RETURN_IF_ERROR(read_integer(r[1], where + "[1]", &run.count));
      SQLBAK_RETURN_IF_ERROR(read_integer(r[2], where + "[2]", &run.pack));
      SQLBAK_RETURN_IF_ERROR(read_integer(r[3], where + "[3]", &run.first_entry));
      m.runs.push_back(run);
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
