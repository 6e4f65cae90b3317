// report_bench: how long `report` takes on a catalog with years of history.
//
//   report_bench [--jobs N] [--years Y] [--databases D] [--reps R] [--seed S]
//                [--state-dir DIR]
//
// Fills a catalog (STATE_DIR/catalog.db; a fresh temporary directory, removed
// at the end, unless --state-dir names one, which is kept for other tools to
// read) with N generated jobs (default 10,000) spread evenly over Y years
// (default 3) ending now: backups of D databases (default 5) with ~10 % failures
// and a few repeated error texts, plus verify, rotate and prune jobs. Then it
// times, R times each (default 5), build_report() over 365 days and over all
// the history (3660 days), each on a freshly opened catalog as `sqlbakctl
// --offline report` would; for all the history it also times the two halves
// apart (read_all: Catalog::jobs_since, compute_all: compute_report). It prints
// one JSON document (times in milliseconds):
//   {"jobs","databases","years","catalog_bytes","state_dir","now_unix_ms",
//    "fill_ms","timings_ms":{"open":[...],"report_365":[...],"report_all":[...],
//    "read_all":[...],"compute_all":[...]}, "median_ms":{the same keys},
//    "jobs_in_window":{"report_365","report_all"}}
// Exit status 2 for bad arguments, 1 when a step fails.
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/catalog.h"
#include "lib/report.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int64_t kDayMs = 86'400'000;

struct Args {
  int64_t jobs = 10'000;
  int years = 3;
  int databases = 5;
  int reps = 5;
  uint64_t seed = 1;
  std::string state_dir;
};

