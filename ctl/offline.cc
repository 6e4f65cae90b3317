#include "ctl/offline.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "ctl/format.h"
#include "lib/backup.h"
#include "lib/catalog.h"
#include "lib/config.h"
#include "lib/local_store.h"
#include "lib/repository.h"
#include "lib/restore.h"
#include "lib/timefmt.h"

namespace sqlbak::ctl {
namespace {

using nlohmann::json;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void print_error(const std::string& message) { std::cerr << "sqlbakctl: " << message << "\n"; }

// What one offline command works with: the config, its targets, the catalog.
class OfflineContext {
 public:
  // Returns false (after printing every config error) when the config is invalid.
  bool load(const std::string& file) {
    ConfigLoadResult r = load_config(file);
    for (const ConfigError& e : r.errors) std::cerr << e.to_string() << "\n";
    if (!r.config) return false;
    config_ = std::move(*r.config);
    return true;
  }
  const Config& config() const { return config_; }

  // Opens target NAME. WRITABLE targets get a repository created when empty.
  Result<Repository*> repository(const std::string& name, bool writable) {
    auto it = repos_.find(name);
    if (it != repos_.end()) return it->second.get();
    auto t = config_.targets.find(name);
    if (t == config_.targets.end()) return Status::NotFound("no target named '" + name + "' in " + config_.source_file);
    if (t->second.type != "local")
      return Status::Unsupported("target '" + name + "' is of type " + t->second.type +
                                 ", which this version of sqlbak cannot use yet");
    auto store = LocalObjectStore::open(name, t->second.path, writable);
    if (!store.ok()) return store.status();
    auto repo = Repository::open(std::move(store).value(), name, writable);
    if (!repo.ok()) return repo.status();
    Repository* raw = repo->get();
    repos_[name] = std::move(repo).value();
    return raw;
  }

  // Targets to read from: NAME alone, or every configured target that holds a repository.
  Result<std::vector<Repository*>> readable_targets(const std::string& name) {
    std::vector<Repository*> out;
    if (!name.empty()) {
      auto r = repository(name, false);
      if (!r.ok()) return r.status();
      out.push_back(*r);
      return out;
    }
    for (const auto& [target_name, target] : config_.targets) {
      if (target.type != "local") continue;
      auto r = repository(target_name, false);
      if (r.ok()) {
        out.push_back(*r);
      } else if (r.status().code() != ErrorCode::kNotFound) {
        return r.status();
      }
    }
    return out;
  }

  // The catalog, or nullptr (after one warning) when the state directory is unusable:
  // on a fresh host restoring from a target, history is not worth failing for.
  Catalog* catalog() {
    if (catalog_ || catalog_failed_) return catalog_.get();
    auto c = Catalog::open(config_.state_dir);
    if (!c.ok()) {
      catalog_failed_ = true;
      std::cerr << "sqlbakctl: warning: job history not recorded: " << c.status().message() << "\n";
      return nullptr;
    }
    catalog_ = std::move(c).value();
    return catalog_.get();
  }

  void record(JobRecord job) {
    if (Catalog* c = catalog()) {
      auto r = c->record(job);
      if (!r.ok()) std::cerr << "sqlbakctl: warning: " << r.status().message() << "\n";
    }
  }

  // Where images are rebuilt for checks: STATE_DIR/tmp, else $TMPDIR or /var/tmp.
  std::string scratch_dir() {
    std::string dir = config_.state_dir + "/tmp";
    if (::mkdir(config_.state_dir.c_str(), 0750) == 0 || errno == EEXIST) {
      if ((::mkdir(dir.c_str(), 0750) == 0 || errno == EEXIST) && ::access(dir.c_str(), W_OK) == 0)
        return dir;
    }
    const char* tmp = std::getenv("TMPDIR");
    return tmp != nullptr && *tmp != '\0' ? tmp : "/var/tmp";
  }

