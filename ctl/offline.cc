#include "ctl/offline.h"

#include <chrono>
#include <cstdio>
#include <iostream>

#include <unistd.h>

#include "ctl/progress.h"
#include "lib/config.h"
#include "lib/operations.h"

namespace sqlbak::ctl {
namespace {

using nlohmann::json;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<json> backup(Workspace& ws, const json& args, bool progress) {
  std::vector<const DatabaseConfig*> selected;
  const std::vector<std::string> names = arg_strings(args, "databases");
  if (names.empty())
    for (const DatabaseConfig& d : ws.config().databases) selected.push_back(&d);
  for (const std::string& n : names) {
    const DatabaseConfig* d = ws.config().find_database(n);
    if (d == nullptr)
      return Status::NotFound("no database named '" + n + "' in " + ws.config().source_file);
    selected.push_back(d);
  }
  json all{{"backups", json::array()}, {"errors", json::array()}};
  for (const DatabaseConfig* db : selected) {
    const int64_t started = ws.now_ms();
    Status start_error;
    std::vector<TargetOutcome> outcomes;
    auto req = prepare_backup(ws, *db);
    if (!req.ok()) {
      start_error = req.status();
    } else {
      ProgressPrinter printer(::isatty(STDERR_FILENO));
      std::function<void(uint32_t, uint32_t)> bar;
      if (progress) bar = [&](uint32_t d, uint32_t t) { printer.update(db->name, d, t); };
      outcomes = run_backup(std::move(req).value(), bar, &start_error);
      if (progress) printer.finish();
    }
    json r = record_backup(ws, *db, started, start_error, outcomes);
    for (json& b : r["backups"]) all["backups"].push_back(std::move(b));
    for (json& e : r["errors"]) all["errors"].push_back(std::move(e));
  }
  return all;
}

}  // namespace

Result<json> run_offline(const std::string& config_file, const Request& request, bool progress) {
  ConfigLoadResult loaded = load_config(config_file);
  for (const ConfigError& e : loaded.errors) std::cerr << e.to_string() << "\n";
  if (!loaded.config) return Status::InvalidArgument("configuration " + config_file + " is not valid");
  Workspace ws(std::move(*loaded.config), wall_ms);
  const json& a = request.args;
  Result<json> result = Status::InvalidArgument("'" + request.command + "' is not available with --offline");
  if (request.command == "backup") {
    result = backup(ws, a, progress);
  } else if (request.command == "list" || request.command == "show" || request.command == "verify" ||
             request.command == "health" || request.command == "report" || request.command == "rotate") {
    result = run_query(ws, request);
  } else if (request.command == "restore") {
    result = restore(ws, RestoreRequest{arg_text(a, "what"), arg_text(a, "to"), arg_text(a, "at"),
                                        arg_text(a, "target"), a.value("force", false)});
  }
  for (const std::string& w : ws.take_warnings()) std::cerr << "sqlbakctl: warning: " << w << "\n";
  return result;
}

}  // namespace sqlbak::ctl
