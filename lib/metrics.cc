#include "lib/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "lib/timefmt.h"

namespace sqlbak {

using nlohmann::json;

namespace {

struct TargetAggregate {
  std::map<std::string, int64_t> backups{{"success", 0}, {"failure", 0}, {"cancelled", 0}};
  std::map<std::string, int64_t> verifications{{"success", 0}, {"failure", 0}};
  std::optional<JobRecord> last_success;
};

struct StoreAggregate {
  int64_t stored = 0, uploaded = 0, downloaded = 0;
  int64_t put = 0, get = 0, list = 0, del = 0;
};

// ---- rendering ----

// One metric family: HELP and TYPE, then its samples.
class Family {
 public:
  Family(std::string name, const char* type, std::string help)
      : name_(std::move(name)), type_(type), help_(std::move(help)) {}

  using Labels = std::vector<std::pair<std::string, std::string>>;
  void add(const Labels& labels, double value) { samples_.emplace_back(labels, value); }

  void write(std::string& out) const {
    out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
    out += "# TYPE " + name_ + " " + type_ + "\n";
    for (const auto& [labels, value] : samples_) {
      out += name_;
      if (!labels.empty()) {
        out += '{';
        for (size_t i = 0; i < labels.size(); ++i) {
          if (i > 0) out += ',';
          out += labels[i].first + "=\"" + escape_label_value(labels[i].second) + "\"";
        }
        out += '}';
      }
      out += ' ';
      out += format_value(value);
      out += '\n';
    }
  }

 private:
  static std::string escape_help(const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c == '\\')
        out += "\\\\";
      else if (c == '\n')
        out += "\\n";
      else
        out += c;
    }
    return out;
  }

  // Integers as integers; other values in the shortest form that reads back.
  static std::string format_value(double v) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
  }

  std::string name_;
  const char* type_;
  std::string help_;
  std::vector<std::pair<Labels, double>> samples_;
};

double number(const json& j, const char* key, double fallback = 0) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

