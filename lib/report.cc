#include "lib/report.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "lib/timefmt.h"

namespace sqlbak {

using nlohmann::json;

namespace {

constexpr int64_t kDayMs = 86'400'000;

// Thresholds of the recommendations (documented in report.h).
constexpr double kMaxFailureRate = 0.10;
constexpr double kLongDurationMs = 3'600'000;
constexpr double kLowRatio = 1.5;
constexpr double kFullFraction = 0.9;
constexpr int64_t kFullMinBackups = 4;
constexpr double kCheapFraction = 0.01;
constexpr int64_t kCheapMinBackups = 3;
constexpr double kCheapMaxPerDay = 1.5;
constexpr double kCheapMaxDurationMs = 60'000;
constexpr size_t kTopErrors = 5;

constexpr std::array<const char*, 5> kKinds = {"backup", "verify", "restore", "rotate", "prune"};

class Mean {
 public:
  void add(double v) {
    sum_ += v;
    ++n_;
  }
  bool empty() const { return n_ == 0; }
  int64_t count() const { return n_; }
  double value() const { return n_ == 0 ? 0.0 : sum_ / static_cast<double>(n_); }
  json to_json() const { return n_ == 0 ? json(nullptr) : json(value()); }

 private:
  double sum_ = 0;
  int64_t n_ = 0;
};

json rate(int64_t part, int64_t whole) {
  return whole == 0 ? json(nullptr) : json(static_cast<double>(part) / static_cast<double>(whole));
}

// What a set of jobs asked of their targets.
struct Transfers {
  int64_t jobs = 0, uploaded = 0, downloaded = 0;
  int64_t put = 0, get = 0, list = 0, del = 0;

  void add(const JobRecord& j) {
    ++jobs;
    uploaded += j.bytes_uploaded;
    downloaded += j.bytes_downloaded;
    put += j.put_requests;
    get += j.get_requests;
    list += j.list_requests;
    del += j.delete_requests;
  }
  json requests_json() const { return {{"put", put}, {"get", get}, {"list", list}, {"delete", del}}; }
};

// The figures of one set of jobs: the whole window, or one database.
struct Figures {
  int64_t jobs = 0, backups = 0, successes = 0, failures = 0, cancelled = 0;
  std::array<int64_t, kKinds.size()> kinds{};  // jobs of each of kKinds
  Mean duration, database_bytes, ratio, changed_fraction;
  std::optional<int64_t> max_duration, last_success_ms;
  int64_t stored = 0;
  Transfers transfers;
  int64_t verify_runs = 0, verify_failures = 0;
  std::map<std::string, int64_t> backup_errors;  // error text -> failed backups

  void add(const JobRecord& j) {
    ++jobs;
    for (size_t k = 0; k < kKinds.size(); ++k) {
      if (j.kind == kKinds[k]) ++kinds[k];
    }
    transfers.add(j);
    if (j.kind == "verify") {
      ++verify_runs;
      if (j.result == "failure") ++verify_failures;
      return;
    }
    if (j.kind != "backup") return;
    ++backups;
    if (j.result == "failure") {
      ++failures;
      if (!j.error.empty()) ++backup_errors[j.error];
      return;
    }
    if (j.result != "success") {
      if (j.result == "cancelled") ++cancelled;
      return;
    }
    ++successes;
    duration.add(static_cast<double>(j.duration_ms));
    max_duration = std::max(max_duration.value_or(j.duration_ms), j.duration_ms);
    last_success_ms = std::max(last_success_ms.value_or(j.started_at_ms), j.started_at_ms);
    database_bytes.add(static_cast<double>(j.database_bytes));
    stored += j.stored_bytes;
    // A backup that stored nothing has no compression ratio to speak of.
    if (j.stored_bytes > 0 && j.page_size > 0 && j.changed_pages > 0) {
      ratio.add(static_cast<double>(j.changed_pages) * static_cast<double>(j.page_size) /
                static_cast<double>(j.stored_bytes));
    }
    if (j.page_count > 0) {
      changed_fraction.add(static_cast<double>(j.changed_pages) / static_cast<double>(j.page_count));
    }
  }

  double backups_per_day(int days) const { return static_cast<double>(successes) / days; }

  std::string top_error() const {
    std::string best;
    int64_t n = 0;
    for (const auto& [text, count] : backup_errors) {
      if (count > n) best = text, n = count;
    }
    return best;
  }

