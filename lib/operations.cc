#include "lib/operations.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iostream>

#include "lib/target_store.h"
#include "lib/health.h"
#include "lib/metrics.h"
#include "lib/report.h"
#include "lib/restore.h"
#include "lib/rotation.h"
#include "lib/timefmt.h"

namespace sqlbak {

using nlohmann::json;

namespace {

void add_transfers(const TransferCounters& d, JobRecord* job) {
  job->put_requests += static_cast<int64_t>(d.put_requests);
  job->get_requests += static_cast<int64_t>(d.get_requests);
  job->list_requests += static_cast<int64_t>(d.list_requests);
  job->delete_requests += static_cast<int64_t>(d.delete_requests);
  job->bytes_uploaded += static_cast<int64_t>(d.bytes_uploaded);
  job->bytes_downloaded += static_cast<int64_t>(d.bytes_downloaded);
}

}  // namespace

Workspace::Workspace(Config config, std::function<int64_t()> now_ms)
    : config_(std::move(config)), now_ms_(std::move(now_ms)) {}

Result<Repository*> Workspace::repository(const std::string& name, bool writable) {
  auto it = repos_.find(name);
  if (it != repos_.end()) return it->second.get();
  auto t = config_.targets.find(name);
  if (t == config_.targets.end())
    return Status::NotFound("no target named '" + name + "' in " + config_.source_file);
  std::weak_ptr<WarningList> sink = warnings_;
  auto store = open_target_store(t->second, writable, [sink](const std::string& text) {
    if (auto list = sink.lock()) {
      std::lock_guard<std::mutex> g(list->mu);
      list->items.push_back(text);
    } else {
      std::cerr << program_invocation_short_name << ": warning: " << text << "\n";
    }
  });
  // A missing or unusable directory is an error for readers too: an empty
  // listing would hide a mistyped path or an unmounted disk.
  if (!store.ok()) return store.status().code() == ErrorCode::kNotFound
                              ? Status::InvalidArgument(store.status().message())
                              : store.status();
  auto repo = Repository::open(std::move(store).value(), name, writable);
  if (!repo.ok()) return repo.status();
  Repository* raw = repo->get();
  repos_[name] = std::move(repo).value();
  return raw;
}

Result<std::vector<Repository*>> Workspace::readable_targets(const std::string& name) {
  std::vector<Repository*> out;
  for (const auto& [target_name, target] : config_.targets) {
    if (!name.empty() && target_name != name) continue;
    auto r = repository(target_name, false);
    if (r.ok()) {
      out.push_back(*r);
    } else if (r.status().code() != ErrorCode::kNotFound || !name.empty()) {
      // kNotFound here: an existing directory that holds no repository yet.
      return r.status();
    }
  }
  if (!name.empty() && out.empty() && !config_.targets.count(name))
    return Status::NotFound("no target named '" + name + "' in " + config_.source_file);
  return out;
}

Result<std::pair<Repository*, ManifestRef>> Workspace::locate(const std::string& id,
                                                              const std::string& target) {
  auto repos = readable_targets(target);
  if (!repos.ok()) return repos.status();
  for (Repository* repo : *repos) {
    auto ref = repo->find_backup(id);
    if (ref.ok()) return std::make_pair(repo, *ref);
    if (ref.status().code() != ErrorCode::kNotFound) return ref.status();
  }
  return Status::NotFound("backup " + id + " does not exist on " +
                          (target.empty() ? "any target of " + config_.source_file
                                          : "target '" + target + "'"));
}

Catalog* Workspace::catalog() {
  if (catalog_ || catalog_failed_) return catalog_.get();
  auto c = Catalog::open(config_.state_dir);
  if (!c.ok()) {
    catalog_failed_ = true;
    warn("job history not recorded: " + c.status().message());
    return nullptr;
  }
  catalog_ = std::move(c).value();
  return catalog_.get();
}

TransferCounters Workspace::take_transfers(const std::string& name) {
  auto repo = repos_.find(name);
  if (repo == repos_.end()) return {};
  const TransferCounters now = repo->second->store().counters();
  const TransferCounters before = std::exchange(recorded_[name], now);
  TransferCounters d;
  d.put_requests = now.put_requests - before.put_requests;
  d.get_requests = now.get_requests - before.get_requests;
  d.list_requests = now.list_requests - before.list_requests;
  d.delete_requests = now.delete_requests - before.delete_requests;
  d.bytes_uploaded = now.bytes_uploaded - before.bytes_uploaded;
  d.bytes_downloaded = now.bytes_downloaded - before.bytes_downloaded;
  return d;
}

void Workspace::record(const JobRecord& job) {
  JobRecord charged = job;
  if (repos_.count(job.target) != 0) {
    charged.put_requests = charged.get_requests = charged.list_requests = charged.delete_requests = 0;
    charged.bytes_uploaded = charged.bytes_downloaded = 0;
    add_transfers(take_transfers(job.target), &charged);
  }
  if (Catalog* c = catalog()) {
    auto r = c->record(charged);
    if (!r.ok()) warn(r.status().message());
  }
}

void Workspace::warn(std::string text) {
  std::lock_guard<std::mutex> g(warnings_->mu);
  warnings_->items.push_back(std::move(text));
}

std::string Workspace::scratch_dir() {
  std::string dir = config_.state_dir + "/tmp";
  if (::mkdir(config_.state_dir.c_str(), 0750) == 0 || errno == EEXIST) {
    if ((::mkdir(dir.c_str(), 0750) == 0 || errno == EEXIST) && ::access(dir.c_str(), W_OK) == 0)
      return dir;
  }
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/var/tmp";
}

std::vector<std::string> Workspace::take_warnings() {
  std::lock_guard<std::mutex> g(warnings_->mu);
  return std::exchange(warnings_->items, {});
}

JobRecord finished_job(const std::string& kind, const std::string& database,
                       const std::string& target, const std::string& backup_id,
                       int64_t started_ms, int64_t ended_ms, const Manifest* backup,
                       const Status& outcome) {
  JobRecord job;
  job.kind = kind;
  job.database = database;
  job.target = target;
  job.backup_id = backup_id;
  job.started_at_ms = started_ms;
  job.duration_ms = ended_ms - started_ms;
  if (backup != nullptr) {
    job.database_bytes = static_cast<int64_t>(backup->source_bytes);
    job.page_count = backup->page_count;
    job.page_size = backup->page_size;
  }
  job.result = outcome.ok() ? "success"
               : outcome.code() == ErrorCode::kCancelled ? "cancelled"
                                                         : "failure";
  job.error = outcome.message();
  return job;
}

json manifest_summary(const Manifest& m, const std::string& target) {
  return json{{"id", m.id},
              {"database", m.database},
              {"target", target},
              {"created", m.created},
              {"created_unix_ms", m.created_unix_ms},
              {"kind", m.kind},
              {"page_size", m.page_size},
              {"page_count", m.page_count},
              {"database_bytes", m.source_bytes},
              {"stored_bytes", m.stored_bytes},
              {"new_pages", m.new_pages},
              {"ratio", m.stored_bytes == 0 ? 0.0
                                            : static_cast<double>(m.source_bytes) /
                                                  static_cast<double>(m.stored_bytes)},
              {"duration_ms", m.duration_ms},
              {"verified", m.verification}};
}

Result<json> list_backups(Workspace& ws, const std::string& database, const std::string& target) {
  auto repos = ws.readable_targets(target);
  if (!repos.ok()) return repos.status();
  std::vector<std::pair<Manifest, std::string>> all;
  for (Repository* repo : *repos) {
    auto ms = repo->list_manifests(database);
    if (!ms.ok()) return ms.status();
    for (Manifest& m : *ms) all.emplace_back(std::move(m), repo->target_name());
  }
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.first.created_unix_ms > b.first.created_unix_ms;
  });
  json arr = json::array();
  Catalog* catalog = ws.catalog();
  for (const auto& [m, t] : all) {
    json summary = manifest_summary(m, t);
    // The newest verification after the backup (scheduled or asked for); null
    // when there was none, or the history is elsewhere (a fresh host).
    summary["last_verification"] = nullptr;
    if (catalog != nullptr) {
      auto v = catalog->last_job_for_backup("verify", m.id, t);
      if (v.ok() && v->has_value())
        summary["last_verification"] = {{"time", format_iso_utc((*v)->started_at_ms)},
                                         {"result", (*v)->result},
                                         {"error", (*v)->error}};
    }
    arr.push_back(std::move(summary));
  }
  return json{{"backups", arr}};
}

