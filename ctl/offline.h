// sqlbakctl --offline: runs a control request in this process, straight
// against the databases and targets of a config file (cron jobs, scripts,
// disaster recovery on a fresh host), and returns the same JSON result the
// daemon would send.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "lib/protocol.h"
#include "lib/status.h"

namespace sqlbak::ctl {

// Config errors are printed (each FILE:LINE:COLUMN: message) before the
// returned error. PROGRESS shows the progress of backups on stderr.
Result<nlohmann::json> run_offline(const std::string& config_file, const Request& request, bool progress);

}  // namespace sqlbak::ctl
