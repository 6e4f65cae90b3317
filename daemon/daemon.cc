#include "daemon/daemon.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <utility>

#include "daemon/control_server.h"
#include "daemon/http_server.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "lib/health.h"
#include "lib/host_name.h"
#include "lib/rotation.h"
#include "lib/schedule.h"
#include "lib/timefmt.h"

namespace sqlbak::daemon {

namespace asio = boost::asio;
using nlohmann::json;

// A backup in progress. Owned by the loop; its BackupJob runs on the pool,
// one step at a time.
struct RunningJob {
  int64_t id = 0;
  std::string database;
  std::string trigger;  // "schedule", "request", "catch-up"
  DatabaseConfig config;
  // The job's own, not the daemon's: its stores count only this job's requests
  // (Workspace::record charges them), and it outlives a reload.
  std::shared_ptr<Workspace> workspace;
  std::unique_ptr<BackupJob> job;
  int64_t started_ms = 0;
  uint32_t done = 0, total = 0;
  bool cancel = false;
  std::chrono::steady_clock::time_point last_progress{};
  std::vector<std::shared_ptr<Responder>> waiters;  // `backup --wait`: events, then the reply
  std::unique_ptr<asio::steady_timer> retry_timer;
};

namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The scheduler never sleeps longer than this, so a wall-clock step (NTP,
// suspend) is noticed within it.
constexpr auto kMaxSchedulerSleep = std::chrono::seconds(30);
constexpr auto kProgressInterval = std::chrono::milliseconds(250);
constexpr auto kShutdownDeadline = std::chrono::seconds(9);

}  // namespace

Daemon::Daemon(asio::io_context& io, std::string config_file, Config config)
    : io_(io),
      pool_(static_cast<size_t>(std::max(1, config.workers))),
      config_file_(std::move(config_file)),
      signals_(io, SIGHUP, SIGTERM, SIGINT),
      scheduler_timer_(io),
      watchdog_timer_(io),
      shutdown_timer_(io),
      started_(std::chrono::steady_clock::now()),
      health_timer_(io) {
  apply_config(std::move(config));
}

Daemon::~Daemon() {
  pool_.stop();
  pool_.join();
}

int64_t Daemon::now_ms() const { return wall_ms(); }

void Daemon::apply_config(Config config) {
  workspace_ = std::make_shared<Workspace>(std::move(config), wall_ms);
  if (alerts_) {
    alerts_->reconfigure(workspace_->config().alerts);
  } else {
    alerts_ = std::make_unique<AlertDispatcher>(
        workspace_->config().alerts, local_host_name(),
        [this](std::function<void()> task) { asio::post(alert_pool_, std::move(task)); },
        [](const std::string& message) { log_warning("alert: " + message); });
  }
  std::map<std::string, DatabaseState> next;
  for (const DatabaseConfig& db : workspace_->config().databases) {
    DatabaseState state;
    state.config = db;
    auto spec = parse_calendar(db.settings.schedule);
    if (spec.ok())
      state.schedule = *spec;
    else
      log_error("database '" + db.name + "': " + spec.status().message(), {db.name});
    for (MaintenanceTimer* t : {&state.rotate, &state.verify}) {
      auto m = parse_calendar(t->kind == "rotate" ? db.settings.rotate : db.settings.verify_schedule);
      if (m.ok())
        t->spec = *m;
      else
        log_error("database '" + db.name + "': " + t->kind + " schedule: " + m.status().message(), {db.name});
    }
    if (auto old = databases_.find(db.name); old != databases_.end()) {
      state.running = old->second.running;
      state.next_backup_us = old->second.next_backup_us;
      state.maintenance_running = old->second.maintenance_running;
      state.maintenance_pending = old->second.maintenance_pending;
    }
    next[db.name] = std::move(state);
  }
  databases_ = std::move(next);
}

Status Daemon::start() {
  control_ = std::make_unique<ControlServer>(io_, *this);
  SQLBAK_RETURN_IF_ERROR(
      control_->listen(workspace_->config().socket, workspace_->config().socket_group));
  if (const auto& http = workspace_->config().http) {
    http_ = std::make_unique<HttpServer>(
        io_, *http, [this](const Request& r, std::shared_ptr<Responder> p) { handle(r, std::move(p)); });
    SQLBAK_RETURN_IF_ERROR(http_->listen());
  }
  wait_signal();
  arm_health_check(std::chrono::seconds(5));
  compute_schedules(/*catch_up=*/true);
  arm_scheduler();
  arm_watchdog();
  log_info("sqlbakd " SQLBAK_VERSION " started: " + std::to_string(databases_.size()) +
           " database(s), control socket " + workspace_->config().socket);
  notify_ready("ready");
  update_status();
  return Status::Ok();
}

void Daemon::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      if (stopping_)
        log_info("SIGHUP ignored: sqlbakd is stopping");
      else
        (void)reload("SIGHUP");
    } else if (stopping_) {
      log_warning("second termination signal: exiting now");
      std::_Exit(1);
    } else {
      shutdown(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    wait_signal();
  });
}

