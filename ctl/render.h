// Human output of sqlbakctl: turns the JSON result of a command (the same
// document `--json` prints, from the daemon or from --offline) into text.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace sqlbak::ctl {

// Prints RESULT of COMMAND for people on OUT; what failed (a backup on some
// target, a damaged backup found by verify) also goes to ERR, one line each.
void render(const std::string& command, const nlohmann::json& result, std::ostream& out,
            std::ostream& err);

// The exit status a successful reply still implies: 1 when a verify found a
// damaged backup or a backup failed on some target, else 0.
int result_exit_status(const std::string& command, const nlohmann::json& result);

}  // namespace sqlbak::ctl