  json to_json(int days) const {
    json k = json::object();
    for (size_t i = 0; i < kKinds.size(); ++i) k[kKinds[i]] = kinds[i];
    return json{
        {"jobs", jobs},
        {"kinds", k},
        {"backups", backups},
        {"successes", successes},
        {"failures", failures},
        {"cancelled", cancelled},
        {"success_rate", rate(successes, backups)},
        {"failure_rate", rate(failures, backups)},
        {"mean_duration_ms", duration.to_json()},
        {"max_duration_ms", max_duration ? json(*max_duration) : json(nullptr)},
        {"mean_database_bytes", database_bytes.to_json()},
        {"mean_ratio", ratio.to_json()},
        {"stored_bytes", stored},
        {"stored_bytes_per_day", static_cast<double>(stored) / days},
        {"uploaded_bytes", transfers.uploaded},
        {"downloaded_bytes", transfers.downloaded},
        {"requests", transfers.requests_json()},
    };
  }
};

struct DayFigures {
  int64_t backups = 0, failures = 0, stored = 0;
  Mean duration;
  std::map<std::string, int64_t> last_image;  // database -> bytes of its last success
};

struct ErrorFigures {
  int64_t count = 0;
  int64_t last_ms = 0;
  std::set<std::string> databases;
};

// Every local date in [since, now]. Stepping by 8 h cannot jump over a date
// (a DST change makes a day 1 or 2 hours shorter, not 16); sorting keeps the
// list right where a zone turns its clocks back across midnight and a date
// comes twice.
std::vector<std::string> window_dates(int64_t since, int64_t now, const LocalDateFunction& date_of) {
  constexpr int64_t kStepMs = int64_t{8} * 3'600'000;
  std::vector<std::string> dates;
  dates.reserve(static_cast<size_t>((now - since) / kDayMs + 2));
  for (int64_t t = since; t < now; t += kStepMs) {
    std::string d = date_of(t);
    if (dates.empty() || dates.back() != d) dates.push_back(std::move(d));
  }
  std::string last = date_of(now);
  if (dates.back() != last) dates.push_back(std::move(last));
  if (!std::is_sorted(dates.begin(), dates.end())) {
    std::sort(dates.begin(), dates.end());
    dates.erase(std::unique(dates.begin(), dates.end()), dates.end());
  }
  return dates;
}

// A JSON object from KEYS_AND_VALUES given in key order: each key goes in at
// the end of the map without a search (per_day has thousands of these).
json sorted_object(std::initializer_list<std::pair<const char*, json>> keys_and_values) {
  json o(json::value_t::object);
  auto& map = o.get_ref<json::object_t&>();
  for (const auto& [key, value] : keys_and_values) map.emplace_hint(map.end(), key, value);
  return o;
}

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %%", fraction * 100);
  return buf;
}

std::string fixed1(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string duration_text(double ms) {
  char buf[48];
  const auto s = static_cast<int64_t>(ms / 1000);
  if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1f s", ms / 1000);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lld min %lld s", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lld h %lld min", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  }
  return buf;
}

std::string plural(int64_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

json recommendation(const std::string& database, const char* kind, const char* severity, double value,
                    double threshold, const std::string& message) {
  return json{{"database", database}, {"kind", kind},           {"severity", severity},
              {"value", value},       {"threshold", threshold}, {"message", message}};
}

// The recommendations for database NAME, appended to OUT.
void recommend(const std::string& name, const Figures& f, int days, std::vector<json>* out) {
  const std::string window = "in the last " + plural(days, "day");
  if (f.backups > 0 && f.successes == 0) {
    std::string msg = name + ": none of its " + plural(f.backups, "backup") + " " + window + " succeeded";
    const std::string err = f.top_error();
    if (!err.empty()) msg += " (most frequent error: " + err + ")";
    msg += "; fix the cause and run `sqlbakctl backup " + name + "`.";
    out->push_back(
        recommendation(name, "no_successful_backup", "critical", static_cast<double>(f.backups), 0, msg));
  } else if (f.backups > 0) {
    const double failure_rate = static_cast<double>(f.failures) / static_cast<double>(f.backups);
    if (failure_rate > kMaxFailureRate) {
      std::string msg = name + ": " + std::to_string(f.failures) + " of " + plural(f.backups, "backup") +
                        " failed " + window + " (" + percent(failure_rate) + ", above " +
                        percent(kMaxFailureRate) + ")";
      const std::string err = f.top_error();
      if (!err.empty()) msg += "; most frequent error: " + err;
      out->push_back(
          recommendation(name, "high_failure_rate", "warning", failure_rate, kMaxFailureRate, msg + "."));
    }
  }
  if (f.verify_failures > 0) {
    out->push_back(recommendation(
        name, "verification_failed", "critical", static_cast<double>(f.verify_failures), 0,
        name + ": " + std::to_string(f.verify_failures) + " of " + plural(f.verify_runs, "verification") +
            " failed " + window + ": a backup may be damaged; run `sqlbakctl verify --db " + name +
            "` and check the target's storage."));
  }
  if (!f.duration.empty() && f.duration.value() > kLongDurationMs) {
    out->push_back(recommendation(
        name, "long_duration", "warning", f.duration.value(), kLongDurationMs,
        name + ": backups take " + duration_text(f.duration.value()) + " on average (above " +
            duration_text(kLongDurationMs) +
            "); a faster compression level, more workers or a quieter time of day would shorten them."));
  }
  if (!f.ratio.empty() && f.ratio.value() < kLowRatio) {
    out->push_back(recommendation(
        name, "low_compression", "info", f.ratio.value(), kLowRatio,
        name + ": the pages it stores compress only " + fixed1(f.ratio.value()) + "x on average (below " +
            fixed1(kLowRatio) +
            "x); if the data is already compressed or encrypted, `compression: {algorithm: none}` saves "
            "CPU time, otherwise try a higher level."));
  }
  if (f.changed_fraction.count() >= kFullMinBackups && f.changed_fraction.value() >= kFullFraction) {
    out->push_back(recommendation(
        name, "full_every_time", "info", f.changed_fraction.value(), kFullFraction,
        name + ": its backups store " + percent(f.changed_fraction.value()) +
            " of the pages on average over " + plural(f.changed_fraction.count(), "backup") +
            ", so page-level increments save nothing; if a VACUUM runs before each backup, run it less "
            "often, or back up less often."));
  }
  if (f.changed_fraction.count() >= kCheapMinBackups && f.changed_fraction.value() < kCheapFraction &&
      f.backups_per_day(days) <= kCheapMaxPerDay && f.duration.value() < kCheapMaxDurationMs) {
    out->push_back(recommendation(
        name, "cheap_increments", "info", f.changed_fraction.value(), kCheapFraction,
        name + ": its backups change only " + percent(f.changed_fraction.value()) + " of the pages (" +
            fixed1(f.backups_per_day(days)) + " backups a day, " + duration_text(f.duration.value()) +
            " each on average): backing up more often (e.g. schedule: hourly) would cut the data at "
            "risk at little cost."));
  }
}

int severity_rank(const json& r) {
  const std::string s = r.at("severity").get<std::string>();
  return s == "critical" ? 0 : s == "warning" ? 1 : 2;
}

}  // namespace

std::string local_date(int64_t unix_ms) {
  // Floor division: the second that holds a negative millisecond is below it.
  int64_t seconds = unix_ms / 1000;
  if (unix_ms % 1000 < 0) --seconds;
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  // By hand, not strftime or snprintf: this runs for every job and every step
  // of the window, and they cost ten times as much.
  const int year = tm.tm_year + 1900;
  if (year < 0 || year > 9999) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%d-%02d-%02d", year, tm.tm_mon + 1, tm.tm_mday);
    return buf;
  }
  std::string date = "0000-00-00";
  const int digits[] = {
      year / 1000, year / 100 % 10, year / 10 % 10, year % 10, 0, (tm.tm_mon + 1) / 10, (tm.tm_mon + 1) % 10,
      0,           tm.tm_mday / 10, tm.tm_mday % 10};
  for (size_t i = 0; i < date.size(); ++i) {
    if (date[i] != '-') date[i] = static_cast<char>('0' + digits[i]);
  }
  return date;
}

json compute_report(const std::vector<JobRecord>& jobs, const ReportOptions& options) {
  const int days = std::clamp(options.days, kReportMinDays, kReportMaxDays);
  const int64_t now = options.now_ms;
  const int64_t since = now - days * kDayMs;
  const LocalDateFunction& date_of = options.local_date ? options.local_date : LocalDateFunction(local_date);

  // The window's jobs in time order, so that "last" means the latest.
  std::vector<const JobRecord*> window;
  window.reserve(jobs.size());
  for (const JobRecord& j : jobs) {
    if (j.started_at_ms < since || j.started_at_ms > now) continue;
    if (!options.database.empty() && j.database != options.database) continue;
    window.push_back(&j);
  }
  std::stable_sort(window.begin(), window.end(), [](const JobRecord* a, const JobRecord* b) {
    return a->started_at_ms != b->started_at_ms ? a->started_at_ms < b->started_at_ms : a->id < b->id;
  });

  std::vector<std::string> dates = window_dates(since, now, date_of);
  Figures totals;
  std::map<std::string, Figures> per_database;
  std::map<std::string, Transfers> per_target;
  std::unordered_map<std::string, DayFigures> per_day;
  std::unordered_map<std::string, ErrorFigures> errors;
  for (const JobRecord* j : window) {
    totals.add(*j);
    if (!j->database.empty()) per_database[j->database].add(*j);
    if (!j->target.empty()) per_target[j->target].add(*j);
    if (j->result == "failure" && !j->error.empty()) {
      ErrorFigures& e = errors[j->error];
      ++e.count;
      e.last_ms = j->started_at_ms;
      if (!j->database.empty()) e.databases.insert(j->database);
    }
    if (j->kind != "backup") continue;
    auto [it, inserted] = per_day.try_emplace(date_of(j->started_at_ms));
    // A date the 6-hour steps did not meet: only a fake clock can do that, but
    // every job's date must have its entry.
    if (inserted && !std::binary_search(dates.begin(), dates.end(), it->first)) {
      dates.insert(std::upper_bound(dates.begin(), dates.end(), it->first), it->first);
    }
    DayFigures& d = it->second;
    ++d.backups;
    if (j->result == "failure") ++d.failures;
    if (j->result != "success") continue;
    d.duration.add(static_cast<double>(j->duration_ms));
    d.stored += j->stored_bytes;
    d.last_image[j->database] = j->database_bytes;
  }

  json report = totals.to_json(days);
  json databases = json::array();
  std::vector<json> recommendations;
  for (const auto& [name, f] : per_database) {
    json d = f.to_json(days);
    d["name"] = name;
    d["mean_changed_fraction"] = f.changed_fraction.to_json();
    d["backups_per_day"] = f.backups_per_day(days);
    d["last_success"] = f.last_success_ms ? json(format_iso_utc(*f.last_success_ms)) : json(nullptr);
    d["verifications"] = {{"runs", f.verify_runs}, {"failures", f.verify_failures}};
    databases.push_back(std::move(d));
    recommend(name, f, days, &recommendations);
  }
  std::stable_sort(recommendations.begin(), recommendations.end(),
                   [](const json& a, const json& b) { return severity_rank(a) < severity_rank(b); });

  json days_json = json::array();
  const DayFigures empty;
  for (const std::string& date : dates) {
    auto it = per_day.find(date);
    const DayFigures& d = it == per_day.end() ? empty : it->second;
    int64_t image_bytes = 0;
    for (const auto& [db, bytes] : d.last_image) image_bytes += bytes;
    days_json.push_back(sorted_object({{"backups", d.backups},
                                       {"database_bytes", image_bytes},
                                       {"date", date},
                                       {"failures", d.failures},
                                       {"mean_duration_ms", d.duration.to_json()},
                                       {"stored_bytes", d.stored}}));
  }

  json targets = json::array();
  for (const auto& [name, t] : per_target) {
    targets.push_back({{"name", name},
                       {"jobs", t.jobs},
                       {"requests", t.requests_json()},
                       {"uploaded_bytes", t.uploaded},
                       {"downloaded_bytes", t.downloaded}});
  }

  std::vector<std::pair<std::string, ErrorFigures>> ranked(errors.begin(), errors.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    if (a.second.count != b.second.count) return a.second.count > b.second.count;
    if (a.second.last_ms != b.second.last_ms) return a.second.last_ms > b.second.last_ms;
    return a.first < b.first;
  });
  if (ranked.size() > kTopErrors) ranked.resize(kTopErrors);
  json errors_json = json::array();
  for (const auto& [text, e] : ranked) {
    errors_json.push_back(
        {{"error", text},
         {"count", e.count},
         {"last", format_iso_utc(e.last_ms)},
         {"databases", json(std::vector<std::string>(e.databases.begin(), e.databases.end()))}});
  }

