// Daemon: the state of sqlbakd and the event loop that owns it.
//
// One io_context thread owns everything here: the configuration, the
// schedule of each database, the job table, the control connections. Work
// that blocks (opening a database, a backup step, finishing a backup, list,
// verify) runs on a worker pool of `workers` threads and posts its result back
// to the loop. A job never has two steps in flight, so the jobs of several
// databases interleave step by step on the pool, and a large database cannot
// starve a small one.
#pragma once

#include <utility>  // Boost 1.74 asio uses std::exchange without including it

#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/alert_delivery.h"
#include "lib/calendar.h"
#include "lib/config.h"
#include "lib/operations.h"
#include "lib/protocol.h"

namespace sqlbak::daemon {

class ControlServer;
class HttpServer;

// How a control request is answered: events first, then one reply. Used on
// the loop thread only.
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void event(const nlohmann::json& e) = 0;
  virtual void reply(const nlohmann::json& r) = 0;
};

struct RunningJob;

class Daemon {
 public:
  Daemon(boost::asio::io_context& io, std::string config_file, Config config);
  ~Daemon();

  // Listens on the control socket, arms timers and signals, catches up missed
  // runs, then sends READY=1. Returns an error (socket in use, ...) otherwise.
  Status start();

  // Handles one control request (loop thread).
  void handle(const Request& request, std::shared_ptr<Responder> responder);

  // The one shutdown path: SIGTERM, SIGINT.
  void shutdown(const std::string& why);
  // True when no backup is running.
  bool idle() const;
  // Removes this process's unfinished object files from the local targets,
  // for an exit that cannot wait for the writers.
  void remove_own_temporaries() const;

 private:
  // A calendar-driven maintenance job of one database: rotation (retention
  // and prune) or the scheduled verification of its newest backups.
  struct MaintenanceTimer {
    std::string kind;  // "rotate" | "verify"
    std::optional<CalendarSpec> spec;
    std::optional<int64_t> next_us;
  };

  struct DatabaseState {
    DatabaseConfig config;
    std::optional<CalendarSpec> schedule;
    std::optional<int64_t> next_backup_us;
    std::shared_ptr<RunningJob> running;
    MaintenanceTimer rotate{"rotate", {}, {}};
    MaintenanceTimer verify{"verify", {}, {}};
    // A maintenance job runs on the pool; one at a time per database, never
    // beside its backup. Those that come due meanwhile wait here.
    bool maintenance_running = false;
    std::vector<std::string> maintenance_pending;
  };

  // Commands.
  void cmd_status(const Request&, std::shared_ptr<Responder>);
  void cmd_backup(const Request&, std::shared_ptr<Responder>);
  void cmd_reload(const Request&, std::shared_ptr<Responder>);
  void cmd_on_pool(const Request&, std::shared_ptr<Responder>);

  // Jobs.
  std::shared_ptr<RunningJob> start_backup(const std::string& database, const std::string& trigger);
  void run_step(const std::shared_ptr<RunningJob>& job);
  void finish_when_drained(const std::shared_ptr<RunningJob>& job);
  void finish_job(const std::shared_ptr<RunningJob>& job, const Status& status,
                  std::vector<TargetOutcome> outcomes);
  // Rotation and scheduled verification.
  void maintenance_due(const std::string& database, const std::string& kind);
  void start_maintenance(const std::string& database, const std::string& kind);
  void finish_maintenance(const std::string& database, const std::string& kind,
                          const Result<nlohmann::json>& result);
  void run_pending_maintenance(const std::string& database);

  // Alerts and the periodic health check that raises them on changes.
  void raise_alert(AlertEvent event);
  void arm_health_check(std::chrono::seconds delay);
  void check_health_now();
  void on_health(const Result<nlohmann::json>& health);
  void add_alert_findings(nlohmann::json& health) const;
  nlohmann::json alert_channels_json() const;

  // Configuration and schedule.
  Status reload(const std::string& why);
  // After a reload: a changed `http:` section restarts the listener; an
  // unchanged one re-reads its token file.
  void reload_http();
  void apply_config(Config config);
  void compute_schedules(bool catch_up);
  void arm_scheduler();
  void on_scheduler_tick();
  void arm_watchdog();
  void wait_signal();
  void update_status();
  int64_t now_ms() const;

  boost::asio::io_context& io_;
  boost::asio::thread_pool pool_;
  std::string config_file_;
  std::shared_ptr<Workspace> workspace_;
  std::map<std::string, DatabaseState> databases_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<HttpServer> http_;  // the `http:` listener, when configured
  boost::asio::signal_set signals_;
  boost::asio::steady_timer scheduler_timer_;
  boost::asio::steady_timer watchdog_timer_;
  boost::asio::steady_timer shutdown_timer_;
  std::chrono::microseconds watchdog_interval_{0};
  std::chrono::steady_clock::time_point started_;
  int64_t next_job_id_ = 1;
  bool stopping_ = false;
  std::string last_result_;  // for STATUS=
  // Deliveries take seconds to minutes when a server is down: their own
  // threads, never the loop's nor the backups' pool.
  boost::asio::thread_pool alert_pool_{2};
  std::unique_ptr<AlertDispatcher> alerts_;
  boost::asio::steady_timer health_timer_;
  bool health_check_running_ = false;
  // Health state per database as last observed (loop thread); absent before
  // the first check, which only sets the baseline.
  std::map<std::string, std::string> health_states_;
};

}  // namespace sqlbak::daemon
