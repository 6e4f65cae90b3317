#include "lib/metrics.h"

#include <catch2/catch.hpp>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "lib/catalog.h"
#include "lib/config.h"
#include "lib/operations.h"
#include "testutil.h"

namespace sqlbak {
namespace {

using nlohmann::json;

// One sample of the exposition text, its labels unescaped.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> help, type;  // by family name
  std::vector<Sample> samples;
};

// Parses the text exposition format 0.0.4 strictly enough to catch our own
// mistakes: every line is "# HELP name text", "# TYPE name type" or
// `name{label="value",...} number`; a family's HELP and TYPE come before its
// samples, once.
Exposition parse_exposition(const std::string& text) {
  Exposition out;
  REQUIRE(!text.empty());
  REQUIRE(text.back() == '\n');
  std::istringstream in(text);
  std::string line;
  const std::regex name_rx("[a-zA-Z_:][a-zA-Z0-9_:]*");
  std::set<std::string> seen_samples_of;
  while (std::getline(in, line)) {
    INFO("line: " << line);
    REQUIRE(!line.empty());
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const bool is_help = line[2] == 'H';
      const std::string rest = line.substr(7);
      const size_t space = rest.find(' ');
      REQUIRE(space != std::string::npos);
      const std::string name = rest.substr(0, space);
      REQUIRE(std::regex_match(name, name_rx));
      REQUIRE(seen_samples_of.count(name) == 0);  // before the samples
      auto& map = is_help ? out.help : out.type;
      REQUIRE(map.count(name) == 0);
      map[name] = rest.substr(space + 1);
      if (!is_help) {
        const std::string& t = map[name];
        REQUIRE((t == "counter" || t == "gauge" || t == "histogram" || t == "summary" || t == "untyped"));
      }
      continue;
    }
    REQUIRE(line[0] != '#');
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    REQUIRE(std::regex_match(s.name, name_rx));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (line.at(i) != '}') {
        size_t eq = line.find('=', i);
        REQUIRE(eq != std::string::npos);
        const std::string label = line.substr(i, eq - i);
        REQUIRE(std::regex_match(label, std::regex("[a-zA-Z_][a-zA-Z0-9_]*")));
        REQUIRE(line.at(eq + 1) == '"');
        std::string value;
        size_t j = eq + 2;
        for (;; ++j) {
          const char c = line.at(j);
          if (c == '"') break;
          if (c == '\\') {
            const char e = line.at(++j);
            REQUIRE((e == '\\' || e == '"' || e == 'n'));
            value += e == 'n' ? '\n' : e;
          } else {
            value += c;
          }
        }
        REQUIRE(s.labels.count(label) == 0);
        s.labels[label] = value;
        i = j + 1;
        if (line.at(i) == ',') ++i;
      }
      ++i;
    }
    REQUIRE(line.at(i) == ' ');
    const std::string number = line.substr(i + 1);
    REQUIRE(std::regex_match(number, std::regex("-?[0-9]+(\\.[0-9]+)?(e[-+]?[0-9]+)?|NaN|[+-]Inf")));
    s.value = std::stod(number);
    seen_samples_of.insert(s.name);
    REQUIRE(out.type.count(s.name) == 1);
    REQUIRE(out.help.count(s.name) == 1);
    out.samples.push_back(std::move(s));
  }
  for (const auto& [name, type] : out.type) {
    INFO(name);
    CHECK(out.help.count(name) == 1);
    CHECK(name.rfind("sqlbak_", 0) == 0);
    if (type == "counter") CHECK(name.size() > 6);
    if (type == "counter") CHECK(name.substr(name.size() - 6) == "_total");
    if (type != "counter") CHECK(name.find("_total") == std::string::npos);
  }
  return out;
}

const Sample* find(const Exposition& e, const std::string& name,
                   const std::map<std::string, std::string>& labels) {
  for (const Sample& s : e.samples)
    if (s.name == name && s.labels == labels) return &s;
  return nullptr;
}

json sample_status() {
  return json{{"version", "0.1.0"},
              {"pid", 42},
              {"uptime_seconds", 3600},
              {"databases",
               {{{"name", "shop"},
                 {"next_backup", "2026-11-26T02:00:00Z"},
                 {"running", {{"job", 3}, {"done", 250}, {"total", 1000}}}},
                {{"name", "blog"}, {"next_backup", nullptr}, {"running", nullptr}}}}};
}