Result<json> show_backup(Workspace& ws, const std::string& id, const std::string& target) {
  auto found = ws.locate(id, target);
  if (!found.ok()) return found.status();
  auto m = found->first->read_manifest(found->second);
  if (!m.ok()) return m.status().WithContext("backup " + id);
  std::string text;
  SQLBAK_RETURN_IF_ERROR(found->first->store().get(found->second.key, &text));
  return json{{"target", found->first->target_name()}, {"manifest", json::parse(text)["manifest"]}};
}

Result<json> verify_backups(Workspace& ws, const std::vector<std::string>& ids,
                            const std::string& database, bool all, const std::string& target) {
  if (ids.empty() && database.empty() && !all)
    return Status::Usage("verify: name backup ids, or use --db DB or --all");
  json results = json::array();
  std::vector<std::pair<Repository*, ManifestRef>> chosen;
  for (const std::string& id : ids) {
    auto found = ws.locate(id, target);
    if (!found.ok()) {
      results.push_back({{"id", id}, {"database", ""}, {"target", target}, {"ok", false},
                         {"error", found.status().message()}});
      continue;
    }
    chosen.push_back(*found);
  }
  if (ids.empty()) {
    auto repos = ws.readable_targets(target);
    if (!repos.ok()) return repos.status();
    for (Repository* repo : *repos) {
      auto refs = repo->list_manifest_refs(database);
      if (!refs.ok()) return refs.status();
      for (const ManifestRef& ref : *refs) chosen.emplace_back(repo, ref);
    }
  }
  const std::string scratch = ws.scratch_dir();
  for (const auto& [repo, ref] : chosen) {
    const int64_t started = ws.now_ms();
    std::string error;
    auto m = repo->read_manifest(ref);
    if (!m.ok()) {
      error = m.status().WithContext("backup " + ref.id).message();
    } else {
      auto check = verify_backup(*repo, *m, scratch, VerifyMode::kIntegrity);
      if (!check.ok()) error = check.status().message();
    }
    results.push_back({{"id", ref.id}, {"database", ref.database}, {"target", repo->target_name()},
                       {"ok", error.empty()}, {"error", error}});
    ws.record(finished_job("verify", ref.database, repo->target_name(), ref.id, started,
                           ws.now_ms(), m.ok() ? &*m : nullptr,
                           error.empty() ? Status::Ok() : Status::Corruption(error)));
  }
  return json{{"results", results}};
}

