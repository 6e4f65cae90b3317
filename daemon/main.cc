// sqlbakd: the sqlbak daemon. Parses the command line, loads the
// configuration, and runs the Daemon's event loop in the foreground
// (systemd Type=notify).
#include <utility>  // Boost 1.74 asio uses std::exchange without including it


#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <iostream>

#include "daemon/daemon.h"
#include "daemon/log.h"
#include "lib/calendar.h"
#include "lib/config.h"
#include "lib/process_setup.h"

int main(int argc, char** argv) {
  // First thing, before any secret is read.
  sqlbak::prepare_process();
  CLI::App app{"sqlbakd: the sqlbak backup daemon"};
  std::string config_file = "/etc/sqlbak/sqlbak.yaml";
  bool check_only = false;
  app.add_option("-c,--config", config_file, "configuration file")->capture_default_str();
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  app.set_version_flag("--version", "sqlbakd " SQLBAK_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  sqlbak::ConfigLoadResult r = sqlbak::load_config(config_file);
  for (const sqlbak::ConfigError& e : r.errors) std::cerr << e.to_string() << "\n";
  if (!r.config) return 1;
  if (check_only) {
    for (const std::string& w : r.warnings) std::cerr << "warning: " << w << "\n";
    std::cout << config_file << ": valid, " << r.config->databases.size() << " database(s)\n";
    const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch()).count();
    auto next = [now_us](const std::string& expr) -> std::string {
      auto spec = sqlbak::parse_calendar(expr);  // already validated by load_config
      if (!spec.ok()) return spec.status().message();
      auto t = sqlbak::next_elapse(*spec, now_us);
      return t ? sqlbak::format_elapse(*t) : "never";
    };
    for (const sqlbak::DatabaseConfig& db : r.config->databases)
      std::cout << "  " << db.name << " (" << db.path << "): next backup " << next(db.settings.schedule)
                << ", next rotation " << next(db.settings.rotate) << "\n";
    return 0;
  }

  // SIGHUP, SIGTERM and SIGINT go to the thread that runs the event loop and
  // nowhere else: every other thread (the logger's, the worker pool, and the
  // backup pipelines the pool starts) inherits them blocked. A signal taken on
  // a worker stuck in a long system call could otherwise wait there (under
  // ThreadSanitizer, which delivers signals at its own safe points, one
  // SIGTERM was seen to wait forever). One that arrives before the daemon's
  // handler exists stays pending until it does.
  sigset_t control_signals;
  sigemptyset(&control_signals);
  for (int sig : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&control_signals, sig);
  pthread_sigmask(SIG_BLOCK, &control_signals, nullptr);
  sqlbak::daemon::log_init();
  for (const std::string& w : r.warnings) sqlbak::daemon::log_warning(w);
  boost::asio::io_context io;
  int exit_status = 0;
  {
    sqlbak::daemon::Daemon daemon(io, config_file, std::move(*r.config));
    pthread_sigmask(SIG_UNBLOCK, &control_signals, nullptr);
    sqlbak::Status st = daemon.start();
    if (!st.ok()) {
      sqlbak::daemon::log_error("cannot start: " + st.message());
      return 1;
    }
    io.run();
    if (!daemon.idle()) {
      // A job still finishing on the pool (an integrity check cannot be
      // interrupted) is dropped: its manifest was not written, so nothing
      // half-done is listed.
      daemon.remove_own_temporaries();
      sqlbak::daemon::log_info("stopped");
      std::_Exit(exit_status);
    }
  }
  sqlbak::daemon::log_info("stopped");
  return exit_status;
}