std::string text(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& array_at(const json& j, const char* key) {
  static const json kEmpty = json::array();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : kEmpty;
}

// "YYYY-MM-DDTHH:MM:SSZ" (status' next_backup) to Unix seconds.
std::optional<int64_t> iso_to_unix(const std::string& s) {
  if (s.empty() || s.back() != 'Z') return std::nullopt;
  auto ms = parse_timestamp(s, 0);
  if (!ms.ok()) return std::nullopt;
  return *ms / 1000;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

Result<json> collect_metrics(Workspace& ws) {
  Catalog* catalog = ws.catalog();
  if (catalog == nullptr)
    return Status::IOError("no job history: the catalog in " + ws.config().state_dir + " cannot be opened");
  // Every row, oldest first: the catalog has no aggregate queries, and a
  // scrape every few seconds of a history of some ten thousand rows is cheap.
  auto rows = catalog->jobs_since(0, "");
  if (!rows.ok()) return rows.status();

  const Config& config = ws.config();
  std::map<std::pair<std::string, std::string>, TargetAggregate> per_db;  // (db, target)
  std::map<std::string, StoreAggregate> per_target;
  for (const DatabaseConfig& db : config.databases)
    for (const std::string& t : db.settings.targets) per_db[{db.name, t}];
  for (const auto& [name, target] : config.targets) per_target[name];

  for (const JobRecord& j : *rows) {
    if (auto t = per_target.find(j.target); t != per_target.end()) {
      StoreAggregate& s = t->second;
      if (j.kind == "prune" || (j.kind == "backup" && j.result == "success")) s.stored += j.stored_bytes;
      s.stored = std::max<int64_t>(s.stored, 0);
      s.uploaded += j.bytes_uploaded;
      s.downloaded += j.bytes_downloaded;
      s.put += j.put_requests;
      s.get += j.get_requests;
      s.list += j.list_requests;
      s.del += j.delete_requests;
    }
    if (config.find_database(j.database) == nullptr) continue;
    if (j.kind == "backup") {
      // A backup that failed before it reached any target has target "".
      auto it = per_db.find({j.database, j.target});
      if (it == per_db.end()) {
        if (!j.target.empty()) continue;  // a target no longer configured for it
        it = per_db.emplace(std::make_pair(j.database, j.target), TargetAggregate{}).first;
      }
      ++it->second.backups[j.result];
      if (j.result == "success") it->second.last_success = j;  // rows are oldest first
    } else if (j.kind == "verify") {
      auto it = per_db.find({j.database, j.target});
      if (it == per_db.end()) continue;
      ++it->second.verifications[j.result == "success" ? "success" : "failure"];
    }
  }

  json databases = json::array();
  std::map<std::string, json> by_name;
  for (const DatabaseConfig& db : config.databases) by_name[db.name] = json::array();
  for (const auto& [key, agg] : per_db) {
    json t{{"target", key.second}, {"backups", agg.backups}, {"verifications", agg.verifications}};
    if (agg.last_success) {
      const JobRecord& j = *agg.last_success;
      t["last_success"] = {{"id", j.backup_id},
                           {"started_ms", j.started_at_ms},
                           {"duration_ms", j.duration_ms},
                           {"database_bytes", j.database_bytes},
                           {"stored_bytes", j.stored_bytes},
                           {"changed_pages", j.changed_pages}};
    } else {
      t["last_success"] = nullptr;
    }
    by_name[key.first].push_back(std::move(t));
  }
  for (auto& [name, targets] : by_name)
    databases.push_back({{"name", name}, {"targets", std::move(targets)}});

  json targets = json::array();
  for (const auto& [name, s] : per_target)
    targets.push_back({{"target", name},
                       {"stored_bytes", s.stored},
                       {"uploaded_bytes", s.uploaded},
                       {"downloaded_bytes", s.downloaded},
                       {"requests", {{"put", s.put}, {"get", s.get}, {"list", s.list}, {"delete", s.del}}}});
  return json{{"databases", std::move(databases)}, {"targets", std::move(targets)}};
}

std::string render_metrics(const json& status, const json& collected, const json& health) {
  std::deque<Family> families;  // references to its elements stay valid as it grows
  auto family = [&families](std::string name, const char* type, std::string help) -> Family& {
    families.emplace_back(std::move(name), type, std::move(help));
    return families.back();
  };

  Family& info = family("sqlbak_info", "gauge", "sqlbakd build information; always 1.");
  info.add({{"version", text(status, "version")}}, 1);
  family("sqlbak_uptime_seconds", "gauge", "Seconds since sqlbakd started.")
      .add({}, number(status, "uptime_seconds"));

  Family& scrape = family("sqlbak_scrape_error", "gauge",
                          "1 when a source of these metrics could not be read for this scrape "
                          "(its families are missing), else 0.");
  scrape.add({{"source", "catalog"}}, collected.is_object() ? 0 : 1);
  scrape.add({{"source", "health"}}, health.is_object() ? 0 : 1);

  // Per database, from `status`: the running job and the next scheduled backup.
  Family& running =
      family("sqlbak_job_running", "gauge", "1 while a backup of the database is running, else 0.");
  Family& progress = family("sqlbak_job_progress_ratio", "gauge",
                            "Progress of the running backup, pages copied / pages in the database (0..1); "
                            "0 when none is running.");
  Family& next = family("sqlbak_next_backup_timestamp_seconds", "gauge",
                        "When the next scheduled backup of the database is due, Unix time.");
  for (const json& db : array_at(status, "databases")) {
    const std::string name = text(db, "name");
    const json& job = db.contains("running") ? db["running"] : json();
    const bool is_running = job.is_object();
    running.add({{"db", name}}, is_running ? 1 : 0);
    const double total = number(job, "total");
    progress.add({{"db", name}}, is_running && total > 0 ? std::min(1.0, number(job, "done") / total) : 0);
    if (auto t = iso_to_unix(text(db, "next_backup"))) next.add({{"db", name}}, static_cast<double>(*t));
  }

  if (health.is_object()) {
    Family& state = family("sqlbak_health_state", "gauge",
                           "Health of the database: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN "
                           "(the exit codes of `sqlbakctl health`).");
    static const std::map<std::string, int> kStates = {
        {"OK", 0}, {"WARNING", 1}, {"CRITICAL", 2}, {"UNKNOWN", 3}};
    for (const json& db : array_at(health, "databases")) {
      auto it = kStates.find(text(db, "state"));
      state.add({{"db", text(db, "name")}}, it == kStates.end() ? 3 : it->second);
    }
  }

  if (collected.is_object()) {
    Family& last_time =
        family("sqlbak_last_success_timestamp_seconds", "gauge",
               "Start of the newest successful backup of the database to the target, Unix time.");
    Family& duration = family("sqlbak_last_backup_duration_seconds", "gauge",
                              "Duration of the newest successful backup of the database to the target.");
    Family& db_bytes = family("sqlbak_last_backup_database_bytes", "gauge",
                              "Size of the database image in the newest successful backup.");
    Family& stored = family("sqlbak_last_backup_stored_bytes", "gauge",
                            "Bytes the newest successful backup added to the target (after deduplication "
                            "and compression).");
    Family& changed = family("sqlbak_last_backup_changed_pages", "gauge",
                             "Pages the newest successful backup had to store (not already in the target).");
    Family& backups = family("sqlbak_backups_total", "counter",
                             "Backup jobs recorded in the catalog, by result (success, failure, cancelled); "
                             "target \"\" counts backups that failed before reaching a target.");
    Family& verifications =
        family("sqlbak_verifications_total", "counter",
               "Verifications of backups recorded in the catalog, by result (success, failure).");
    Family& verify_failures = family("sqlbak_verification_failures_total", "counter",
                                     "Verifications of backups that failed (a checksum, decompression or "
                                     "integrity check did not pass).");
    for (const json& db : array_at(collected, "databases")) {
      const std::string name = text(db, "name");
      for (const json& t : array_at(db, "targets")) {
        const Family::Labels labels{{"db", name}, {"target", text(t, "target")}};
        if (t.contains("backups") && t["backups"].is_object())
          for (const auto& [result, count] : t["backups"].items())
            backups.add({{"db", name}, {"target", text(t, "target")}, {"result", result}},
                        count.is_number() ? count.get<double>() : 0);
        // Target "": backups that failed before reaching a target; nothing is verified there.
        if (!text(t, "target").empty() && t.contains("verifications") && t["verifications"].is_object()) {
          for (const auto& [result, count] : t["verifications"].items())
            verifications.add({{"db", name}, {"target", text(t, "target")}, {"result", result}},
                              count.is_number() ? count.get<double>() : 0);
          verify_failures.add(labels, number(t["verifications"], "failure"));
        }
        const json& last = t.contains("last_success") ? t["last_success"] : json();
        if (!last.is_object()) continue;
        last_time.add(labels, std::floor(number(last, "started_ms") / 1000));
        duration.add(labels, number(last, "duration_ms") / 1000);
        db_bytes.add(labels, number(last, "database_bytes"));
        stored.add(labels, number(last, "stored_bytes"));
        changed.add(labels, number(last, "changed_pages"));
      }
    }

    Family& target_stored = family("sqlbak_target_stored_bytes", "gauge",
                                   "Bytes held by the target according to the catalog: what backups added "
                                   "minus what prunes removed.");
    Family& requests =
        family("sqlbak_target_requests_total", "counter",
               "Requests made to the target by recorded jobs, by method (put, get, list, delete).");
    Family& uploaded =
        family("sqlbak_target_uploaded_bytes_total", "counter", "Bytes sent to the target by recorded jobs.");
    Family& downloaded = family("sqlbak_target_downloaded_bytes_total", "counter",
                                "Bytes read from the target by recorded jobs.");
    for (const json& t : array_at(collected, "targets")) {
      const std::string name = text(t, "target");
      target_stored.add({{"target", name}}, number(t, "stored_bytes"));
      uploaded.add({{"target", name}}, number(t, "uploaded_bytes"));
      downloaded.add({{"target", name}}, number(t, "downloaded_bytes"));
      for (const char* method : {"put", "get", "list", "delete"})
        requests.add({{"target", name}, {"method", method}},
                     t.contains("requests") ? number(t["requests"], method) : 0);
    }
  }

  std::string out;
  for (const Family& f : families) f.write(out);
  return out;
}

}  // namespace sqlbak