// ---- configuration and schedule ----

Status Daemon::reload(const std::string& why) {
  log_info("reloading configuration " + config_file_ + " (" + why + ")");
  ConfigLoadResult loaded = load_config(config_file_);
  if (!loaded.config) {
    std::string first;
    for (const ConfigError& e : loaded.errors) {
      log_error("reload refused: " + e.to_string());
      if (first.empty()) first = e.to_string();
    }
    log_error("configuration not reloaded; the previous one stays in force");
    return Status::InvalidArgument("the new configuration is invalid, the previous one stays: " + first +
                                   (loaded.errors.size() > 1 ? " (and " + std::to_string(loaded.errors.size() - 1) + " more)" : ""));
  }
  notify_reloading();
  for (const std::string& w : loaded.warnings) log_warning(w);
  if (loaded.config->socket != workspace_->config().socket)
    log_warning("a new control socket path takes effect at the next start");
  loaded.config->socket = workspace_->config().socket;
  apply_config(std::move(*loaded.config));
  reload_http();
  compute_schedules(/*catch_up=*/false);
  arm_scheduler();
  log_info("configuration reloaded: " + std::to_string(databases_.size()) + " database(s)");
  notify_ready("reloaded");
  update_status();
  return Status::Ok();
}

void Daemon::reload_http() {
  const std::optional<HttpConfig>& next = workspace_->config().http;
  if (http_ && next && http_->config().listen == next->listen && http_->config().token_file == next->token_file) {
    if (Status st = http_->reload_token(); !st.ok()) log_error("HTTP: " + st.message() + "; the old token stays");
    return;
  }
  if (http_) {
    http_->close();
    http_.reset();
  }
  if (!next) return;
  http_ = std::make_unique<HttpServer>(
      io_, *next, [this](const Request& r, std::shared_ptr<Responder> p) { handle(r, std::move(p)); });
  if (Status st = http_->listen(); !st.ok()) {
    log_error("HTTP not restarted after the reload: " + st.message());
    http_.reset();
  }
}

void Daemon::compute_schedules(bool catch_up) {
  const int64_t now_us = wall_ms() * 1000;
  for (auto& [name, state] : databases_) {
    // Rotation and verification are not caught up at start: the next elapse
    // comes soon enough, and a start should not begin with a long verify.
    for (MaintenanceTimer* t : {&state.rotate, &state.verify})
      t->next_us = t->spec ? next_elapse(*t->spec, now_us) : std::nullopt;
    if (!state.schedule) {
      state.next_backup_us.reset();
      continue;
    }
    // Keep a pending elapse across a reload only if the schedule still yields it.
    state.next_backup_us = next_elapse(*state.schedule, now_us);
    if (!catch_up) continue;
    // Like Persistent=true: if an elapse passed since the last run, run once now.
    Catalog* catalog = workspace_->catalog();
    if (catalog == nullptr) continue;
    auto last = catalog->jobs("backup", name, 1);
    if (!last.ok() || last->empty()) continue;
    auto missed = next_elapse(*state.schedule, (*last)[0].started_at_ms * 1000);
    if (missed && *missed <= now_us) {
      log_info("a scheduled backup was missed while sqlbakd was down (due " +
                   format_iso_utc(*missed / 1000) + "); running it now",
               {name});
      start_backup(name, "catch-up");
    }
  }
}