 private:
  Config config_;
  std::map<std::string, std::unique_ptr<Repository>> repos_;
  std::unique_ptr<Catalog> catalog_;
  bool catalog_failed_ = false;
};

json manifest_summary(const Manifest& m, const std::string& target) {
  return json{{"id", m.id},
              {"database", m.database},
              {"target", target},
              {"created", m.created},
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

void progress_bar(uint32_t done, uint32_t total, const std::string& name) {
  if (total == 0) return;
  int width = 30, filled = static_cast<int>(static_cast<uint64_t>(done) * width / total);
  std::fprintf(stderr, "\r%s [%s%s] %3u%%", name.c_str(), std::string(filled, '#').c_str(),
               std::string(width - filled, ' ').c_str(),
               static_cast<unsigned>(static_cast<uint64_t>(done) * 100 / total));
}

}  // namespace

int config_check(const std::string& file, bool as_json) {
  ConfigLoadResult r = load_config(file);
  if (as_json) {
    json errors = json::array();
    for (const ConfigError& e : r.errors)
      errors.push_back({{"file", e.file}, {"line", e.line}, {"column", e.column}, {"message", e.message}});
    std::cout << json{{"file", file}, {"valid", r.errors.empty()}, {"errors", errors}}.dump(2) << "\n";
  } else {
    for (const ConfigError& e : r.errors) std::cerr << e.to_string() << "\n";
    if (r.errors.empty())
      std::cout << file << ": valid, " << r.config->databases.size() << " database(s), "
                << r.config->targets.size() << " target(s)\n";
  }
  return r.errors.empty() ? 0 : 1;
}

int offline_backup(const GlobalOptions& g, const std::vector<std::string>& names) {
  OfflineContext ctx;
  if (!ctx.load(g.config_file)) return 1;
  std::vector<const DatabaseConfig*> selected;
  if (names.empty()) {
    for (const DatabaseConfig& d : ctx.config().databases) selected.push_back(&d);
  } else {
    for (const std::string& n : names) {
      const DatabaseConfig* d = ctx.config().find_database(n);
      if (d == nullptr) {
        print_error("no database named '" + n + "' in " + g.config_file);
        return 1;
      }
      selected.push_back(d);
    }
  }
  if (selected.empty() && !g.json) std::cerr << "sqlbakctl: no databases configured in " << g.config_file << "\n";

  bool failed = false;
  json backups = json::array(), errors = json::array();
  const bool show_progress = !g.json && ::isatty(STDERR_FILENO);
  for (const DatabaseConfig* db : selected) {
    BackupRequest req;
    req.database = *db;
    req.now_ms = now_ms;
    req.scratch_dir = ctx.scratch_dir();
    Status setup;
    for (const std::string& t : db->settings.targets) {
      auto repo = ctx.repository(t, true);
      if (!repo.ok()) {
        setup = repo.status().WithContext("database '" + db->name + "'");
        break;
      }
      req.targets.push_back(*repo);
    }
    const int64_t started = now_ms();
    std::vector<TargetOutcome> outcomes;
    if (setup.ok()) {
      outcomes = run_backup(
          req, show_progress ? [&](uint32_t d, uint32_t t) { progress_bar(d, t, db->name); }
                             : std::function<void(uint32_t, uint32_t)>(),
          &setup);
      if (show_progress) std::fprintf(stderr, "\r\033[K");
    }
    if (!setup.ok()) {
      failed = true;
      print_error(setup.message());
      errors.push_back({{"database", db->name}, {"target", ""}, {"error", setup.message()}});
      ctx.record({0, "backup", db->name, "", "", started, now_ms() - started, 0, 0, 0, "failure",
                  setup.message()});
      continue;
    }
    for (const TargetOutcome& o : outcomes) {
      const Manifest& m = o.manifest;
      JobRecord job{0, "backup", db->name, o.target, m.id, started, now_ms() - started,
                    static_cast<int64_t>(m.source_bytes), static_cast<int64_t>(m.stored_bytes),
                    static_cast<int64_t>(m.new_pages), "success", ""};
      if (!o.status.ok()) {
        failed = true;
        print_error(o.status.message());
        errors.push_back({{"database", db->name}, {"target", o.target}, {"error", o.status.message()}});
        job.result = "failure";
        job.error = o.status.message();
        job.backup_id.clear();
      } else if (g.json) {
        backups.push_back(manifest_summary(m, o.target));
      } else {
        std::cout << db->name << ": backup " << m.id << " on " << o.target << ": " << m.page_count
                  << " pages (" << m.new_pages << " new), " << human_bytes(m.stored_bytes)
                  << " stored, " << human_millis(m.duration_ms) << "\n";
      }
      ctx.record(job);
    }
  }
  if (g.json) std::cout << json{{"backups", backups}, {"errors", errors}}.dump(2) << "\n";
  return failed ? 1 : 0;
}

int offline_list(const GlobalOptions& g, const std::string& database, const std::string& target) {
  OfflineContext ctx;
  if (!ctx.load(g.config_file)) return 1;
  auto repos = ctx.readable_targets(target);
  if (!repos.ok()) {
    print_error(repos.status().message());
    return 1;
  }
  std::vector<std::pair<Manifest, std::string>> all;
  for (Repository* repo : *repos) {
    auto ms = repo->list_manifests(database);
    if (!ms.ok()) {
      print_error(ms.status().message());
      return 1;
    }
    for (Manifest& m : *ms) all.emplace_back(std::move(m), repo->target_name());
  }
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.first.created_unix_ms > b.first.created_unix_ms;
  });
  if (g.json) {
    json arr = json::array();
    for (const auto& [m, t] : all) arr.push_back(manifest_summary(m, t));
    std::cout << json{{"backups", arr}}.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows{
      {"ID", "DATABASE", "TARGET", "CREATED", "KIND", "STORED", "SIZE", "RATIO", "DURATION", "VERIFIED"}};
  for (const auto& [m, t] : all)
    rows.push_back({m.id, m.database, t, m.created, m.kind, human_bytes(m.stored_bytes),
                    human_bytes(m.source_bytes), ratio_text(m.source_bytes, m.stored_bytes),
                    human_millis(m.duration_ms), m.verification});
  std::cout << render_table(rows);
  return 0;
}

namespace {

// Finds backup ID on TARGET (or on the first target that has it).
Result<std::pair<Repository*, ManifestRef>> locate(OfflineContext& ctx, const std::string& id,
                                                   const std::string& target) {
  auto repos = ctx.readable_targets(target);
  if (!repos.ok()) return repos.status();
  Status last = Status::NotFound("backup " + id + " does not exist on any target of " +
                                 ctx.config().source_file);
  for (Repository* repo : *repos) {
    auto ref = repo->find_backup(id);
    if (ref.ok()) return std::make_pair(repo, *ref);
    if (ref.status().code() != ErrorCode::kNotFound) return ref.status();
  }
  return last;
}

}  // namespace

int offline_show(const GlobalOptions& g, const std::string& id, const std::string& target) {
  OfflineContext ctx;
  if (!ctx.load(g.config_file)) return 1;
  auto found = locate(ctx, id, target);
  if (!found.ok()) {
    print_error(found.status().message());
    return 1;
  }
  std::string text;
  Status st = found->first->store().get(found->second.key, &text);
  auto m = found->first->read_manifest(found->second);
  if (!st.ok() || !m.ok()) {
    print_error("backup " + id + ": " + (st.ok() ? m.status().message() : st.message()));
    return 1;
  }
  if (g.json) {
    std::cout << json::parse(text)["manifest"].dump(2) << "\n";
    return 0;
  }
  std::cout << "id:            " << m->id << "\n"
            << "database:      " << m->database << " (" << m->source_path << ")\n"
            << "target:        " << found->first->target_name() << "\n"
            << "created:       " << m->created << " on " << m->host << "\n"
            << "kind:          " << m->kind << "\n"
            << "pages:         " << m->page_count << " x " << m->page_size << " bytes ("
            << human_bytes(m->source_bytes) << "), journal mode " << m->journal_mode << "\n"
            << "stored:        " << human_bytes(m->stored_bytes) << " new (" << m->new_pages
            << " new pages), ratio " << ratio_text(m->source_bytes, m->stored_bytes) << "\n"
            << "duration:      " << human_millis(m->duration_ms) << ", " << m->restarts
            << " restart(s)\n"
            << "settings:      " << m->compression << " level " << m->compression_level
            << ", verify " << m->verify << ", step_pages " << m->step_pages << "\n"
            << "verification:  " << m->verification << "\n"
            << "sqlite:        " << m->sqlite_version << "\n"
            << "objects:       " << m->packs.size() << " pack(s), " << m->runs.size()
            << " page run(s)\n";
  return 0;
}

int offline_verify(const GlobalOptions& g, const std::vector<std::string>& ids,
                   const std::string& database, bool all, const std::string& target) {
  if (ids.empty() && database.empty() && !all) {
    print_error("verify: name backup ids, or use --db DB or --all");
    return 2;
  }
  OfflineContext ctx;
  if (!ctx.load(g.config_file)) return 1;
  auto repos = ctx.readable_targets(target);
  if (!repos.ok()) {
    print_error(repos.status().message());
    return 1;
  }
  std::vector<std::pair<Repository*, ManifestRef>> chosen;
  bool failed = false;
  for (const std::string& id : ids) {
    auto found = locate(ctx, id, target);
    if (!found.ok()) {
      print_error(found.status().message());
      failed = true;
      continue;
    }
    chosen.push_back(*found);
  }
  if (ids.empty()) {
    for (Repository* repo : *repos) {
      auto refs = repo->list_manifest_refs(database);
      if (!refs.ok()) {
        print_error(refs.status().message());
        return 1;
      }
      for (const ManifestRef& ref : *refs) chosen.emplace_back(repo, ref);
    }
  }
  const std::string scratch = ctx.scratch_dir();
  json results = json::array();
  for (const auto& [repo, ref] : chosen) {
    const int64_t started = now_ms();
    std::string error;
    auto m = repo->read_manifest(ref);
    if (!m.ok()) {
      error = m.status().message();
    } else {
      auto check = verify_backup(*repo, *m, scratch, VerifyMode::kIntegrity);
      if (!check.ok()) error = check.status().message();
    }
    const std::string label = ref.id + " (" + ref.database + " on " + repo->target_name() + ")";
    if (!error.empty()) failed = true;
    if (g.json) {
      results.push_back({{"id", ref.id}, {"database", ref.database}, {"target", repo->target_name()},
                         {"ok", error.empty()}, {"error", error}});
    } else if (error.empty()) {
      std::cout << label << ": OK\n";
    } else {
      std::cout << label << ": FAILED: " << error << "\n";
      std::cerr << "sqlbakctl: backup " << ref.id << " failed verification: " << error << "\n";
    }
    ctx.record({0, "verify", ref.database, repo->target_name(), ref.id, started,
                now_ms() - started, m.ok() ? static_cast<int64_t>(m->source_bytes) : 0, 0, 0,
                error.empty() ? "success" : "failure", error});
  }
  if (g.json) std::cout << json{{"results", results}}.dump(2) << "\n";
  if (chosen.empty() && !failed && !g.json) std::cout << "no backups to verify\n";
  return failed ? 1 : 0;
}

int offline_restore(const GlobalOptions& g, const RestoreArgs& a) {
  OfflineContext ctx;
  if (!ctx.load(g.config_file)) return 1;
  std::pair<Repository*, ManifestRef> found;
  if (!a.at.empty()) {
    // restore DB --at TIME
    auto at = parse_timestamp(a.at, now_ms());
    if (!at.ok()) {
      print_error(at.status().message());
      return 2;
    }
    auto repos = ctx.readable_targets(a.target);
    if (!repos.ok()) {
      print_error(repos.status().message());
      return 1;
    }
    const Manifest* best = nullptr;
    std::vector<std::pair<Manifest, Repository*>> candidates;
    for (Repository* repo : *repos) {
      auto ms = repo->list_manifests(a.what);
      if (!ms.ok()) {
        print_error(ms.status().message());
        return 1;
      }
      for (Manifest& m : *ms)
        if (m.created_unix_ms <= *at) candidates.emplace_back(std::move(m), repo);
    }
    for (const auto& [m, repo] : candidates)
      if (best == nullptr || m.created_unix_ms > best->created_unix_ms) {
        best = &m;
        found = {repo, ManifestRef{m.database, m.id, manifest_key(m.database, m.id)}};
      }
    if (best == nullptr) {
      print_error("no backup of database '" + a.what + "' was taken at or before " + a.at);
      return 1;
    }
  } else {
    auto f = locate(ctx, a.what, a.target);
    if (!f.ok()) {
      print_error(f.status().message());
      return 1;
    }
    found = *f;
  }
  const int64_t started = now_ms();
  auto m = found.first->read_manifest(found.second);
  Status st = m.ok() ? restore_backup(*found.first, *m, a.to, a.force)
                     : m.status().WithContext("backup " + found.second.id);
  ctx.record({0, "restore", found.second.database, found.first->target_name(), found.second.id,
              started, now_ms() - started, m.ok() ? static_cast<int64_t>(m->source_bytes) : 0, 0, 0,
              st.ok() ? "success" : "failure", st.message()});
  if (!st.ok()) {
    print_error(st.message());
    return 1;
  }
  if (g.json)
    std::cout << json{{"id", m->id}, {"database", m->database}, {"path", a.to},
                      {"bytes", m->source_bytes}}.dump(2) << "\n";
  else
    std::cout << "restored backup " << m->id << " of " << m->database << " (" << m->created
              << ", " << human_bytes(m->source_bytes) << ") to " << a.to << "\n";
  return 0;
}

}  // namespace sqlbak::ctl