int usage(const std::string& why) {
  std::cerr << "report_bench: " << why
            << "\nusage: report_bench [--jobs N] [--years Y] [--databases D] [--reps R] [--seed S]"
               " [--state-dir DIR]\n";
  return 2;
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Generated jobs, oldest first. Each database has its own size and change
// rate, so the report has something to say about each.
std::vector<sqlbak::JobRecord> generate(const Args& a, int64_t now_ms) {
  std::mt19937_64 rng(a.seed);
  std::uniform_real_distribution<double> unit(0, 1);
  const char* errors[] = {"disk full", "database is locked", "target unreachable: connection refused",
                          "checksum mismatch"};
  const int64_t span = static_cast<int64_t>(a.years) * 365 * kDayMs;
  std::vector<sqlbak::JobRecord> out;
  out.reserve(static_cast<size_t>(a.jobs));
  for (int64_t i = 0; i < a.jobs; ++i) {
    sqlbak::JobRecord j;
    const int db = static_cast<int>(i % a.databases);
    j.database = "db" + std::to_string(db);
    j.target = "local";
    j.started_at_ms = now_ms - span + span * i / a.jobs;
    const double roll = unit(rng);
    j.kind = roll < 0.85 ? "backup" : roll < 0.93 ? "verify" : roll < 0.97 ? "rotate" : "prune";
    if (j.kind == "prune") j.database.clear();
    j.result = unit(rng) < 0.1 ? "failure" : "success";
    if (j.result == "failure") j.error = errors[rng() % 4];
    j.page_size = 4096;
    j.page_count = int64_t{1000} * (db + 1) * (db + 1);
    j.database_bytes = j.page_count * j.page_size;
    j.duration_ms = 200 + static_cast<int64_t>(unit(rng) * 1000 * (db + 1));
    if (j.kind == "backup" && j.result == "success") {
      const double fraction = db == 0 ? 0.95 : 0.002 * (db + 1) * unit(rng);
      j.changed_pages = static_cast<int64_t>(fraction * static_cast<double>(j.page_count));
      j.stored_bytes = j.changed_pages * j.page_size * 10 / (15 + db * 10);
      j.bytes_uploaded = j.stored_bytes;
      j.put_requests = 1 + j.stored_bytes / (8 << 20);
      j.backup_id = "b" + std::to_string(i);
    }
    j.get_requests = j.kind == "verify" ? 3 : 0;
    j.list_requests = 1;
    j.delete_requests = j.kind == "prune" ? 2 : 0;
    out.push_back(std::move(j));
  }
  return out;
}

// Writes JOBS into the catalog in one transaction (Catalog::record commits
// each job: 10,000 fsyncs would time the disk, not the report).
bool fill(const std::string& path, const std::vector<sqlbak::JobRecord>& jobs) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return false;
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  bool ok = sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) == SQLITE_OK &&
            sqlite3_prepare_v2(
                db,
                "INSERT INTO jobs (kind, \"database\", target, backup_id, started_at_ms, duration_ms,"
                " database_bytes, stored_bytes, changed_pages, result, error, page_count, page_size,"
                " bytes_uploaded, bytes_downloaded, put_requests, get_requests, list_requests,"
                " delete_requests) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                -1, &st, nullptr) == SQLITE_OK;
  for (const sqlbak::JobRecord& j : jobs) {
    if (!ok) break;
    int c = 0;
    for (const std::string* s : {&j.kind, &j.database, &j.target, &j.backup_id})
      sqlite3_bind_text(st, ++c, s->c_str(), -1, SQLITE_TRANSIENT);
    for (int64_t v : {j.started_at_ms, j.duration_ms, j.database_bytes, j.stored_bytes, j.changed_pages})
      sqlite3_bind_int64(st, ++c, v);
    for (const std::string* s : {&j.result, &j.error})
      sqlite3_bind_text(st, ++c, s->c_str(), -1, SQLITE_TRANSIENT);
    for (int64_t v : {j.page_count, j.page_size, j.bytes_uploaded, j.bytes_downloaded, j.put_requests,
                      j.get_requests, j.list_requests, j.delete_requests})
      sqlite3_bind_int64(st, ++c, v);
    ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_reset(st) == SQLITE_OK;
  }
  sqlite3_finalize(st);
  if (ok) ok = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK;
  // Checkpoint, so that another reader (the sqlite3 shell) finds everything in the main file.
  if (ok) ok = sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr) == SQLITE_OK;
  if (!ok) std::cerr << "report_bench: cannot fill " << path << ": " << sqlite3_errmsg(db) << "\n";
  sqlite3_close(db);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage(arg + " needs a value");
    const std::string value = argv[++i];
    try {
      if (arg == "--jobs")
        a.jobs = std::stoll(value);
      else if (arg == "--years")
        a.years = std::stoi(value);
      else if (arg == "--databases")
        a.databases = std::stoi(value);
      else if (arg == "--reps")
        a.reps = std::stoi(value);
      else if (arg == "--seed")
        a.seed = std::stoull(value);
      else if (arg == "--state-dir")
        a.state_dir = value;
      else
        return usage("unknown argument " + arg);
    } catch (const std::exception&) {
      return usage(arg + ": not a number: " + value);
    }
  }
  if (a.jobs < 1 || a.years < 1 || a.years > 10 || a.databases < 1 || a.reps < 1)
    return usage("--jobs, --databases and --reps must be positive, --years 1..10");

  const bool temporary = a.state_dir.empty();
  if (temporary) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sqlbak-report-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::cerr << "report_bench: mkdtemp failed\n";
      return 1;
    }
    a.state_dir = tmpl;
  }
  struct Cleanup {
    bool remove;
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      if (remove) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{temporary, a.state_dir};

  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  std::string path;
  {
    auto catalog = sqlbak::Catalog::open(a.state_dir);
    if (!catalog.ok()) {
      std::cerr << "report_bench: " << catalog.status().message() << "\n";
      return 1;
    }
    path = (*catalog)->path();
  }
  auto start = Clock::now();
  if (!fill(path, generate(a, now_ms))) return 1;
  const double fill_ms = ms_since(start);

  json timings = {{"open", json::array()}, {"report_365", json::array()}, {"report_all", json::array()}};
  std::vector<double> open_ms, r365_ms, rall_ms, read_ms, compute_ms;
  json in_window;
  for (int rep = 0; rep < a.reps; ++rep) {
    for (int days : {365, sqlbak::kReportMaxDays}) {
      start = Clock::now();
      auto catalog = sqlbak::Catalog::open(a.state_dir);
      if (!catalog.ok()) {
        std::cerr << "report_bench: " << catalog.status().message() << "\n";
        return 1;
      }
      open_ms.push_back(ms_since(start));
      start = Clock::now();
      auto report = sqlbak::build_report(**catalog, days, "", now_ms);
      const double took = ms_since(start);
      if (!report.ok()) {
        std::cerr << "report_bench: " << report.status().message() << "\n";
        return 1;
      }
      const char* key = days == 365 ? "report_365" : "report_all";
      (days == 365 ? r365_ms : rall_ms).push_back(took);
      timings[key].push_back(took);
      in_window[key] = report->at("totals").at("jobs");
      if (days != 365) {
        // The two halves of build_report: reading the rows, computing the figures.
        start = Clock::now();
        auto jobs = (*catalog)->jobs_since(now_ms - days * kDayMs, "");
        read_ms.push_back(ms_since(start));
        if (!jobs.ok()) {
          std::cerr << "report_bench: " << jobs.status().message() << "\n";
          return 1;
        }
        sqlbak::ReportOptions options;
        options.days = days;
        options.now_ms = now_ms;
        start = Clock::now();
        (void)sqlbak::compute_report(*jobs, options);
        compute_ms.push_back(ms_since(start));
      }
    }
  }
  timings["read_all"] = read_ms;
  timings["compute_all"] = compute_ms;
  timings["open"] = open_ms;
  struct stat st {};
  ::stat(path.c_str(), &st);
  json out = {{"jobs", a.jobs},
              {"databases", a.databases},
              {"years", a.years},
              {"catalog_bytes", static_cast<int64_t>(st.st_size)},
              {"state_dir", temporary ? json(nullptr) : json(a.state_dir)},
              {"now_unix_ms", now_ms},
              {"fill_ms", fill_ms},
              {"timings_ms", timings},
              {"median_ms",
               {{"open", median(open_ms)},
                {"report_365", median(r365_ms)},
                {"report_all", median(rall_ms)},
                {"read_all", median(read_ms)},
                {"compute_all", median(compute_ms)}}},
              {"jobs_in_window", in_window}};
  std::cout << out.dump(2) << "\n";
  return 0;
}