void Daemon::arm_scheduler() {
  if (stopping_) return;
  const int64_t now_us = wall_ms() * 1000;
  auto wait = std::chrono::microseconds(std::chrono::duration_cast<std::chrono::microseconds>(kMaxSchedulerSleep));
  for (const auto& [name, state] : databases_)
    for (const std::optional<int64_t>& due : {state.next_backup_us, state.rotate.next_us, state.verify.next_us})
      if (due) wait = std::min(wait, std::chrono::microseconds(std::max<int64_t>(0, *due - now_us)));
  scheduler_timer_.expires_after(wait);
  scheduler_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_scheduler_tick();
  });
}

void Daemon::on_scheduler_tick() {
  const int64_t now_us = wall_ms() * 1000;
  for (auto& [name, state] : databases_) {
    for (MaintenanceTimer* t : {&state.rotate, &state.verify}) {
      if (!t->spec) continue;
      const ScheduleDecision d = decide_schedule(*t->spec, t->next_us, now_us);
      t->next_us = d.next;
      if (d.run) maintenance_due(name, t->kind);
    }
    if (!state.schedule) continue;
    const ScheduleDecision decision = decide_schedule(*state.schedule, state.next_backup_us, now_us);
    state.next_backup_us = decision.next;
    if (!decision.run) continue;
    if (state.running) {
      log_info("scheduled backup of '" + name + "' is due but one is already running: skipped",
               {name, "", state.running->id});
      continue;
    }
    start_backup(name, "schedule");
  }
  arm_scheduler();
}

void Daemon::arm_watchdog() {
  if (auto interval = watchdog_ping_interval()) watchdog_interval_ = *interval;
  if (watchdog_interval_.count() == 0) return;
  // Pinged from the loop itself: a stuck loop misses its pings.
  notify_watchdog();
  watchdog_timer_.expires_after(watchdog_interval_);
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) arm_watchdog();
  });
}

void Daemon::update_status() {
  std::string running;
  for (const auto& [name, state] : databases_) {
    if (!state.running) continue;
    const auto& j = *state.running;
    if (!running.empty()) running += ", ";
    running += name + " " + (j.total > 0 ? std::to_string(uint64_t{j.done} * 100 / j.total) + "%" : "starting");
  }
  std::string s = std::to_string(databases_.size()) + " database(s); " +
                  (running.empty() ? "idle" : "backing up " + running);
  if (!last_result_.empty()) s += "; last: " + last_result_;
  notify_status(s);
}

// ---- jobs ----

std::shared_ptr<RunningJob> Daemon::start_backup(const std::string& name, const std::string& trigger) {
  DatabaseState& state = databases_.at(name);
  if (state.running) return state.running;
  auto job = std::make_shared<RunningJob>();
  job->id = next_job_id_++;
  job->database = name;
  job->trigger = trigger;
  job->config = state.config;
  job->workspace = std::make_shared<Workspace>(workspace_->config(), wall_ms);
  job->started_ms = wall_ms();
  job->retry_timer = std::make_unique<asio::steady_timer>(io_);
  state.running = job;
  log_info("backup of '" + name + "' started (" + trigger + ")", {name, "", job->id});
  update_status();

  // Opening the job's targets may mean network requests (S3) and their
  // retries: on the pool, never on the loop.
  asio::post(pool_, [this, job]() mutable {
    auto request = prepare_backup(*job->workspace, job->config);
    Result<std::unique_ptr<BackupJob>> started =
        request.ok() ? BackupJob::start(std::move(request).value())
                     : Result<std::unique_ptr<BackupJob>>(request.status());
    asio::post(io_, [this, job, started = std::move(started)]() mutable {
      if (!started.ok()) return finish_job(job, started.status(), {});
      job->job = std::move(started).value();
      run_step(job);
    });
  });
  return job;
}