json sample_collected() {
  return json{{"databases",
               {{{"name", "shop"},
                 {"targets",
                  {{{"target", ""},
                    {"backups", {{"success", 0}, {"failure", 1}, {"cancelled", 0}}},
                    {"verifications", {{"success", 0}, {"failure", 0}}},
                    {"last_success", nullptr}},
                   {{"target", "local"},
                    {"backups", {{"success", 5}, {"failure", 2}, {"cancelled", 1}}},
                    {"verifications", {{"success", 3}, {"failure", 1}}},
                    {"last_success",
                     {{"id", "20261125T020000Z-abcdef"},
                      {"started_ms", 1795572000123},
                      {"duration_ms", 1500},
                      {"database_bytes", 8192000},
                      {"stored_bytes", 4096},
                      {"changed_pages", 3}}}}}}},
                {{"name", "blog"},
                 {"targets",
                  {{{"target", "local"},
                    {"backups", {{"success", 0}, {"failure", 0}, {"cancelled", 0}}},
                    {"verifications", {{"success", 0}, {"failure", 0}}},
                    {"last_success", nullptr}}}}}}},
              {"targets",
               {{{"target", "local"},
                 {"stored_bytes", 123456},
                 {"uploaded_bytes", 200000},
                 {"downloaded_bytes", 5000},
                 {"requests", {{"put", 10}, {"get", 4}, {"list", 7}, {"delete", 1}}}}}}};
}

json sample_health() {
  return json{
      {"state", "CRITICAL"},
      {"databases", {{{"name", "shop"}, {"state", "OK"}}, {{"name", "blog"}, {"state", "CRITICAL"}}}}};
}

TEST_CASE("render_metrics: well-formed exposition with the expected values", "[metrics]") {
  const Exposition e = parse_exposition(render_metrics(sample_status(), sample_collected(), sample_health()));

  CHECK(e.type.at("sqlbak_backups_total") == "counter");
  CHECK(e.type.at("sqlbak_verification_failures_total") == "counter");
  CHECK(e.type.at("sqlbak_target_requests_total") == "counter");
  CHECK(e.type.at("sqlbak_last_success_timestamp_seconds") == "gauge");
  CHECK(e.type.at("sqlbak_health_state") == "gauge");

  const Sample* s = find(e, "sqlbak_info", {{"version", "0.1.0"}});
  REQUIRE(s);
  CHECK(s->value == 1);
  REQUIRE(find(e, "sqlbak_uptime_seconds", {}));
  CHECK(find(e, "sqlbak_uptime_seconds", {})->value == 3600);

  s = find(e, "sqlbak_last_success_timestamp_seconds", {{"db", "shop"}, {"target", "local"}});
  REQUIRE(s);
  CHECK(s->value == 1795572000);
  CHECK(find(e, "sqlbak_last_backup_duration_seconds", {{"db", "shop"}, {"target", "local"}})->value == 1.5);
  CHECK(find(e, "sqlbak_last_backup_database_bytes", {{"db", "shop"}, {"target", "local"}})->value ==
        8192000);
  CHECK(find(e, "sqlbak_last_backup_stored_bytes", {{"db", "shop"}, {"target", "local"}})->value == 4096);
  CHECK(find(e, "sqlbak_last_backup_changed_pages", {{"db", "shop"}, {"target", "local"}})->value == 3);
  // No successful backup: no "last" series rather than a fake 0.
  CHECK_FALSE(find(e, "sqlbak_last_success_timestamp_seconds", {{"db", "blog"}, {"target", "local"}}));

  CHECK(
      find(e, "sqlbak_backups_total", {{"db", "shop"}, {"target", "local"}, {"result", "success"}})->value ==
      5);
  CHECK(
      find(e, "sqlbak_backups_total", {{"db", "shop"}, {"target", "local"}, {"result", "failure"}})->value ==
      2);
  CHECK(find(e, "sqlbak_backups_total", {{"db", "shop"}, {"target", ""}, {"result", "failure"}})->value == 1);
  CHECK(
      find(e, "sqlbak_backups_total", {{"db", "blog"}, {"target", "local"}, {"result", "success"}})->value ==
      0);
  CHECK(find(e, "sqlbak_verification_failures_total", {{"db", "shop"}, {"target", "local"}})->value == 1);
  CHECK(find(e, "sqlbak_verifications_total", {{"db", "shop"}, {"target", "local"}, {"result", "success"}})
            ->value == 3);

  CHECK(find(e, "sqlbak_health_state", {{"db", "shop"}})->value == 0);
  CHECK(find(e, "sqlbak_health_state", {{"db", "blog"}})->value == 2);

  CHECK(find(e, "sqlbak_job_running", {{"db", "shop"}})->value == 1);
  CHECK(find(e, "sqlbak_job_running", {{"db", "blog"}})->value == 0);
  CHECK(find(e, "sqlbak_job_progress_ratio", {{"db", "shop"}})->value == 0.25);
  CHECK(find(e, "sqlbak_job_progress_ratio", {{"db", "blog"}})->value == 0);
  CHECK(find(e, "sqlbak_next_backup_timestamp_seconds", {{"db", "shop"}})->value == 1795658400);
  CHECK_FALSE(find(e, "sqlbak_next_backup_timestamp_seconds", {{"db", "blog"}}));

  CHECK(find(e, "sqlbak_target_stored_bytes", {{"target", "local"}})->value == 123456);
  CHECK(find(e, "sqlbak_target_requests_total", {{"target", "local"}, {"method", "put"}})->value == 10);
  CHECK(find(e, "sqlbak_target_requests_total", {{"target", "local"}, {"method", "delete"}})->value == 1);
  CHECK(find(e, "sqlbak_target_uploaded_bytes_total", {{"target", "local"}})->value == 200000);
  CHECK(find(e, "sqlbak_target_downloaded_bytes_total", {{"target", "local"}})->value == 5000);

  CHECK(find(e, "sqlbak_scrape_error", {{"source", "catalog"}})->value == 0);
  CHECK(find(e, "sqlbak_scrape_error", {{"source", "health"}})->value == 0);
}