Result<json> verify_latest(Workspace& ws, const DatabaseConfig& db) {
  json results = json::array();
  for (const std::string& target : db.settings.targets) {
    auto repo = ws.repository(target, false);
    if (!repo.ok()) {
      if (repo.status().code() == ErrorCode::kNotFound) continue;  // nothing there yet
      results.push_back({{"id", ""}, {"database", db.name}, {"target", target}, {"ok", false},
                         {"error", repo.status().message()}});
      continue;
    }
    auto refs = (*repo)->list_manifest_refs(db.name);
    if (!refs.ok()) return refs.status();
    // Ids sort in creation order.
    std::sort(refs->begin(), refs->end(),
              [](const ManifestRef& a, const ManifestRef& b) { return a.id > b.id; });
    std::vector<std::string> ids;
    for (const ManifestRef& ref : *refs) {
      if (static_cast<int>(ids.size()) >= db.settings.verify_latest) break;
      ids.push_back(ref.id);
    }
    if (ids.empty()) continue;
    auto r = verify_backups(ws, ids, "", false, target);
    if (!r.ok()) return r.status();
    for (json& v : (*r)["results"]) results.push_back(std::move(v));
  }
  return json{{"results", results}};
}

Result<json> restore(Workspace& ws, const RestoreRequest& a) {
  std::pair<Repository*, ManifestRef> found;
  if (!a.at.empty()) {
    auto at = parse_timestamp(a.at, ws.now_ms());
    if (!at.ok()) return Status::Usage(at.status().message());
    auto repos = ws.readable_targets(a.target);
    if (!repos.ok()) return repos.status();
    int64_t best_ms = -1;
    for (Repository* repo : *repos) {
      auto refs = repo->list_manifest_refs(a.what);
      if (!refs.ok()) return refs.status();
      for (const ManifestRef& ref : *refs) {
        auto m = repo->read_manifest(ref);
        if (m.ok() && m->created_unix_ms <= *at && m->created_unix_ms > best_ms) {
          best_ms = m->created_unix_ms;
          found = {repo, ref};
        }
      }
    }
    if (best_ms < 0)
      return Status::NotFound("no backup of database '" + a.what + "' was taken at or before " + a.at);
  } else {
    auto f = ws.locate(a.what, a.target);
    if (!f.ok()) return f.status();
    found = *f;
  }
  const int64_t started = ws.now_ms();
  auto m = found.first->read_manifest(found.second);
  Status st = m.ok() ? restore_backup(*found.first, *m, a.to, a.force)
                     : m.status().WithContext("backup " + found.second.id);
  ws.record(finished_job("restore", found.second.database, found.first->target_name(),
                         found.second.id, started, ws.now_ms(), m.ok() ? &*m : nullptr, st));
  if (!st.ok()) return st;
  return json{{"id", m->id}, {"database", m->database}, {"created", m->created},
              {"target", found.first->target_name()}, {"path", a.to}, {"bytes", m->source_bytes}};
}

