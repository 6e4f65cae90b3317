// sqlbakctl: the command line of sqlbak. Parses the command line and hands
// each command to the daemon (over the control socket) or, with --offline,
// runs it in this process (ctl/offline.h).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <iostream>

#include "ctl/offline.h"
#include "lib/config.h"
#include "lib/manifest.h"

namespace {

using sqlbak::ctl::GlobalOptions;

constexpr int kExitUnreachable = 3;

std::string socket_path(const GlobalOptions& g) {
  if (!g.socket.empty()) return g.socket;
  sqlbak::ConfigLoadResult r = sqlbak::load_config(g.config_file);
  if (r.config) return r.config->socket;
  return "/run/sqlbak/control.sock";
}

// Commands that need the daemon. The control protocol arrives with sqlbakd
// (issue 3); until then this reports what users need to know.
int daemon_command(const GlobalOptions& g, const std::string& command) {
  const std::string path = socket_path(g);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  int rc = fd < 0 ? -1 : ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  if (fd >= 0) ::close(fd);
  if (rc != 0) {
    std::cerr << "sqlbakctl: cannot reach sqlbakd at " << path << ": " << std::strerror(err)
              << " (is sqlbakd running? `" << command
              << "` also works without the daemon with --offline -c FILE where supported)\n";
  } else {
    std::cerr << "sqlbakctl: sqlbakd at " << path << " does not speak the control protocol of this sqlbakctl\n";
  }
  return kExitUnreachable;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sqlbakctl: drive sqlbakd, or work on backups directly with --offline"};
  app.require_subcommand(1);
  GlobalOptions g;
  app.add_option("-c,--config", g.config_file, "configuration file")->capture_default_str();
  app.add_option("-s,--socket", g.socket, "control socket of sqlbakd (default: the config's socket)");
  app.add_flag("--json", g.json, "print one JSON document on stdout");
  app.add_flag("--offline", g.offline, "run in this process against the config's databases and targets");

  std::vector<std::string> databases, ids;
  std::string database, target, id;
  bool all = false, wait = false;
  sqlbak::ctl::RestoreArgs restore;

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

  auto* restore_cmd = app.add_subcommand("restore", "rebuild a database file from a backup");
  restore_cmd->add_option("ID_OR_DB", restore.what, "backup id, or database name with --at")->required();
  restore_cmd->add_option("--to", restore.to, "path of the restored database")->required();
  restore_cmd->add_option("--at", restore.at, "newest backup of DB taken at or before TIME");
  restore_cmd->add_flag("--force", restore.force, "replace an existing file at --to");
  restore_cmd->add_option("--target", restore.target, "target to read from");

  auto* config = app.add_subcommand("config", "configuration helpers");
  config->require_subcommand(1);
  std::string check_file;
  auto* config_check = config->add_subcommand("check", "validate a configuration file");
  config_check->add_option("FILE", check_file, "file to check (default: -c)");
  auto* config_example = config->add_subcommand("example", "print a commented example configuration");

  // Daemon-only commands: listed so that help and usage errors are right.
  std::vector<CLI::App*> daemon_only;
  for (const char* name : {"status", "rotate", "health", "report", "reload", "alert"}) {
    auto* c = app.add_subcommand(name, std::string("daemon command: ") + name);
    c->allow_extras();
    daemon_only.push_back(c);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  using namespace sqlbak::ctl;
  if (config_example->parsed()) {
    std::cout << sqlbak::example_config();
    return 0;
  }
  if (config_check->parsed()) return sqlbak::ctl::config_check(check_file.empty() ? g.config_file : check_file, g.json);

  for (CLI::App* c : daemon_only)
    if (c->parsed()) return daemon_command(g, c->get_name());

  if (!g.offline) {
    for (CLI::App* c : {backup, list, show, verify, restore_cmd})
      if (c->parsed()) return daemon_command(g, c->get_name());
  }
  if (backup->parsed()) return offline_backup(g, databases);
  if (list->parsed()) return offline_list(g, database, target);
  if (show->parsed()) return offline_show(g, id, target);
  if (verify->parsed()) return offline_verify(g, ids, database, all, target);
  if (restore_cmd->parsed()) {
    if (!restore.at.empty() && sqlbak::looks_like_backup_id(restore.what)) {
      std::cerr << "sqlbakctl: restore: --at takes a database name, not a backup id\n";
      return 2;
    }
    return offline_restore(g, restore);
  }
  return 2;
}