TEST_CASE("render_metrics: label values are escaped", "[metrics]") {
  CHECK(escape_label_value("plain") == "plain");
  CHECK(escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");

  const std::string nasty = "we\\ird \"db\"\nname{x=\"1\"}";
  json status = sample_status();
  status["databases"][0]["name"] = nasty;
  json health = sample_health();
  health["databases"][0]["name"] = nasty;
  const std::string text = render_metrics(status, nullptr, health);
  const Exposition e = parse_exposition(text);
  REQUIRE(find(e, "sqlbak_job_running", {{"db", nasty}}));
  CHECK(find(e, "sqlbak_health_state", {{"db", nasty}})->value == 0);
  // A raw newline in a label would have split the sample over two lines.
  CHECK(text.find("\"db\"\n") == std::string::npos);
}

TEST_CASE("render_metrics: a missing source leaves its families out and says so", "[metrics]") {
  const Exposition e = parse_exposition(render_metrics(sample_status(), nullptr, nullptr));
  CHECK(find(e, "sqlbak_scrape_error", {{"source", "catalog"}})->value == 1);
  CHECK(find(e, "sqlbak_scrape_error", {{"source", "health"}})->value == 1);
  CHECK(e.type.count("sqlbak_backups_total") == 0);
  CHECK(e.type.count("sqlbak_health_state") == 0);
  CHECK(find(e, "sqlbak_job_running", {{"db", "shop"}}));
}

TEST_CASE("collect_metrics: aggregates of the catalog per database and target", "[metrics]") {
  test::TempDir dir;
  const std::string text = "state_dir: " + dir.path() + "/state\n" +
                           "targets:\n  local: {type: local, path: " + dir.path() + "/repo}\n" +
                           "  other: {type: local, path: " + dir.path() + "/other}\n" +
                           "databases:\n  - name: shop\n    path: /srv/shop.db\n"
                           "  - name: blog\n    path: /srv/blog.db\n    targets: [local, other]\n";
  ConfigLoadResult loaded = load_config_from_string(text, dir.path() + "/config.yaml");
  INFO((loaded.errors.empty() ? "" : loaded.errors[0].to_string()));
  REQUIRE(loaded.config);
  Workspace ws(*loaded.config, [] { return int64_t{1795572000000}; });
  Catalog* catalog = ws.catalog();
  REQUIRE(catalog != nullptr);

  auto job = [](std::string kind, std::string db, std::string target, int64_t at, std::string result) {
    JobRecord j;
    j.kind = std::move(kind);
    j.database = std::move(db);
    j.target = std::move(target);
    j.started_at_ms = at;
    j.result = std::move(result);
    return j;
  };
  JobRecord first = job("backup", "shop", "local", 1000, "success");
  first.backup_id = "old";
  first.stored_bytes = 1000;
  first.bytes_uploaded = 1100;
  first.put_requests = 4;
  JobRecord second = job("backup", "shop", "local", 5000, "success");
  second.backup_id = "new";
  second.duration_ms = 2500;
  second.database_bytes = 40960;
  second.stored_bytes = 300;
  second.changed_pages = 2;
  second.bytes_uploaded = 310;
  second.put_requests = 2;
  second.list_requests = 3;
  JobRecord failed = job("backup", "shop", "local", 9000, "failure");
  failed.error = "disk full";
  JobRecord start_failure = job("backup", "blog", "", 9500, "failure");
  JobRecord verify_bad = job("verify", "shop", "local", 9600, "failure");
  verify_bad.get_requests = 5;
  verify_bad.bytes_downloaded = 777;
  JobRecord prune = job("prune", "", "local", 9700, "success");
  prune.stored_bytes = -200;
  prune.delete_requests = 6;
  JobRecord gone = job("backup", "removed-db", "local", 9800, "success");  // not configured any more
  gone.stored_bytes = 50;
  for (const JobRecord& j : {first, second, failed, start_failure, verify_bad, prune, gone})
    REQUIRE(catalog->record(j).ok());

  auto result = collect_metrics(ws);
  REQUIRE(result.ok());
  const json& c = *result;
  INFO(c.dump(2));

  std::map<std::pair<std::string, std::string>, json> per;
  for (const json& db : c["databases"])
    for (const json& t : db["targets"]) per[{db["name"], t["target"]}] = t;
  REQUIRE(per.count({"shop", "local"}));
  REQUIRE(per.count({"blog", "local"}));
  REQUIRE(per.count({"blog", "other"}));
  REQUIRE(per.count({"blog", ""}));
  CHECK(per.size() == 4);

  const json& shop = per[{"shop", "local"}];
  CHECK(shop["backups"]["success"] == 2);
  CHECK(shop["backups"]["failure"] == 1);
  CHECK(shop["backups"]["cancelled"] == 0);
  CHECK(shop["verifications"]["failure"] == 1);
  CHECK(shop["last_success"]["id"] == "new");
  CHECK(shop["last_success"]["started_ms"] == 5000);
  CHECK(shop["last_success"]["duration_ms"] == 2500);
  CHECK(shop["last_success"]["database_bytes"] == 40960);
  CHECK(shop["last_success"]["stored_bytes"] == 300);
  CHECK(shop["last_success"]["changed_pages"] == 2);
  CHECK(per[{"blog", "local"}]["last_success"].is_null());
  CHECK(per[{"blog", ""}]["backups"]["failure"] == 1);

  std::map<std::string, json> targets;
  for (const json& t : c["targets"]) targets[t["target"]] = t;
  REQUIRE(targets.size() == 2);
  const json& local = targets["local"];
  CHECK(local["stored_bytes"] == 1000 + 300 - 200 + 50);
  CHECK(local["uploaded_bytes"] == 1410);
  CHECK(local["downloaded_bytes"] == 777);
  CHECK(local["requests"]["put"] == 6);
  CHECK(local["requests"]["get"] == 5);
  CHECK(local["requests"]["list"] == 3);
  CHECK(local["requests"]["delete"] == 6);
  CHECK(targets["other"]["stored_bytes"] == 0);

  // And what the daemon's `metrics` request answers is this document.
  Request r;
  r.command = "metrics";
  r.args = json::object();
  auto via_query = run_query(ws, r);
  REQUIRE(via_query.ok());
  CHECK(*via_query == c);

  // The rendered form of it parses.
  parse_exposition(render_metrics(sample_status(), c, nullptr));
}

}  // namespace
}  // namespace sqlbak