  return json{{"days", days},
              {"since", format_iso_utc(since)},
              {"generated", format_iso_utc(now)},
              {"from", dates.front()},
              {"to", dates.back()},
              {"database", options.database},
              {"totals", std::move(report)},
              {"databases", std::move(databases)},
              {"targets", std::move(targets)},
              {"per_day", std::move(days_json)},
              {"errors", std::move(errors_json)},
              {"verifications", {{"runs", totals.verify_runs}, {"failures", totals.verify_failures}}},
              {"recommendations", json(std::move(recommendations))}};
}

Result<json> build_report(Catalog& catalog, int days, const std::string& database, int64_t now_ms) {
  if (days < kReportMinDays || days > kReportMaxDays) {
    return Status::Usage("report: --days must be between " + std::to_string(kReportMinDays) + " and " +
                         std::to_string(kReportMaxDays) + ", not " + std::to_string(days));
  }
  auto jobs = catalog.jobs_since(now_ms - days * kDayMs, database);
  if (!jobs.ok()) return jobs.status();
  // localtime_r need not notice a changed TZ by itself; tzset() makes it.
  ::tzset();
  ReportOptions options;
  options.days = days;
  options.now_ms = now_ms;
  options.database = database;
  return compute_report(*jobs, options);
}

}  // namespace sqlbak