void Daemon::run_step(const std::shared_ptr<RunningJob>& job) {
  if (job->cancel) job->job->cancel();
  asio::post(pool_, [this, job] {
    auto outcome = job->job->step();
    const uint32_t done = job->job->pages_done(), total = job->job->pages_total();
    asio::post(io_, [this, job, outcome = std::move(outcome), done, total]() {
      job->done = done;
      job->total = total;
      if (!outcome.ok()) return finish_job(job, outcome.status(), {});
      const auto now = std::chrono::steady_clock::now();
      if (now - job->last_progress >= kProgressInterval || outcome->state == StepState::kDone) {
        job->last_progress = now;
        for (auto& w : job->waiters)
          w->event(event("progress", {{"database", job->database}, {"job", job->id}, {"done", done}, {"total", total}}));
        update_status();
      }
      switch (outcome->state) {
        case StepState::kMore:
          return run_step(job);
        case StepState::kRetryLater:
          job->retry_timer->expires_after(std::chrono::milliseconds(outcome->retry_after_ms));
          job->retry_timer->async_wait([this, job](const boost::system::error_code& ec) {
            if (!ec) run_step(job);
          });
          return;
        case StepState::kDone:
          // The check, then a wait on the loop (not on a worker) for the
          // compressors to drain, then the commit: a large backup's tail
          // holds no worker that a small database's steps need.
          asio::post(pool_, [this, job] {
            job->job->check_snapshot();
            asio::post(io_, [this, job] { finish_when_drained(job); });
          });
          return;
      }
    });
  });
}

void Daemon::finish_when_drained(const std::shared_ptr<RunningJob>& job) {
  if (!job->cancel && !job->job->pipelines_idle()) {
    job->retry_timer->expires_after(std::chrono::milliseconds(50));
    job->retry_timer->async_wait([this, job](const boost::system::error_code& ec) {
      if (!ec) finish_when_drained(job);
    });
    return;
  }
  asio::post(pool_, [this, job] {
    auto outcomes = job->job->finish();
    asio::post(io_, [this, job, outcomes = std::move(outcomes)]() mutable {
      finish_job(job, Status::Ok(), std::move(outcomes));
    });
  });
}

void Daemon::finish_job(const std::shared_ptr<RunningJob>& job, const Status& status,
                        std::vector<TargetOutcome> outcomes) {
  if (job->job) {
    // Release the job's locks first (their DELETE requests are the job's
    // cost, and the record charges what the stores did so far); joining a
    // BackupJob's threads may take a moment: not on the loop.
    asio::post(pool_, [this, job, status, outcomes = std::move(outcomes),
                       done = std::shared_ptr<BackupJob>(std::move(job->job))]() mutable {
      done.reset();
      // Give back what the job's buffers left free in the heap (see main.cc).
      (void)::malloc_trim(0);
      asio::post(io_, [this, job, status, outcomes = std::move(outcomes)]() mutable {
        finish_job(job, status, std::move(outcomes));
      });
    });
    return;
  }
  json result = record_backup(*job->workspace, job->config, job->started_ms, status, outcomes);
  for (const std::string& w : job->workspace->take_warnings()) log_warning(w, {job->database});
  const LogFields fields{job->database, "", job->id};
  for (const json& b : result["backups"]) {
    log_info("backup " + b["id"].get<std::string>() + " of '" + job->database + "' on target '" +
                 b["target"].get<std::string>() + "': " + std::to_string(b["page_count"].get<uint64_t>()) +
                 " pages, " + std::to_string(b["new_pages"].get<uint64_t>()) + " new, " +
                 std::to_string(b["stored_bytes"].get<uint64_t>()) + " bytes stored, verification " +
                 b["verified"].get<std::string>(),
             {job->database, b["id"].get<std::string>(), job->id});
    last_result_ = job->database + " ok";
    AlertEvent success;
    success.kind = AlertKind::kSuccess;
    success.severity = AlertSeverity::kOk;
    success.database = job->database;
    success.target = b["target"].get<std::string>();
    success.backup_id = b["id"].get<std::string>();
    success.job = "backup";
    success.details = std::to_string(b["page_count"].get<uint64_t>()) + " pages, " +
                      std::to_string(b["new_pages"].get<uint64_t>()) + " new, " +
                      std::to_string(b["stored_bytes"].get<uint64_t>()) + " bytes stored";
    raise_alert(std::move(success));
  }
  for (const json& e : result["errors"]) {
    const bool cancelled = e.value("code", "") == "cancelled";
    log(cancelled ? Priority::kWarning : Priority::kError,
        std::string(cancelled ? "backup cancelled: " : "backup failed: ") + e["error"].get<std::string>(), fields);
    last_result_ = job->database + (cancelled ? " cancelled" : " FAILED");
    // A backup cancelled by shutdown is not a failure anyone must act on.
    if (!cancelled) {
      AlertEvent failure;
      failure.database = job->database;
      failure.target = e.value("target", "");
      failure.job = "backup";
      failure.error = e["error"].get<std::string>();
      raise_alert(std::move(failure));
    }
  }
  // Health may have changed (back to OK after a failure, say): look soon.
  arm_health_check(std::chrono::seconds(2));
  for (auto& w : job->waiters) w->reply(reply_ok(result));
  job->waiters.clear();
  if (auto it = databases_.find(job->database); it != databases_.end() && it->second.running == job) {
    it->second.running.reset();
    run_pending_maintenance(job->database);
  }
  update_status();
  if (stopping_ && idle()) io_.stop();
}