Result<json> run_query(Workspace& ws, const Request& request) {
  const json& a = request.args;
  if (request.command == "list") return list_backups(ws, arg_text(a, "database"), arg_text(a, "target"));
  if (request.command == "metrics") return collect_metrics(ws);
  if (request.command == "show") return show_backup(ws, arg_text(a, "id"), arg_text(a, "target"));
  if (request.command == "verify")
    return verify_backups(ws, arg_strings(a, "ids"), arg_text(a, "database"), a.value("all", false),
                          arg_text(a, "target"));
  if (request.command == "health") return check_health(ws, arg_text(a, "database"));
  if (request.command == "report") {
    Catalog* catalog = ws.catalog();
    if (catalog == nullptr)
      return Status::IOError("no job history: the catalog in " + ws.config().state_dir +
                             " cannot be opened");
    const json& days = a.contains("days") ? a["days"] : json(7);
    if (!days.is_number_integer()) return Status::Usage("report: days must be a whole number");
    // Range-checked as 64 bits: a huge value must not wrap into a valid int.
    const int64_t n = days.get<int64_t>();
    if (n < kReportMinDays || n > kReportMaxDays)
      return Status::Usage("report: --days must be between " + std::to_string(kReportMinDays) +
                           " and " + std::to_string(kReportMaxDays) + ", not " + std::to_string(n));
    return build_report(*catalog, static_cast<int>(n), arg_text(a, "database"), ws.now_ms());
  }
  if (request.command == "rotate")
    return rotate(ws, RotateRequest{arg_text(a, "database"), a.value("dry_run", false)});
  return Status::Usage("'" + request.command + "' is not a query");
}

Result<BackupRequest> prepare_backup(Workspace& ws, const DatabaseConfig& db) {
  BackupRequest req;
  req.database = db;
  req.now_ms = [&ws] { return ws.now_ms(); };
  req.scratch_dir = ws.scratch_dir();
  req.compress_threads = std::max(1, ws.config().workers);
  for (const std::string& t : db.settings.targets) {
    auto repo = ws.repository(t, true);
    if (!repo.ok()) return repo.status().WithContext("database '" + db.name + "'");
    req.targets.push_back(*repo);
  }
  return req;
}

json record_backup(Workspace& ws, const DatabaseConfig& db, int64_t started,
                   const Status& start_error, const std::vector<TargetOutcome>& outcomes) {
  json backups = json::array(), errors = json::array();
  const int64_t now = ws.now_ms();
  if (!start_error.ok()) {
    errors.push_back({{"database", db.name}, {"target", ""}, {"error", start_error.message()},
                      {"code", code_name(start_error.code())}});
    // A backup that did not start is no target's job, but what it asked of its
    // targets (a lock refused, say) is its cost, not the next job's.
    JobRecord job = finished_job("backup", db.name, "", "", started, now, nullptr, start_error);
    for (const std::string& target : db.settings.targets) add_transfers(ws.take_transfers(target), &job);
    ws.record(job);
  }
  for (const TargetOutcome& o : outcomes) {
    const Manifest& m = o.manifest;
    JobRecord job = finished_job("backup", db.name, o.target, m.id, started, now, &m, Status::Ok());
    job.stored_bytes = static_cast<int64_t>(m.stored_bytes);
    job.changed_pages = static_cast<int64_t>(m.new_pages);
    if (o.status.ok()) {
      backups.push_back(manifest_summary(m, o.target));
    } else {
      errors.push_back({{"database", db.name}, {"target", o.target}, {"error", o.status.message()},
                        {"code", code_name(o.status.code())}});
      job.result = "failure";
      job.error = o.status.message();
      job.backup_id.clear();
    }
    ws.record(job);
  }
  return json{{"backups", backups}, {"errors", errors}};
}

}  // namespace sqlbak
