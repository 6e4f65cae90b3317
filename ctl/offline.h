// sqlbakctl --offline: the commands that run in the process itself, straight
// against the databases and targets of a config file (cron jobs, scripts,
// disaster recovery on a fresh host). Each returns the process exit status
// (0 ok, 1 failed, 2 usage) and prints its errors on stderr.
#pragma once

#include <string>
#include <vector>

namespace sqlbak::ctl {

struct GlobalOptions {
  std::string config_file = "/etc/sqlbak/sqlbak.yaml";
  std::string socket;
  bool json = false;
  bool offline = false;
};

int offline_backup(const GlobalOptions& g, const std::vector<std::string>& databases);
int offline_list(const GlobalOptions& g, const std::string& database, const std::string& target);
int offline_show(const GlobalOptions& g, const std::string& id, const std::string& target);
int offline_verify(const GlobalOptions& g, const std::vector<std::string>& ids,
                   const std::string& database, bool all, const std::string& target);
struct RestoreArgs {
  std::string what;  // backup id, or database name with `at`
  std::string to, at, target;
  bool force = false;
};
int offline_restore(const GlobalOptions& g, const RestoreArgs& args);

int config_check(const std::string& file, bool json);

}  // namespace sqlbak::ctl