// ---- commands ----

void Daemon::handle(const Request& request, std::shared_ptr<Responder> responder) {
  struct Command {
    const char* name;
    void (Daemon::*handler)(const Request&, std::shared_ptr<Responder>);
  };
  static const Command kCommands[] = {
      {"status", &Daemon::cmd_status}, {"backup", &Daemon::cmd_backup},
      {"reload", &Daemon::cmd_reload}, {"list", &Daemon::cmd_on_pool},
      {"show", &Daemon::cmd_on_pool},  {"verify", &Daemon::cmd_on_pool},
      {"health", &Daemon::cmd_on_pool}, {"report", &Daemon::cmd_on_pool},
      {"rotate", &Daemon::cmd_on_pool}, {"metrics", &Daemon::cmd_on_pool},
  };
  for (const Command& c : kCommands)
    if (request.command == c.name) return (this->*c.handler)(request, std::move(responder));
  if (request.command == "restore")
    return responder->reply(reply_error(Status::InvalidArgument(
        "restore runs in sqlbakctl itself: the daemon never writes files for a client")));
  responder->reply(reply_error(Status::Usage("unknown command '" + request.command + "'")));
}

void Daemon::cmd_status(const Request&, std::shared_ptr<Responder> responder) {
  json dbs = json::array();
  Catalog* catalog = workspace_->catalog();
  for (const auto& [name, state] : databases_) {
    json d{{"name", name}, {"path", state.config.path}, {"schedule", state.config.settings.schedule}};
    d["next_backup"] = state.next_backup_us ? json(format_iso_utc(*state.next_backup_us / 1000)) : json(nullptr);
    d["last_backup"] = nullptr;
    if (catalog != nullptr) {
      auto last = catalog->jobs("backup", name, 1);
      if (last.ok() && !last->empty()) {
        const JobRecord& j = (*last)[0];
        d["last_backup"] = {{"id", j.backup_id}, {"time", format_iso_utc(j.started_at_ms)},
                            {"result", j.result}, {"error", j.error}, {"target", j.target}};
      }
    }
    if (state.running) {
      const RunningJob& j = *state.running;
      d["running"] = {{"job", j.id}, {"trigger", j.trigger}, {"started", format_iso_utc(j.started_ms)},
                      {"done", j.done}, {"total", j.total}};
    } else {
      d["running"] = nullptr;
    }
    dbs.push_back(d);
  }
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  responder->reply(reply_ok({{"version", SQLBAK_VERSION}, {"pid", ::getpid()},
                             {"uptime_seconds", uptime.count()}, {"config", config_file_},
                             {"databases", dbs}, {"alerts", alert_channels_json()}}));
}

