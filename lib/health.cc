#include "lib/health.h"

#include <sys/statvfs.h>

#include <algorithm>

#include "lib/duration.h"
#include "lib/timefmt.h"

namespace sqlbak {

using nlohmann::json;

const char* to_string(HealthState s) {
  switch (s) {
    case HealthState::kOk: return "OK";
    case HealthState::kWarning: return "WARNING";
    case HealthState::kCritical: return "CRITICAL";
    case HealthState::kUnknown: return "UNKNOWN";
  }
  return "UNKNOWN";
}

namespace {

std::string human_age(int64_t ms) {
  const int64_t s = std::max<int64_t>(ms / 1000, 0);
  if (s < 120) return std::to_string(s) + "s";
  if (s < 2 * 3600) return std::to_string(s / 60) + "min";
  if (s < 2 * 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string human_bytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

HealthState worst(HealthState a, HealthState b) { return static_cast<int>(a) >= static_cast<int>(b) ? a : b; }

std::vector<HealthFinding> judge_target(const HealthDatabaseObservation& db,
                                        const HealthTargetObservation& t, int64_t now_ms) {
  std::vector<HealthFinding> out;
  auto add = [&](HealthState s, std::string message) {
    out.push_back({db.name, t.target, s, std::move(message)});
  };
  const std::string where = "'" + db.name + "' on target '" + t.target + "'";
  if (!t.access.ok()) add(HealthState::kCritical, where + ": target unusable: " + t.access.message());
  if (!t.newest_backup_ms) {
    if (t.access.ok()) add(HealthState::kCritical, where + ": no backup at all");
  } else {
    const int64_t age = now_ms - *t.newest_backup_ms;
    const int64_t max_age_ms = static_cast<int64_t>(db.max_age.count()) * 1000;
    const std::string age_text = where + ": last backup " + t.newest_backup_id + " is " +
                                 human_age(age) + " old (max_age " + format_duration(db.max_age) + ")";
    if (max_age_ms > 0 && age > 2 * max_age_ms)
      add(HealthState::kCritical, age_text + ", more than twice max_age");
    else if (max_age_ms > 0 && age > max_age_ms)
      add(HealthState::kWarning, age_text);
  }
  for (const auto& f : t.failed_verifications)
    add(HealthState::kCritical, where + ": backup " + f.backup_id + " failed verification at " +
                                    format_iso_utc(f.verified_at_ms) + ": " + f.error +
                                    " (run `sqlbakctl verify " + f.backup_id + "`)");
  if (t.free_bytes && t.newest_backup_ms) {
    if (*t.free_bytes < t.newest_stored_bytes)
      add(HealthState::kCritical, where + ": " + human_bytes(*t.free_bytes) +
                                      " free, less than the last backup stored (" +
                                      human_bytes(t.newest_stored_bytes) + ")");
    else if (*t.free_bytes < t.newest_database_bytes)
      add(HealthState::kWarning, where + ": " + human_bytes(*t.free_bytes) +
                                     " free, less than the database's size (" +
                                     human_bytes(t.newest_database_bytes) + ")");
  }
  return out;
}

}  // namespace

HealthReport evaluate_health(const std::vector<HealthDatabaseObservation>& databases, int64_t now_ms) {
  HealthReport report;
  for (const HealthDatabaseObservation& db : databases) {
    for (const HealthTargetObservation& t : db.targets) {
      auto f = judge_target(db, t, now_ms);
      report.findings.insert(report.findings.end(), f.begin(), f.end());
    }
    bool any_backup = std::any_of(db.targets.begin(), db.targets.end(),
                                  [](const auto& t) { return t.newest_backup_ms.has_value(); });
    if (!db.last_backup_error.empty() && any_backup)
      report.findings.push_back({db.name, "", HealthState::kWarning,
                                 "'" + db.name + "': the last backup attempt, at " +
                                     format_iso_utc(db.last_backup_attempt_ms) +
                                     ", failed: " + db.last_backup_error});
    if (db.targets.empty())
      report.findings.push_back({db.name, "", HealthState::kCritical,
                                 "'" + db.name + "': no target to back up to"});
  }
  std::stable_sort(report.findings.begin(), report.findings.end(),
                   [](const HealthFinding& a, const HealthFinding& b) {
                     return static_cast<int>(a.state) > static_cast<int>(b.state);
                   });
  for (const HealthFinding& f : report.findings) report.state = worst(report.state, f.state);

  const std::string state = to_string(report.state);
  if (report.findings.empty()) {
    report.summary = "SQLBAK OK - " + std::to_string(databases.size()) +
                     " database(s) backed up within max_age";
  } else {
    int problems = 0;
    for (const HealthFinding& f : report.findings)
      if (f.state != HealthState::kOk) ++problems;
    report.summary = "SQLBAK " + state + " - " + report.findings.front().message;
    if (problems > 1) report.summary += " (+" + std::to_string(problems - 1) + " more)";
  }
  return report;
}

Result<std::vector<HealthDatabaseObservation>> observe_health(Workspace& ws,
                                                              const std::string& database) {
  const Config& config = ws.config();
  std::vector<HealthDatabaseObservation> out;
  for (const DatabaseConfig& db : config.databases) {
    if (!database.empty() && db.name != database) continue;
    HealthDatabaseObservation o;
    o.name = db.name;
    o.max_age = db.settings.max_age;
    Catalog* catalog = ws.catalog();
    if (catalog != nullptr) {
      auto last = catalog->jobs("backup", db.name, 1);
      if (last.ok() && !last->empty() && (*last)[0].result == "failure") {
        o.last_backup_error = (*last)[0].error;
        o.last_backup_attempt_ms = (*last)[0].started_at_ms;
      }
    }
    for (const std::string& target : db.settings.targets) {
      HealthTargetObservation t;
      t.target = target;
      auto repo = ws.repository(target, true);
      if (!repo.ok()) {
        t.access = repo.status();
        o.targets.push_back(std::move(t));
        continue;
      }
      auto refs = (*repo)->list_manifest_refs(db.name);
      if (!refs.ok()) {
        t.access = refs.status();
        o.targets.push_back(std::move(t));
        continue;
      }
      // Ids sort in creation order: newest first without reading every manifest.
      std::sort(refs->begin(), refs->end(),
                [](const ManifestRef& a, const ManifestRef& b) { return a.id > b.id; });
      int checked = 0;
      for (const ManifestRef& ref : *refs) {
        if (checked >= std::max(1, db.settings.verify_latest)) break;
        auto m = (*repo)->read_manifest(ref);
        if (!m.ok()) {
          t.failed_verifications.push_back({ref.id, ws.now_ms(), m.status().message()});
          ++checked;
          continue;
        }
        if (!t.newest_backup_ms) {
          t.newest_backup_ms = m->created_unix_ms;
          t.newest_backup_id = m->id;
          t.newest_database_bytes = m->source_bytes;
          t.newest_stored_bytes = m->stored_bytes;
        }
        if (catalog != nullptr) {
          auto v = catalog->last_job_for_backup("verify", ref.id, target);
          if (v.ok() && v->has_value() && (*v)->result == "failure")
            t.failed_verifications.push_back({ref.id, (*v)->started_at_ms, (*v)->error});
        }
        ++checked;
      }
      auto tc = config.targets.find(target);
      if (tc != config.targets.end() && tc->second.type == "local") {
        struct statvfs fs {};
        if (::statvfs(tc->second.path.c_str(), &fs) == 0)
          t.free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
      }
      o.targets.push_back(std::move(t));
    }
    out.push_back(std::move(o));
  }
  if (!database.empty() && out.empty())
    return Status::NotFound("no database named '" + database + "' in " + config.source_file);
  return out;
}

json health_to_json(const HealthReport& report, const std::vector<HealthDatabaseObservation>& observed,
                    int64_t now_ms) {
  json findings = json::array(), dbs = json::array();
  for (const HealthFinding& f : report.findings)
    findings.push_back({{"database", f.database}, {"target", f.target}, {"state", to_string(f.state)},
                        {"message", f.message}});
  for (const HealthDatabaseObservation& db : observed) {
    HealthState db_state = HealthState::kOk;
    json targets = json::array();
    for (const HealthTargetObservation& t : db.targets) {
      HealthState ts = HealthState::kOk;
      for (const HealthFinding& f : report.findings)
        if (f.database == db.name && f.target == t.target) ts = worst(ts, f.state);
      json tj{{"target", t.target}, {"state", to_string(ts)}};
      tj["newest_backup"] = t.newest_backup_ms ? json(t.newest_backup_id) : json(nullptr);
      tj["newest_backup_time"] = t.newest_backup_ms ? json(format_iso_utc(*t.newest_backup_ms)) : json(nullptr);
      tj["age_seconds"] = t.newest_backup_ms ? json((now_ms - *t.newest_backup_ms) / 1000) : json(nullptr);
      tj["free_bytes"] = t.free_bytes ? json(*t.free_bytes) : json(nullptr);
      targets.push_back(tj);
    }
    for (const HealthFinding& f : report.findings)
      if (f.database == db.name) db_state = worst(db_state, f.state);
    dbs.push_back({{"name", db.name}, {"state", to_string(db_state)}, {"targets", targets}});
  }
  return json{{"state", to_string(report.state)}, {"exit_code", static_cast<int>(report.state)},
              {"summary", report.summary}, {"findings", findings}, {"databases", dbs}};
}

Result<json> check_health(Workspace& ws, const std::string& database) {
  auto observed = observe_health(ws, database);
  if (!observed.ok()) return observed.status();
  const int64_t now = ws.now_ms();
  return health_to_json(evaluate_health(*observed, now), *observed, now);
}

}  // namespace sqlbak
