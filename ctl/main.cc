// sqlbakctl: the command line of sqlbak. Turns the command line into a
// control request, runs it in the daemon (over its socket) or, with
// --offline, in this process, and prints the result for people or, with
// --json, as one JSON document.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "ctl/alert_command.h"
#include "ctl/calendar_command.h"
#include "ctl/client.h"
#include "ctl/progress.h"
#include "ctl/offline.h"
#include "ctl/render.h"
#include "lib/config.h"
#include "lib/file_permissions.h"
#include "lib/manifest.h"
#include "lib/process_setup.h"

namespace {

using nlohmann::json;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

struct GlobalOptions {
  std::string config_file = "/etc/sqlbak/sqlbak.yaml";
  std::string socket;
  bool json = false;
  bool offline = false;
};

std::string socket_path(const GlobalOptions& g) {
  if (!g.socket.empty()) return g.socket;
  sqlbak::ConfigLoadResult r = sqlbak::load_config(g.config_file);
  if (r.config) return r.config->socket;
  // Say why the config's socket is not used: after an edit gone wrong this is
  // how the user learns where the error is.
  for (const sqlbak::ConfigError& e : r.errors) std::cerr << e.to_string() << "\n";
  std::cerr << "sqlbakctl: " << g.config_file
            << " is not valid; trying the default socket /run/sqlbak/control.sock (use -s to choose)\n";
  return "/run/sqlbak/control.sock";
}

int print_result(const GlobalOptions& g, const std::string& command, const json& result) {
  if (g.json)
    std::cout << result.dump(2) << "\n";
  else
    sqlbak::ctl::render(command, result, std::cout, std::cerr);
  return sqlbak::ctl::result_exit_status(command, result);
}

int fail(const sqlbak::Status& st) {
  std::cerr << "sqlbakctl: " << st.message() << "\n";
  return st.code() == sqlbak::ErrorCode::kUsage ? kExitUsage : kExitFailed;
}

// `health` speaks the monitoring-plugins convention even when it cannot check:
// a summary line on stdout and UNKNOWN (3).
int health_unknown(const sqlbak::Status& st) {
  std::cout << "SQLBAK UNKNOWN - " << st.message() << "\n";
  std::cerr << "sqlbakctl: " << st.message() << "\n";
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  // --offline and restore read the S3 keys and other secrets into this
  // process, and --offline runs the backup pipeline's threads.
  sqlbak::prepare_process();
  CLI::App app{"sqlbakctl: drive sqlbakd, or work on backups directly with --offline"};
  app.require_subcommand(1);
  GlobalOptions g;
  app.add_option("-c,--config", g.config_file, "configuration file")->capture_default_str();
  app.add_option("-s,--socket", g.socket, "control socket of sqlbakd (default: the config's socket)");
  app.add_flag("--json", g.json, "print one JSON document on stdout");
  app.add_flag("--offline", g.offline, "run in this process against the config's databases and targets");

  sqlbak::Request request;
  std::vector<std::string> databases, ids;
  std::string database, target, id;
  bool all = false, wait = false;
  std::string what, to, at;
  bool force = false;

  auto* backup = app.add_subcommand("backup", "back up now (all databases if none named)");
  backup->add_option("DB", databases, "databases to back up");
  backup->add_flag("--wait", wait, "wait for the backup and exit with its result");

  auto* list = app.add_subcommand("list", "list backups, newest first");
  list->add_option("DB", database, "only this database");
  list->add_option("--target", target, "only this target");

  auto* show = app.add_subcommand("show", "show one backup's manifest");
  show->add_option("ID", id, "backup id")->required();
  show->add_option("--target", target, "target to read from");

  auto* verify = app.add_subcommand("verify", "re-read, check and test-restore backups");
  verify->add_option("ID", ids, "backup ids");
  verify->add_option("--db", database, "every backup of this database");
  verify->add_flag("--all", all, "every backup");
  verify->add_option("--target", target, "only this target");

  auto* restore = app.add_subcommand(
      "restore", "rebuild a database file from a backup (always runs in sqlbakctl itself)");
  restore->add_option("ID_OR_DB", what, "backup id, or database name with --at")->required();
  restore->add_option("--to", to, "path of the restored database")->required();
  restore->add_option("--at", at, "newest backup of DB taken at or before TIME");
  restore->add_flag("--force", force, "replace an existing file at --to");
  restore->add_option("--target", target, "target to read from");

  auto* config = app.add_subcommand("config", "configuration helpers");
  config->require_subcommand(1);
  std::string check_file;
  auto* config_check = config->add_subcommand("check", "validate a configuration file");
  config_check->add_option("FILE", check_file, "file to check (default: -c)");
  auto* config_example = config->add_subcommand("example", "print a commented example configuration");

  std::string calendar_expr, base_time;
  int iterations = 1;
  auto* calendar = app.add_subcommand("calendar", "print the next elapses of a schedule expression");
  calendar->add_option("EXPR", calendar_expr, "calendar expression (systemd.time(7))")->required();
  calendar->add_option("--iterations", iterations, "how many elapses to print")->check(CLI::Range(1, 100000));
  calendar->add_option("--base-time", base_time, "compute from this time instead of now");

  bool dry_run = false;
  auto* rotate = app.add_subcommand("rotate", "apply retention and prune; print what is kept and why");
  rotate->add_option("DB", database, "only this database");
  rotate->add_flag("--dry-run", dry_run, "show what would be removed, change nothing");

  auto* health = app.add_subcommand(
      "health", "check backups and targets; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN");
  health->add_option("DB", database, "only this database");

  int days = 7;
  auto* report = app.add_subcommand("report", "history: totals, trends, errors, recommendations");
  report->add_option("--days", days, "days of history")->capture_default_str();
  report->add_option("DB", database, "only this database");

  auto* alert = app.add_subcommand("alert", "alert channels (alerts: in the config)");
  alert->require_subcommand(1);
  auto* alert_test = alert->add_subcommand(
      "test", "send a test alert through every configured channel, here, and report each result");

  auto* status = app.add_subcommand("status", "daemon and per-database state");
  auto* reload = app.add_subcommand("reload", "reload the daemon's configuration (as SIGHUP)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  if (config_example->parsed()) {
    std::cout << sqlbak::example_config();
    return 0;
  }
  if (config_check->parsed()) {
    const std::string file = check_file.empty() ? g.config_file : check_file;
    sqlbak::ConfigLoadResult r = sqlbak::load_config(file);
    json errors = json::array();
    for (const sqlbak::ConfigError& e : r.errors) {
      std::cerr << e.to_string() << "\n";
      errors.push_back({{"file", e.file}, {"line", e.line}, {"column", e.column}, {"message", e.message}});
    }
    for (const std::string& w : r.warnings) std::cerr << "sqlbakctl: warning: " << w << "\n";
    if (g.json)
      std::cout << json{{"file", file}, {"valid", r.errors.empty()}, {"errors", errors}, {"warnings", r.warnings}}.dump(2)
                << "\n";
    else if (r.errors.empty())
      std::cout << file << ": valid, " << r.config->databases.size() << " database(s), "
                << r.config->targets.size() << " target(s)\n";
    return r.errors.empty() ? 0 : kExitFailed;
  }

  if (calendar->parsed()) return sqlbak::ctl::calendar_command(calendar_expr, iterations, base_time);
  if (alert_test->parsed()) return sqlbak::ctl::alert_test_command(g.config_file, g.json);

  bool runs_locally = g.offline;
  if (backup->parsed()) {
    request = {"backup", {{"databases", databases}, {"wait", wait}}};
  } else if (list->parsed()) {
    request = {"list", {{"database", database}, {"target", target}}};
  } else if (show->parsed()) {
    request = {"show", {{"id", id}, {"target", target}}};
  } else if (verify->parsed()) {
    request = {"verify", {{"ids", ids}, {"database", database}, {"all", all}, {"target", target}}};
  } else if (restore->parsed()) {
    if (!at.empty() && sqlbak::looks_like_backup_id(what)) {
      std::cerr << "sqlbakctl: restore: --at takes a database name, not a backup id\n";
      return kExitUsage;
    }
    // The daemon never writes files for a client; restore reads the targets itself.
    runs_locally = true;
    request = {"restore", {{"what", what}, {"to", to}, {"at", at}, {"target", target}, {"force", force}}};
  } else if (rotate->parsed()) {
    request = {"rotate", {{"database", database}, {"dry_run", dry_run}}};
  } else if (health->parsed()) {
    request = {"health", {{"database", database}}};
  } else if (report->parsed()) {
    request = {"report", {{"database", database}, {"days", days}}};
  } else if (status->parsed()) {
    request = {"status", json::object()};
  } else if (reload->parsed()) {
    request = {"reload", json::object()};
  }
  if (request.command.empty()) return kExitUsage;
  request.id = ::getpid();

  if (runs_locally) {
    // Secrets go into this process: say when others can read the secret files
    // (run_offline prints the configuration's errors itself). The configuration
    // file itself holds no secret: its mode is for sqlbakd's log and the config
    // checks to point out, and often is how a user of --offline reads it.
    const auto config_warning = sqlbak::check_file_permissions(g.config_file, "configuration file");
    for (const std::string& w : sqlbak::load_config(g.config_file).warnings)
      if (w != config_warning) std::cerr << "sqlbakctl: warning: " << w << "\n";
    // Offline backups run from cron: progress only when someone watches.
    auto result = sqlbak::ctl::run_offline(g.config_file, request, !g.json && ::isatty(STDERR_FILENO));
    if (!result.ok()) return request.command == "health" ? health_unknown(result.status()) : fail(result.status());
    return print_result(g, request.command, *result);
  }

  sqlbak::ctl::ProgressPrinter progress(::isatty(STDERR_FILENO));
  sqlbak::ctl::RemoteError error;
  auto result = sqlbak::ctl::call_daemon(
      socket_path(g), request,
      [&](const json& e) {
        if (!g.json && e.value("event", "") == "progress")
          progress.update(e.value("database", std::string()), e.value("done", uint64_t{0}),
                          e.value("total", uint64_t{0}));
      },
      &error);
  progress.finish();
  if (!result) {
    if (request.command == "health") return health_unknown(error.status);
    if (error.unreachable) {
      std::cerr << "sqlbakctl: " << error.status.message() << "\n";
      return kExitUnreachable;
    }
    return fail(error.status);
  }
  return print_result(g, request.command, *result);
}