void Daemon::cmd_backup(const Request& request, std::shared_ptr<Responder> responder) {
  if (stopping_) return responder->reply(reply_error(Status::Cancelled("sqlbakd is shutting down")));
  std::vector<std::string> names = arg_strings(request.args, "databases");
  if (names.empty())
    for (const auto& [name, state] : databases_) names.push_back(name);
  for (const std::string& n : names)
    if (!databases_.count(n))
      return responder->reply(reply_error(Status::NotFound("no database named '" + n + "' in " + config_file_)));
  const bool wait = request.args.value("wait", false);
  json started = json::array();
  std::vector<std::shared_ptr<RunningJob>> jobs;
  for (const std::string& n : names) {
    const bool joined = static_cast<bool>(databases_.at(n).running);
    auto job = start_backup(n, "request");
    started.push_back({{"database", n}, {"job", job->id}, {"joined", joined}});
    jobs.push_back(job);
  }
  if (!wait) {
    std::string message;
    for (const json& s : started)
      message += std::string(message.empty() ? "" : "\n") + "backup of " + s["database"].get<std::string>() +
                 (s["joined"].get<bool>() ? " already running, joined" : " started") + " (job " +
                 std::to_string(s["job"].get<int64_t>()) + ")";
    return responder->reply(reply_ok({{"jobs", started}, {"message", message.empty() ? "no databases" : message}}));
  }
  if (jobs.empty()) return responder->reply(reply_ok({{"backups", json::array()}, {"errors", json::array()}}));
  // One reply for all the jobs: gather their results as each ends.
  struct Gather : Responder {
    std::shared_ptr<Responder> client;
    size_t pending = 0;
    json all{{"backups", json::array()}, {"errors", json::array()}};
    void event(const json& e) override { client->event(e); }
    void reply(const json& r) override {
      const json& res = r["result"];
      for (const json& b : res["backups"]) all["backups"].push_back(b);
      for (const json& e : res["errors"]) all["errors"].push_back(e);
      if (--pending == 0) client->reply(reply_ok(all));
    }
  };
  auto gather = std::make_shared<Gather>();
  gather->client = responder;
  gather->pending = jobs.size();
  for (auto& job : jobs) {
    // A job that failed to start has already finished.
    if (databases_.at(job->database).running == job)
      job->waiters.push_back(gather);
    else
      gather->reply(reply_ok({{"backups", json::array()},
                              {"errors", json::array({{{"database", job->database}, {"target", ""},
                                                       {"error", "the backup ended before it could be waited for; see `sqlbakctl status`"}}})}}));
  }
}

void Daemon::cmd_reload(const Request&, std::shared_ptr<Responder> responder) {
  if (stopping_) return responder->reply(reply_error(Status::Cancelled("sqlbakd is shutting down")));
  Status st = reload("sqlbakctl reload");
  if (!st.ok()) return responder->reply(reply_error(st));
  responder->reply(reply_ok({{"message", "configuration reloaded: " + std::to_string(databases_.size()) + " database(s)"}}));
}

// list, show, verify: blocking reads of the targets, on the pool, with a
// Workspace of their own (a Workspace belongs to one thread).
void Daemon::cmd_on_pool(const Request& request, std::shared_ptr<Responder> responder) {
  Config config = workspace_->config();
  asio::post(pool_, [this, request, responder, config = std::move(config)]() mutable {
    Workspace ws(std::move(config), wall_ms);
    Result<json> result = Status::Internal("unhandled");
    try {
      result = run_query(ws, request);
    } catch (const std::exception& e) {
      result = Status::Internal(std::string("internal error: ") + e.what());
    }
    for (const std::string& w : ws.take_warnings()) log_warning(w);
    asio::post(io_, [this, command = request.command, responder, result = std::move(result)]() mutable {
      if (command == "health" && result.ok()) add_alert_findings(*result);
      responder->reply(result.ok() ? reply_ok(*result) : reply_error(result.status()));
    });
  });
}

// A channel that keeps failing is a health problem of its own: nobody would
// hear of the next failure.
void Daemon::add_alert_findings(json& health) const {
  if (!alerts_) return;
  static const char* kOrder[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
  for (const AlertChannelStatus& c : alerts_->channel_status()) {
    if (c.consecutive_failures == 0) continue;
    health["findings"].push_back(
        {{"database", ""}, {"target", ""}, {"state", "WARNING"},
         {"message", "alert channel " + c.channel + " " + c.url + " failed its last " +
                         std::to_string(c.consecutive_failures) + " deliveries: " + c.last_error}});
    if (health.value("state", "OK") == std::string("OK")) {
      health["state"] = kOrder[1];
      health["exit_code"] = 1;
      health["summary"] = "SQLBAK WARNING - alert channel " + c.channel + " " + c.url + " is failing: " +
                          c.last_error;
    }
  }
}

json Daemon::alert_channels_json() const {
  json out = json::array();
  if (!alerts_) return out;
  for (const AlertChannelStatus& c : alerts_->channel_status())
    out.push_back({{"channel", c.channel}, {"url", c.url}, {"on", c.on}, {"delivered", c.delivered},
                   {"failed", c.failed}, {"dropped", c.dropped},
                   {"consecutive_failures", c.consecutive_failures}, {"last_error", c.last_error},
                   {"last_success", c.last_success_ms ? json(format_iso_utc(c.last_success_ms)) : json(nullptr)},
                   {"last_failure", c.last_failure_ms ? json(format_iso_utc(c.last_failure_ms)) : json(nullptr)},
                   {"pending", c.pending}});
  return out;
}

// ---- alerts and health ----

// Health is checked this often, and soon after every job.
constexpr auto kHealthInterval = std::chrono::minutes(5);

void Daemon::raise_alert(AlertEvent event) {
  if (alerts_ && !stopping_) alerts_->raise(std::move(event), wall_ms());
}

void Daemon::arm_health_check(std::chrono::seconds delay) {
  if (stopping_) return;
  // Keep an earlier pending check: re-arming only ever brings it closer.
  const auto when = std::chrono::steady_clock::now() + delay;
  if (health_timer_.expiry() > std::chrono::steady_clock::now() && health_timer_.expiry() <= when) return;
  health_timer_.expires_at(when);
  health_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) check_health_now();
  });
}

