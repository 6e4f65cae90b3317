// sqlbakd: the sqlbak daemon. This build provides --check-config; the event
// loop, scheduler and control socket arrive with issue 3.
#include <CLI/CLI.hpp>
#include <iostream>

#include "lib/config.h"

int main(int argc, char** argv) {
  CLI::App app{"sqlbakd: the sqlbak backup daemon"};
  std::string config_file = "/etc/sqlbak/sqlbak.yaml";
  bool check_only = false;
  app.add_option("-c,--config", config_file, "configuration file")->capture_default_str();
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  sqlbak::ConfigLoadResult r = sqlbak::load_config(config_file);
  for (const sqlbak::ConfigError& e : r.errors) std::cerr << e.to_string() << "\n";
  if (!r.config) return 1;
  if (check_only) {
    std::cout << config_file << ": valid\n";
    return 0;
  }
  std::cerr << "sqlbakd: the daemon mode is not available in this build; use "
               "`sqlbakctl --offline -c " << config_file << " backup` from cron or a systemd timer\n";
  return 1;
}
