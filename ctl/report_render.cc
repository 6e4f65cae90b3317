#include "ctl/report_render.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "ctl/format.h"

namespace sqlbak::ctl {

using nlohmann::json;

namespace {

constexpr int kBarCells = 40;
// A chart longer than this many lines groups days into weeks, then months.
constexpr size_t kMaxChartLines = 62;

int64_t i64(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}

bool has_number(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number();
}

double f64(const json& j, const char* key) { return has_number(j, key) ? j.at(key).get<double>() : 0.0; }

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string bytes_text(double bytes) {
  return human_bytes(static_cast<uint64_t>(std::llround(std::max(0.0, bytes))));
}

std::string percent_text(const json& j, const char* key) {
  if (!has_number(j, key)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %%", j.at(key).get<double>() * 100);
  return buf;
}

std::string millis_text(const json& j, const char* key) {
  return has_number(j, key) ? human_millis(std::llround(j.at(key).get<double>())) : "-";
}

std::string mean_bytes_text(const json& j, const char* key) {
  return has_number(j, key) ? bytes_text(j.at(key).get<double>()) : "-";
}

std::string ratio_value_text(const json& j, const char* key) {
  if (!has_number(j, key)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fx", j.at(key).get<double>());
  return buf;
}

// 1234567 -> "1,234,567".
std::string grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// "1,234 PUT, 56 GET, 12 LIST, 3 DELETE, 1.2 GiB up, 40 MiB down" of the
// requests and bytes of a totals or targets entry.
std::string transfers_text(const json& j) {
  const json& r = j.contains("requests") && j["requests"].is_object() ? j["requests"] : json::object();
  return grouped(i64(r, "put")) + " PUT, " + grouped(i64(r, "get")) + " GET, " + grouped(i64(r, "list")) +
         " LIST, " + grouped(i64(r, "delete")) + " DELETE, " + bytes_text(f64(j, "uploaded_bytes")) + " up, " +
         bytes_text(f64(j, "downloaded_bytes")) + " down";
}

std::string count_text(int64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// A bar of VALUE / MAX of kBarCells cells, padded with spaces to kBarCells
// cells. A non-zero value gets at least the smallest mark, so that a day with
// little stored still differs from a day with nothing.
std::string bar(double value, double max, bool unicode) {
  if (max <= 0 || value <= 0) return std::string(kBarCells, ' ');
  const int steps = unicode ? 8 : 1;
  long units = std::lround(value / max * kBarCells * steps);
  units = std::clamp(units, 1L, static_cast<long>(kBarCells) * steps);
  std::string out;
  int cells = 0;
  if (unicode) {
    // U+2588 FULL BLOCK, then U+2589..U+258F: seven eighths down to one eighth.
    static const char* const kPartial[8] = {"",       "\u258F", "\u258E", "\u258D",
                                            "\u258C", "\u258B", "\u258A", "\u2589"};
    for (long i = 0; i < units / 8; ++i, ++cells) out += "\u2588";
    if (units % 8 != 0) {
      out += kPartial[units % 8];
      ++cells;
    }
  } else {
    out.assign(static_cast<size_t>(units), '#');
    cells = static_cast<int>(units);
  }
  return out + std::string(static_cast<size_t>(kBarCells - cells), ' ');
}

struct ChartRow {
  std::string label;
  int64_t backups = 0, failures = 0, stored = 0;
};

// Per-day entries grouped into at most about kMaxChartLines rows; TITLE says
// what a row stands for. A long window (all history, say) starts at its first
// day with a backup; SKIPPED says which leading days were left out.
std::vector<ChartRow> chart_rows(const json& per_day, std::string* title, std::string* skipped) {
  std::vector<ChartRow> rows;
  size_t first = 0;
  if (per_day.size() > kMaxChartLines) {
    while (first + 1 < per_day.size() && i64(per_day[first], "backups") == 0) ++first;
    if (first > 0)
      *skipped = "no backups from " + str(per_day[0], "date") + " to " + str(per_day[first - 1], "date");
  }
  const size_t n = per_day.size() - first;
  enum {
    kDay,
    kWeek,
    kMonth
  } grouping = n <= kMaxChartLines       ? kDay
               : n <= kMaxChartLines * 7 ? kWeek
                                         : kMonth;
  *title = grouping == kDay    ? "Stored per day"
           : grouping == kWeek ? "Stored per week (7 days from the date shown)"
                               : "Stored per month";
  for (size_t i = 0; i < n; ++i) {
    const json& d = per_day[first + i];
    const std::string date = str(d, "date");
    const std::string label = grouping == kMonth ? date.substr(0, 7) : date;
    const bool start_new = rows.empty() || (grouping == kDay) || (grouping == kWeek && i % 7 == 0) ||
                           (grouping == kMonth && rows.back().label != label);
    if (start_new) rows.push_back(ChartRow{label});
    ChartRow& r = rows.back();
    r.backups += i64(d, "backups");
    r.failures += i64(d, "failures");
    r.stored += i64(d, "stored_bytes");
  }
  return rows;
}

void render_totals(const json& t, const json& verifications, std::ostream& out) {
  const json& k = t.contains("kinds") && t["kinds"].is_object() ? t["kinds"] : json::object();
  out << "Jobs           " << i64(t, "jobs");
  if (!k.empty()) {
    out << ":";
    const char* sep = " ";
    for (const char* kind : {"backup", "verify", "restore", "rotate", "prune"}) {
      out << sep << i64(k, kind) << " " << kind;
      sep = ", ";
    }
  }
  out << "\n";
  out << "Backups        " << i64(t, "backups") << ": " << i64(t, "successes") << " succeeded, "
      << i64(t, "failures") << " failed, " << i64(t, "cancelled") << " cancelled; success rate "
      << percent_text(t, "success_rate") << "\n";
  out << "Duration       mean " << millis_text(t, "mean_duration_ms") << ", max "
      << millis_text(t, "max_duration_ms") << "\n";
  out << "Database size  mean " << mean_bytes_text(t, "mean_database_bytes") << "\n";
  out << "Compression    mean " << ratio_value_text(t, "mean_ratio") << " (pages stored / bytes written)\n";
  out << "Stored         " << bytes_text(f64(t, "stored_bytes")) << ", "
      << bytes_text(f64(t, "stored_bytes_per_day")) << " a day\n";
  out << "Transfers      " << transfers_text(t) << "\n";
  out << "Verifications  " << count_text(i64(verifications, "runs"), "run") << ", "
      << i64(verifications, "failures") << " failed\n";
}

void render_databases(const json& databases, std::ostream& out) {
  std::vector<std::vector<std::string>> rows{{"DATABASE", "BACKUPS", "FAILED", "SUCCESS", "MEAN TIME",
                                              "MAX TIME", "MEAN SIZE", "RATIO", "CHANGED", "STORED",
                                              "PER DAY", "LAST SUCCESS"}};
  for (const json& d : databases) {
    rows.push_back({str(d, "name"), std::to_string(i64(d, "backups")), std::to_string(i64(d, "failures")),
                    percent_text(d, "success_rate"), millis_text(d, "mean_duration_ms"),
                    millis_text(d, "max_duration_ms"), mean_bytes_text(d, "mean_database_bytes"),
                    ratio_value_text(d, "mean_ratio"), percent_text(d, "mean_changed_fraction"),
                    bytes_text(f64(d, "stored_bytes")), bytes_text(f64(d, "stored_bytes_per_day")),
                    str(d, "last_success").empty() ? "-" : str(d, "last_success")});
  }
  out << render_table(rows);
}

// One line per target: what the window's jobs asked of it (S3 bills per request).
void render_targets(const json& targets, std::ostream& out) {
  out << "Requests and bytes per target:\n";
  for (const json& t : targets) {
    out << "  target " << str(t, "name") << ": " << transfers_text(t) << " (" << count_text(i64(t, "jobs"), "job")
        << ")\n";
  }
}

void render_chart(const json& per_day, bool unicode, std::ostream& out) {
  std::string title, skipped;
  const std::vector<ChartRow> rows = chart_rows(per_day, &title, &skipped);
  int64_t max = 0;
  for (const ChartRow& r : rows) max = std::max(max, r.stored);
  out << title << (max > 0 ? ", longest bar = " + human_bytes(static_cast<uint64_t>(max)) : std::string())
      << ":\n";
  if (!skipped.empty()) out << "(" << skipped << ")\n";
  size_t label_width = 0;
  for (const ChartRow& r : rows) label_width = std::max(label_width, r.label.size());
  for (const ChartRow& r : rows) {
    char size[32];
    std::snprintf(size, sizeof size, "%10s",
                  human_bytes(static_cast<uint64_t>(std::max<int64_t>(0, r.stored))).c_str());
    out << r.label << std::string(label_width - r.label.size(), ' ') << "  "
        << bar(static_cast<double>(r.stored), static_cast<double>(max), unicode) << " " << size << "  "
        << count_text(r.backups, "backup");
    if (r.failures > 0) out << ", " << r.failures << " failed";
    out << "\n";
  }
}

}  // namespace

void render_report(const json& report, std::ostream& out, bool unicode_chart) {
  const std::string database = str(report, "database");
  out << "Backup report, last " << count_text(i64(report, "days"), "day") << " (" << str(report, "from")
      << " .. " << str(report, "to") << "), " << (database.empty() ? "all databases" : "database " + database)
      << ", generated " << str(report, "generated") << "\n\n";

  const json empty = json::object();
  const json& totals = report.contains("totals") ? report["totals"] : empty;
  const json& verifications = report.contains("verifications") ? report["verifications"] : empty;
  if (i64(totals, "jobs") == 0) {
    out << "No jobs in this window.\n";
  } else {
    render_totals(totals, verifications, out);
  }

  const json& databases = report.value("databases", json::array());
  if (!databases.empty()) {
    out << "\n";
    render_databases(databases, out);
  }

  const json& targets = report.value("targets", json::array());
  if (!targets.empty()) {
    out << "\n";
    render_targets(targets, out);
  }

  const json& per_day = report.value("per_day", json::array());
  if (!per_day.empty()) {
    out << "\n";
    render_chart(per_day, unicode_chart, out);
  }

  const json& errors = report.value("errors", json::array());
  if (!errors.empty()) {
    out << "\nMost frequent errors:\n";
    for (const json& e : errors) {
      std::string where;
      for (const json& db : e.value("databases", json::array()))
        if (db.is_string()) where += (where.empty() ? "" : ", ") + db.get<std::string>();
      out << "  " << i64(e, "count") << "x  " << str(e, "error") << " (last " << str(e, "last")
          << (where.empty() ? "" : "; " + where) << ")\n";
    }
  }

  const json& recommendations = report.value("recommendations", json::array());
  out << "\nRecommendations:" << (recommendations.empty() ? " none\n" : "\n");
  for (const json& r : recommendations) {
    out << "  [" << str(r, "severity") << "] " << str(r, "message") << "\n";
  }
}

}  // namespace sqlbak::ctl