void Daemon::check_health_now() {
  if (health_check_running_) {
    arm_health_check(std::chrono::seconds(10));
    return;
  }
  health_check_running_ = true;
  Config config = workspace_->config();
  asio::post(pool_, [this, config = std::move(config)]() mutable {
    Workspace ws(std::move(config), wall_ms);
    Result<json> result = Status::Internal("unhandled");
    try {
      result = check_health(ws, "");
    } catch (const std::exception& e) {
      result = Status::Internal(std::string("internal error: ") + e.what());
    }
    asio::post(io_, [this, result = std::move(result)] { on_health(result); });
  });
}

void Daemon::on_health(const Result<json>& health) {
  health_check_running_ = false;
  arm_health_check(std::chrono::duration_cast<std::chrono::seconds>(kHealthInterval));
  if (!health.ok()) {
    log_warning("health check failed: " + health.status().message());
    return;
  }
  for (const json& db : (*health)["databases"]) {
    const std::string name = db.value("name", "");
    const std::string state = db.value("state", "UNKNOWN");
    auto it = health_states_.find(name);
    if (it == health_states_.end()) {
      // The first look only sets the baseline: a restart must not re-alert.
      health_states_[name] = state;
      if (state != "OK") log_warning("health of '" + name + "' is " + state, {name});
      continue;
    }
    if (it->second == state) continue;
    AlertEvent event;
    event.kind = AlertKind::kHealth;
    event.database = name;
    event.health_old = it->second;
    event.health_new = state;
    for (const json& f : (*health)["findings"])
      if (f.value("database", "") == name)
        event.error += (event.error.empty() ? "" : "\n") + f.value("message", std::string());
    log(state == "OK" ? Priority::kInfo : Priority::kWarning,
        "health of '" + name + "' changed from " + it->second + " to " + state, {name});
    it->second = state;
    raise_alert(std::move(event));
  }
}

// ---- rotation and scheduled verification ----

void Daemon::maintenance_due(const std::string& database, const std::string& kind) {
  DatabaseState& state = databases_.at(database);
  if (state.running || state.maintenance_running) {
    auto& pending = state.maintenance_pending;
    if (std::find(pending.begin(), pending.end(), kind) == pending.end()) {
      log_info("scheduled " + kind + " of '" + database + "' waits for the job in progress", {database});
      pending.push_back(kind);
    }
    return;
  }
  start_maintenance(database, kind);
}

void Daemon::run_pending_maintenance(const std::string& database) {
  auto it = databases_.find(database);
  if (it == databases_.end() || stopping_) return;
  DatabaseState& state = it->second;
  if (state.running || state.maintenance_running || state.maintenance_pending.empty()) return;
  std::string kind = state.maintenance_pending.front();
  state.maintenance_pending.erase(state.maintenance_pending.begin());
  start_maintenance(database, kind);
}

