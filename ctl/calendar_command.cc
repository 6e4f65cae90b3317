#include "ctl/calendar_command.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <utility>
#include <vector>

#include "lib/calendar.h"

namespace sqlbak::ctl {
namespace {

constexpr int64_t kUsPerSec = 1'000'000;
constexpr int64_t kUsPerMinute = 60 * kUsPerSec;
constexpr int64_t kUsPerHour = 60 * kUsPerMinute;
constexpr int64_t kUsPerDay = 24 * kUsPerHour;
constexpr int64_t kUsPerWeek = 7 * kUsPerDay;
constexpr int64_t kUsPerMonth = 2'629'800 * kUsPerSec;  // systemd's month: 30.44 days
constexpr int64_t kUsPerYear = 31'557'600 * kUsPerSec;  // and year: 365.25 days

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* plural(int64_t n, const char* one, const char* many) { return n == 1 ? one : many; }

// systemd's format_timestamp_relative(): "7 months 21 days ago", "3h 5min left".
std::string format_relative(int64_t t, int64_t now) {
  const bool past = now > t;
  const int64_t d = past ? now - t : t - now;
  const char* s = past ? "ago" : "left";
  char buf[128];
  if (d >= kUsPerYear) {
    const int64_t years = d / kUsPerYear, months = d % kUsPerYear / kUsPerMonth;
    std::snprintf(buf, sizeof buf, "%" PRId64 " %s %" PRId64 " %s %s", years, plural(years, "year", "years"), months,
                  plural(months, "month", "months"), s);
  } else if (d >= kUsPerMonth) {
    const int64_t months = d / kUsPerMonth, days = d % kUsPerMonth / kUsPerDay;
    std::snprintf(buf, sizeof buf, "%" PRId64 " %s %" PRId64 " %s %s", months, plural(months, "month", "months"), days,
                  plural(days, "day", "days"), s);
  } else if (d >= kUsPerWeek) {
    const int64_t weeks = d / kUsPerWeek, days = d % kUsPerWeek / kUsPerDay;
    std::snprintf(buf, sizeof buf, "%" PRId64 " %s %" PRId64 " %s %s", weeks, plural(weeks, "week", "weeks"), days,
                  plural(days, "day", "days"), s);
  } else if (d >= 2 * kUsPerDay) {
    std::snprintf(buf, sizeof buf, "%" PRId64 " days %s", d / kUsPerDay, s);
  } else if (d >= 25 * kUsPerHour) {
    std::snprintf(buf, sizeof buf, "1 day %" PRId64 "h %s", (d - kUsPerDay) / kUsPerHour, s);
  } else if (d >= 6 * kUsPerHour) {
    std::snprintf(buf, sizeof buf, "%" PRId64 "h %s", d / kUsPerHour, s);
  } else if (d >= kUsPerHour) {
    std::snprintf(buf, sizeof buf, "%" PRId64 "h %" PRId64 "min %s", d / kUsPerHour, d % kUsPerHour / kUsPerMinute, s);
  } else if (d >= 5 * kUsPerMinute) {
    std::snprintf(buf, sizeof buf, "%" PRId64 "min %s", d / kUsPerMinute, s);
  } else if (d >= kUsPerMinute) {
    std::snprintf(buf, sizeof buf, "%" PRId64 "min %" PRId64 "s %s", d / kUsPerMinute, d % kUsPerMinute / kUsPerSec, s);
  } else if (d >= kUsPerSec) {
    std::snprintf(buf, sizeof buf, "%" PRId64 "s %s", d / kUsPerSec, s);
  } else if (d >= 1000) {
    std::snprintf(buf, sizeof buf, "%" PRId64 "ms %s", d / 1000, s);
  } else if (d > 0) {
    std::snprintf(buf, sizeof buf, "%" PRId64 "us %s", d, s);
  } else {
    std::snprintf(buf, sizeof buf, "now");
  }
  return buf;
}

}  // namespace

int calendar_command(const std::string& expr, int iterations, const std::string& base_time) {
  const int64_t now = now_us();
  int64_t base = now;
  if (!base_time.empty()) {
    auto parsed = parse_calendar_base_time(base_time, now);
    if (!parsed.ok()) {
      std::cerr << "sqlbakctl: calendar: --base-time: " << parsed.status().message() << "\n";
      return 1;
    }
    base = parsed.value();
  }
  auto spec = parse_calendar(expr);
  if (!spec.ok()) {
    std::cerr << "sqlbakctl: " << spec.status().message() << "\n";
    return 1;
  }

  // Two columns, the labels right-aligned, as systemd-analyze's table.
  std::vector<std::pair<std::string, std::string>> rows;
  const std::string norm = normalized(spec.value());
  if (norm != expr) rows.emplace_back("Original form:", expr);
  rows.emplace_back("Normalized form:", norm);
  const bool show_utc = !zone_is_utc();
  int64_t after = base;
  for (int i = 0; i < iterations; ++i) {
    auto next = find_next_elapse(spec.value(), after);
    if (!next.ok() && next.status().code() == ErrorCode::kNotFound) {
      if (i == 0) rows.emplace_back("Next elapse:", "never");
      break;
    }
    if (!next.ok()) {  // like systemd-analyze: the error alone, no table
      std::cerr << "sqlbakctl: " << next.status().message() << "\n";
      return 1;
    }
    rows.emplace_back(i == 0 ? "Next elapse:" : "Iter. #" + std::to_string(i + 1) + ":", format_elapse(*next));
    if (show_utc) rows.emplace_back("(in UTC):", format_elapse(*next, "UTC"));
    rows.emplace_back("From now:", format_relative(*next, now));
    after = *next;
  }
  size_t width = 0;
  for (const auto& row : rows) width = std::max(width, row.first.size());
  for (const auto& [label, value] : rows) std::cout << std::string(width - label.size(), ' ') << label << ' ' << value << '\n';
  return 0;
}

}  // namespace sqlbak::ctl