void Daemon::start_maintenance(const std::string& database, const std::string& kind) {
  DatabaseState& state = databases_.at(database);
  state.maintenance_running = true;
  log_info("scheduled " + kind + " of '" + database + "' started", {database});
  Config config = workspace_->config();
  asio::post(pool_, [this, database, kind, config = std::move(config)]() mutable {
    Workspace ws(std::move(config), wall_ms);
    Result<json> result = Status::Internal("unhandled");
    try {
      if (kind == "rotate") {
        result = rotate(ws, RotateRequest{database, false});
      } else {
        const DatabaseConfig* db = ws.config().find_database(database);
        result = db == nullptr ? Result<json>(Status::NotFound("database '" + database + "' is gone"))
                               : verify_latest(ws, *db);
      }
    } catch (const std::exception& e) {
      result = Status::Internal(std::string("internal error: ") + e.what());
    }
    for (const std::string& w : ws.take_warnings()) log_warning(w, {database});
    asio::post(io_, [this, database, kind, result = std::move(result)] {
      finish_maintenance(database, kind, result);
    });
  });
}

void Daemon::finish_maintenance(const std::string& database, const std::string& kind,
                                const Result<json>& result) {
  const LogFields fields{database};
  if (!result.ok()) {
    log_error("scheduled " + kind + " of '" + database + "' failed: " + result.status().message(), fields);
    AlertEvent failure;
    failure.database = database;
    failure.job = kind;
    failure.error = result.status().message();
    raise_alert(std::move(failure));
  } else if (kind == "rotate") {
    for (const json& r : (*result)["rotations"])
      if (r.value("error", "").empty())
        log_info("rotation of '" + database + "' on target '" + r.value("target", "") + "': kept " +
                     std::to_string(r["kept"].size()) + ", removed " + std::to_string(r["removed"].size()),
                 fields);
    for (const json& p : (*result)["prunes"])
      if (p.value("error", "").empty())
        log_info("prune of target '" + p.value("target", "") + "': " +
                     std::to_string(p.value("packs_removed", 0)) + " pack(s), " +
                     std::to_string(p.value("bytes_removed", uint64_t{0})) + " bytes deleted",
                 fields);
    for (const json& e : (*result)["errors"]) {
      log_error("rotation of '" + database + "' failed: " + e.value("error", ""), fields);
      AlertEvent failure;
      failure.database = database;
      failure.target = e.value("target", "");
      failure.job = e.value("database", "").empty() ? "prune" : "rotate";
      failure.error = e.value("error", "");
      raise_alert(std::move(failure));
    }
  } else {
    for (const json& v : (*result)["results"]) {
      if (v.value("ok", false))
        log_info("scheduled verification of backup " + v.value("id", "") + " on target '" +
                     v.value("target", "") + "': OK",
                 {database, v.value("id", "")});
      else
      {
        log_error("scheduled verification of backup " + v.value("id", "") + " on target '" +
                      v.value("target", "") + "' FAILED: " + v.value("error", ""),
                  {database, v.value("id", "")});
        AlertEvent failure;
        failure.database = database;
        failure.target = v.value("target", "");
        failure.backup_id = v.value("id", "");
        failure.job = "verify";
        failure.error = v.value("error", "");
        raise_alert(std::move(failure));
      }
    }
  }
  arm_health_check(std::chrono::seconds(2));
  if (auto it = databases_.find(database); it != databases_.end()) {
    it->second.maintenance_running = false;
    run_pending_maintenance(database);
  }
  if (stopping_ && idle()) io_.stop();
}

// ---- shutdown ----

void Daemon::remove_own_temporaries() const {
  const std::string mine = std::to_string(::getpid()) + "-";
  for (const auto& [name, target] : workspace_->config().targets) {
    if (target.type != "local") continue;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(target.path + "/tmp", ec))
      if (entry.path().filename().string().rfind(mine, 0) == 0) std::filesystem::remove(entry.path(), ec);
  }
}

bool Daemon::idle() const {
  for (const auto& [name, state] : databases_)
    if (state.running || state.maintenance_running) return false;
  return true;
}

void Daemon::shutdown(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  log_info("stopping (" + why + ")");
  notify_stopping();
  if (control_) control_->close();
  if (http_) http_->close();
  scheduler_timer_.cancel();
  watchdog_timer_.cancel();
  health_timer_.cancel();
  bool any = false;
  for (auto& [name, state] : databases_) {
    if (!state.running) continue;
    any = true;
    state.running->cancel = true;
    if (state.running->job) state.running->job->cancel();
  }
  if (!any) {
    io_.stop();
    return;
  }
  shutdown_timer_.expires_after(kShutdownDeadline);
  shutdown_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    log_warning("jobs did not stop in time; exiting without publishing them");
    io_.stop();
  });
}

}  // namespace sqlbak::daemon
