#include <catch2/catch.hpp>

#include <time.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lib/retention.h"

// The rules are restic 0.14's `forget`; tests/integration/test_retention_vs_restic.py
// checks them against restic itself. These tests pin each rule, the edge cases
// around calendars and time zones, and the rules restic does not have.

using namespace std::chrono_literals;
using sqlbak::apply_retention;
using sqlbak::iso_week_of;
using sqlbak::LocalTime;
using sqlbak::retention_policy_is_empty;
using sqlbak::RetentionCandidate;
using sqlbak::RetentionDecision;
using sqlbak::RetentionPolicy;
using sqlbak::system_local_time;

namespace {

// Sets TZ for the lifetime of the object and restores the previous value.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~ScopedTz() {
    if (old_)
      ::setenv("TZ", old_->c_str(), 1);
    else
      ::unsetenv("TZ");
    ::tzset();
  }
  ScopedTz(const ScopedTz&) = delete;
  ScopedTz& operator=(const ScopedTz&) = delete;

 private:
  std::optional<std::string> old_;
};

bool have_zoneinfo() {
  return std::filesystem::exists("/usr/share/zoneinfo/Europe/Paris") &&
         std::filesystem::exists("/usr/share/zoneinfo/America/New_York");
}

// Unix milliseconds of a UTC date and time.
int64_t utc_ms(int year, int month, int day, int hour, int minute = 0, int second = 0) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(::timegm(&tm)) * 1000;
}

// A LocalTimeFn for UTC that does not depend on the process's TZ.
LocalTime utc_breakdown(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  LocalTime out;
  out.year = tm.tm_year + 1900;
  out.month = tm.tm_mon + 1;
  out.day = tm.tm_mday;
  out.hour = tm.tm_hour;
  iso_week_of(out.year, out.month, out.day, out.iso_year, out.iso_week);
  return out;
}

// Not far from the times in these tests: keep_within's reference is the
// newest backup before "now".
const int64_t kNow = utc_ms(2030, 1, 1, 0);

RetentionPolicy only(int RetentionPolicy::*rule, int count) {
  RetentionPolicy p{0, 0, 0, 0, 0, 0, 0s};
  p.*rule = count;
  return p;
}

RetentionPolicy nothing() { return RetentionPolicy{0, 0, 0, 0, 0, 0, 0s}; }

std::vector<RetentionCandidate> backups_at(const std::vector<int64_t>& times_ms) {
  std::vector<RetentionCandidate> out;
  for (size_t i = 0; i < times_ms.size(); ++i) out.push_back({"b" + std::to_string(i), times_ms[i]});
  return out;
}

std::vector<RetentionDecision> decide(const RetentionPolicy& p, const std::vector<int64_t>& times_ms,
                                      int64_t now_ms = kNow) {
  return apply_retention(p, backups_at(times_ms), now_ms, utc_breakdown);
}

// The times of the kept backups, newest first.
std::vector<int64_t> kept(const std::vector<RetentionDecision>& ds) {
  std::vector<int64_t> out;
  for (const RetentionDecision& d : ds) {
    if (d.keep) out.push_back(d.created_unix_ms);
  }
  return out;
}

std::vector<std::string> reasons_for(const std::vector<RetentionDecision>& ds, int64_t time_ms) {
  for (const RetentionDecision& d : ds) {
    if (d.created_unix_ms == time_ms) return d.reasons;
  }
  FAIL("no decision for time " << time_ms);
  return {};
}

using Reasons = std::vector<std::string>;

}  // namespace

TEST_CASE("retention: an empty policy is one with no rule at all", "[retention]") {
  CHECK(retention_policy_is_empty(nothing()));
  CHECK_FALSE(retention_policy_is_empty(RetentionPolicy{}));  // the configuration's defaults
  CHECK_FALSE(retention_policy_is_empty(only(&RetentionPolicy::keep_last, 1)));
  CHECK_FALSE(retention_policy_is_empty(only(&RetentionPolicy::keep_yearly, 1)));
  RetentionPolicy within = nothing();
  within.keep_within = 1s;
  CHECK_FALSE(retention_policy_is_empty(within));
}

TEST_CASE("retention: an empty policy keeps every backup, as restic removes nothing without one",
          "[retention]") {
  const std::vector<int64_t> times = {utc_ms(2026, 1, 1, 0), utc_ms(2026, 1, 1, 0), utc_ms(2025, 6, 1, 12),
                                      utc_ms(2001, 1, 1, 0)};
  const auto ds = decide(nothing(), times);
  REQUIRE(ds.size() == 4);
  for (const RetentionDecision& d : ds) {
    CHECK(d.keep);
    CHECK(d.reasons == Reasons{"empty_policy"});
  }
}

TEST_CASE("retention: no backups, no decisions", "[retention]") {
  CHECK(decide(RetentionPolicy{}, {}).empty());
  CHECK(decide(nothing(), {}).empty());
}

TEST_CASE("retention: decisions come newest first, one per backup, ties ordered by id", "[retention]") {
  std::vector<RetentionCandidate> in = {{"m", utc_ms(2026, 3, 1, 0)},
                                        {"z", utc_ms(2026, 5, 1, 0)},
                                        {"c", utc_ms(2026, 4, 1, 0)},
                                        {"b", utc_ms(2026, 4, 1, 0)}};
  const auto ds = apply_retention(only(&RetentionPolicy::keep_last, 1), in, kNow, utc_breakdown);
  REQUIRE(ds.size() == 4);
  CHECK(ds[0].id == "z");
  CHECK(ds[1].id == "b");
  CHECK(ds[2].id == "c");
  CHECK(ds[3].id == "m");
  for (const RetentionDecision& d : ds) CHECK(d.keep == !d.reasons.empty());
}

TEST_CASE("retention: keep_last keeps the N newest", "[retention]") {
  const std::vector<int64_t> times = {utc_ms(2026, 1, 1, 10), utc_ms(2026, 1, 1, 10, 5),
                                      utc_ms(2026, 1, 1, 10, 10), utc_ms(2025, 1, 1, 10)};
  const auto ds = decide(only(&RetentionPolicy::keep_last, 2), times);
  CHECK(kept(ds) == std::vector<int64_t>{utc_ms(2026, 1, 1, 10, 10), utc_ms(2026, 1, 1, 10, 5)});
  CHECK(reasons_for(ds, utc_ms(2026, 1, 1, 10, 10)) == Reasons{"last"});
  CHECK(reasons_for(ds, utc_ms(2026, 1, 1, 10)).empty());

  // More than there are: all of them.
  CHECK(kept(decide(only(&RetentionPolicy::keep_last, 10), times)).size() == 4);
}

TEST_CASE("retention: keep_hourly keeps the newest backup of each of the N newest hours", "[retention]") {
  const std::vector<int64_t> times = {
      utc_ms(2026, 2, 3, 14, 50), utc_ms(2026, 2, 3, 14, 10),  // hour 14: 14:50 wins
      utc_ms(2026, 2, 3, 13, 59),                              // hour 13
      utc_ms(2026, 2, 3, 9, 0),   utc_ms(2026, 2, 3, 9, 30),   // hour 9 (no backup 10..12: not counted)
      utc_ms(2026, 2, 2, 9, 30),                               // hour 9 of the day before: another bucket
  };
  const auto ds = decide(only(&RetentionPolicy::keep_hourly, 3), times);
  CHECK(kept(ds) == std::vector<int64_t>{utc_ms(2026, 2, 3, 14, 50), utc_ms(2026, 2, 3, 13, 59),
                                         utc_ms(2026, 2, 3, 9, 30)});
  CHECK(reasons_for(ds, utc_ms(2026, 2, 3, 9, 30)) == Reasons{"hourly"});

  CHECK(kept(decide(only(&RetentionPolicy::keep_hourly, 4), times)).back() == utc_ms(2026, 2, 2, 9, 30));
}

TEST_CASE("retention: keep_daily counts days that hold a backup, not calendar days", "[retention]") {
  const std::vector<int64_t> times = {utc_ms(2026, 5, 20, 2),     utc_ms(2026, 5, 20, 1),
                                      utc_ms(2026, 5, 9, 23, 59), utc_ms(2026, 5, 9, 0),
                                      utc_ms(2026, 5, 5, 2),      utc_ms(2026, 5, 1, 2)};
  const auto ds = decide(only(&RetentionPolicy::keep_daily, 3), times);
  CHECK(kept(ds) ==
        std::vector<int64_t>{utc_ms(2026, 5, 20, 2), utc_ms(2026, 5, 9, 23, 59), utc_ms(2026, 5, 5, 2)});
  for (int64_t t : kept(ds)) CHECK(reasons_for(ds, t) == Reasons{"daily"});
}

TEST_CASE("retention: keep_weekly buckets by ISO week, Monday to Sunday", "[retention]") {
  const std::vector<int64_t> times = {
      utc_ms(2026, 6, 15, 0),       // Monday, week 25
      utc_ms(2026, 6, 14, 23, 59),  // Sunday, week 24
      utc_ms(2026, 6, 8, 0),        // Monday, week 24
      utc_ms(2026, 6, 7, 12),       // Sunday, week 23
  };
  const auto ds = decide(only(&RetentionPolicy::keep_weekly, 5), times);
  CHECK(kept(ds) ==
        std::vector<int64_t>{utc_ms(2026, 6, 15, 0), utc_ms(2026, 6, 14, 23, 59), utc_ms(2026, 6, 7, 12)});
}

TEST_CASE("retention: keep_monthly and keep_yearly", "[retention]") {
  const std::vector<int64_t> times = {utc_ms(2026, 3, 31, 23), utc_ms(2026, 3, 1, 0),
                                      utc_ms(2026, 2, 28, 23), utc_ms(2025, 12, 31, 23),
                                      utc_ms(2025, 1, 1, 0),   utc_ms(2023, 7, 1, 0)};
  CHECK(kept(decide(only(&RetentionPolicy::keep_monthly, 3), times)) ==
        std::vector<int64_t>{utc_ms(2026, 3, 31, 23), utc_ms(2026, 2, 28, 23), utc_ms(2025, 12, 31, 23)});
  CHECK(kept(decide(only(&RetentionPolicy::keep_yearly, 3), times)) ==
        std::vector<int64_t>{utc_ms(2026, 3, 31, 23), utc_ms(2025, 12, 31, 23), utc_ms(2023, 7, 1, 0)});
}

TEST_CASE("retention: keep_within keeps what is newer than the newest minus the span", "[retention]") {
  const int64_t newest = utc_ms(2026, 9, 10, 12);
  const std::vector<int64_t> times = {newest, newest - 3600'000, newest - 2 * 3600'000 + 1,
                                      newest - 2 * 3600'000, newest - 10 * 3600'000};
  RetentionPolicy p = nothing();
  p.keep_within = 2h;
  const auto ds = decide(p, times);
  // Strictly newer: the backup exactly 2 h older than the newest is not within.
  CHECK(kept(ds) == std::vector<int64_t>{newest, newest - 3600'000, newest - 2 * 3600'000 + 1});
  CHECK(reasons_for(ds, newest - 3600'000) == Reasons{"within"});
}

TEST_CASE("retention: keep_within counts from the newest backup that is not in the future", "[retention]") {
  const int64_t now = utc_ms(2026, 11, 25, 12);
  const int64_t future = utc_ms(2027, 1, 1, 10);
  const int64_t latest = utc_ms(2026, 11, 24, 10);
  const int64_t older = utc_ms(2026, 11, 20, 10);
  RetentionPolicy p = nothing();
  p.keep_within = 30h;
  CHECK(kept(decide(p, {older, latest, future}, now)) == std::vector<int64_t>{future, latest});

  // Every backup in the future: there is no reference, all are within (as restic).
  CHECK(kept(decide(p, {utc_ms(2027, 1, 1, 10), utc_ms(2026, 12, 1, 10), utc_ms(2026, 11, 26, 10)}, now))
            .size() == 3);

  // A backup at exactly "now" is not before it.
  const auto at_now = decide(p, {now, now - 40 * 3600'000LL, now - 50 * 3600'000LL}, now);
  CHECK(kept(at_now) == std::vector<int64_t>{now, now - 40 * 3600'000LL, now - 50 * 3600'000LL});
}

TEST_CASE("retention: rules combine, and each kept backup lists every rule that kept it", "[retention]") {
  RetentionPolicy p{1, 0, 2, 2, 2, 1, 24h};
  const std::vector<int64_t> times = {
      utc_ms(2026, 4, 30, 20),  // newest: within, last, daily, weekly, monthly, yearly
      utc_ms(2026, 4, 30, 8),   // within only (same day, week, month)
      utc_ms(2026, 4, 29, 8),   // daily (Wednesday, same week)
      utc_ms(2026, 4, 20, 8),   // weekly (week 17)
      utc_ms(2026, 3, 15, 8),   // monthly
      utc_ms(2026, 3, 1, 8),    // nothing: month 3 taken, counts of weekly spent
      utc_ms(2025, 3, 1, 8),    // nothing: yearly had only 1
  };
  const auto ds = decide(p, times);
  CHECK(reasons_for(ds, times[0]) == Reasons{"within", "last", "daily", "weekly", "monthly", "yearly"});
  CHECK(reasons_for(ds, times[1]) == Reasons{"within"});
  CHECK(reasons_for(ds, times[2]) == Reasons{"daily"});
  CHECK(reasons_for(ds, times[3]) == Reasons{"weekly"});
  CHECK(reasons_for(ds, times[4]) == Reasons{"monthly"});
  CHECK(reasons_for(ds, times[5]).empty());
  CHECK(reasons_for(ds, times[6]).empty());
  CHECK(kept(ds).size() == 5);
}

TEST_CASE("retention: ISO weeks run across the year end (2026 has a week 53)", "[retention]") {
  int y = 0, w = 0;
  iso_week_of(2026, 12, 28, y, w);
  CHECK((y == 2026 && w == 53));
  iso_week_of(2026, 12, 31, y, w);
  CHECK((y == 2026 && w == 53));
  iso_week_of(2027, 1, 1, y, w);
  CHECK((y == 2026 && w == 53));
  iso_week_of(2027, 1, 3, y, w);
  CHECK((y == 2026 && w == 53));
  iso_week_of(2027, 1, 4, y, w);
  CHECK((y == 2027 && w == 1));
  iso_week_of(2024, 12, 30, y, w);  // a Monday that belongs to the next year
  CHECK((y == 2025 && w == 1));
  iso_week_of(2021, 1, 3, y, w);
  CHECK((y == 2020 && w == 53));
  iso_week_of(2000, 1, 1, y, w);
  CHECK((y == 1999 && w == 52));

  const std::vector<int64_t> times = {utc_ms(2027, 1, 4, 9), utc_ms(2027, 1, 1, 9), utc_ms(2026, 12, 31, 9),
                                      utc_ms(2026, 12, 28, 9), utc_ms(2026, 12, 27, 9)};
  // 2027-01-01 and 2026-12-31 are one weekly bucket, but two monthly and two yearly ones.
  CHECK(kept(decide(only(&RetentionPolicy::keep_weekly, 3), times)) ==
        std::vector<int64_t>{utc_ms(2027, 1, 4, 9), utc_ms(2027, 1, 1, 9), utc_ms(2026, 12, 27, 9)});
  CHECK(kept(decide(only(&RetentionPolicy::keep_monthly, 2), times)) ==
        std::vector<int64_t>{utc_ms(2027, 1, 4, 9), utc_ms(2026, 12, 31, 9)});
  CHECK(kept(decide(only(&RetentionPolicy::keep_yearly, 5), times)) ==
        std::vector<int64_t>{utc_ms(2027, 1, 4, 9), utc_ms(2026, 12, 31, 9)});
}

TEST_CASE("retention: iso_week_of agrees with strftime's %G and %V for 60 years of days", "[retention]") {
  int mismatches = 0;
  for (int64_t day = utc_ms(1990, 1, 1, 12) / 1000; day < utc_ms(2050, 1, 1, 12) / 1000; day += 86400) {
    const time_t t = static_cast<time_t>(day);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%G %V", &tm);
    int y = 0, w = 0;
    iso_week_of(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, y, w);
    if (std::to_string(y) + " " + (w < 10 ? "0" : "") + std::to_string(w) != buf) {
      INFO("day " << tm.tm_year + 1900 << "-" << tm.tm_mon + 1 << "-" << tm.tm_mday << ": strftime " << buf
                  << ", iso_week_of " << y << " " << w);
      CHECK(false);
      if (++mismatches > 5) break;
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("retention: buckets are local time (Europe/Paris), DST days included", "[retention]") {
  if (!have_zoneinfo()) {
    WARN("no zoneinfo: skipped");
    return;
  }
  ScopedTz tz("Europe/Paris");
  const sqlbak::LocalTimeFn local = system_local_time;

  SECTION("the breakdown follows the zone") {
    const LocalTime t = system_local_time(utc_ms(2026, 12, 31, 23, 30) / 1000);  // 2027-01-01 00:30 CET
    CHECK(t.year == 2027);
    CHECK(t.month == 1);
    CHECK(t.day == 1);
    CHECK(t.hour == 0);
    CHECK(t.iso_year == 2026);
    CHECK(t.iso_week == 53);
  }

  SECTION("the hour a fall-back change repeats is one hourly bucket") {
    // 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
    const int64_t first_pass = utc_ms(2026, 10, 25, 0, 30);   // 02:30 CEST
    const int64_t second_pass = utc_ms(2026, 10, 25, 1, 30);  // 02:30 CET
    const int64_t before = utc_ms(2026, 10, 24, 23, 59);      // 01:59 CEST
    const auto ds = apply_retention(only(&RetentionPolicy::keep_hourly, 5),
                                    backups_at({first_pass, second_pass, before}), kNow, local);
    CHECK(kept(ds) == std::vector<int64_t>{second_pass, before});
    // In UTC they are three hours.
    CHECK(kept(decide(only(&RetentionPolicy::keep_hourly, 5), {first_pass, second_pass, before})).size() ==
          3);
  }

  SECTION("the hour a spring-forward change skips does not exist: 01:59 CET and 03:00 CEST are neighbours") {
    const int64_t a = utc_ms(2026, 3, 29, 0, 59);  // 01:59 CET
    const int64_t b = utc_ms(2026, 3, 29, 1, 0);   // 03:00 CEST
    const int64_t c = utc_ms(2026, 3, 29, 1, 59);  // 03:59 CEST
    const auto ds =
        apply_retention(only(&RetentionPolicy::keep_hourly, 2), backups_at({a, b, c}), kNow, local);
    CHECK(kept(ds) == std::vector<int64_t>{c, a});
  }

  SECTION("a 23-hour and a 25-hour day are each one daily bucket") {
    // 2026-03-29 runs from 2026-03-28 23:00 UTC to 2026-03-29 22:00 UTC.
    const std::vector<int64_t> spring = {utc_ms(2026, 3, 29, 22, 0), utc_ms(2026, 3, 29, 21, 59),
                                         utc_ms(2026, 3, 28, 23, 0), utc_ms(2026, 3, 28, 22, 59)};
    CHECK(kept(apply_retention(only(&RetentionPolicy::keep_daily, 9), backups_at(spring), kNow, local)) ==
          std::vector<int64_t>{spring[0], spring[1], spring[3]});
    // 2026-10-25 runs from 2026-10-24 22:00 UTC to 2026-10-25 23:00 UTC.
    const std::vector<int64_t> autumn = {utc_ms(2026, 10, 25, 23, 0), utc_ms(2026, 10, 25, 22, 59),
                                         utc_ms(2026, 10, 24, 22, 0), utc_ms(2026, 10, 24, 21, 59)};
    CHECK(kept(apply_retention(only(&RetentionPolicy::keep_daily, 9), backups_at(autumn), kNow, local)) ==
          std::vector<int64_t>{autumn[0], autumn[1], autumn[3]});
  }

  SECTION("keep_within is an exact span, also across a DST change") {
    RetentionPolicy p = nothing();
    p.keep_within = 24h;
    const int64_t newest = utc_ms(2026, 3, 29, 12);  // 14:00 CEST
    const int64_t in = newest - 24 * 3600'000LL + 1000;
    const int64_t out = newest - 24 * 3600'000LL;  // 2026-03-28 13:00 CET: a calendar day, but 24 h
    CHECK(kept(apply_retention(p, backups_at({newest, in, out}), kNow, local)) ==
          std::vector<int64_t>{newest, in});
  }
}

TEST_CASE("retention: equal timestamps are ordered by id and each rule keeps only one of them",
          "[retention]") {
  const int64_t t = utc_ms(2026, 7, 1, 12);
  std::vector<RetentionCandidate> in = {{"c", t}, {"a", t}, {"b", t}, {"x", t - 86400'000}};

  auto ds = apply_retention(only(&RetentionPolicy::keep_daily, 5), in, kNow, utc_breakdown);
  REQUIRE(ds.size() == 4);
  CHECK(ds[0].id == "a");
  CHECK(ds[0].reasons == Reasons{"daily"});
  CHECK_FALSE(ds[1].keep);
  CHECK_FALSE(ds[2].keep);
  CHECK(ds[3].id == "x");
  CHECK(ds[3].keep);

  ds = apply_retention(only(&RetentionPolicy::keep_last, 2), in, kNow, utc_breakdown);
  CHECK(ds[0].id == "a");
  CHECK(ds[1].id == "b");
  CHECK(ds[0].keep);
  CHECK(ds[1].keep);
  CHECK_FALSE(ds[2].keep);
  CHECK_FALSE(ds[3].keep);

  // keep_within treats equal times alike.
  RetentionPolicy within = nothing();
  within.keep_within = 1h;
  ds = apply_retention(within, in, kNow, utc_breakdown);
  CHECK(ds[0].keep);
  CHECK(ds[1].keep);
  CHECK(ds[2].keep);
  CHECK_FALSE(ds[3].keep);
}

TEST_CASE("retention: the newest backup is always kept", "[retention]") {
  const std::vector<int64_t> times = {utc_ms(2026, 1, 3, 0), utc_ms(2026, 1, 2, 0), utc_ms(2026, 1, 1, 0)};

  SECTION("a policy that keeps nothing (only reachable with invalid negative counts) keeps the newest") {
    RetentionPolicy p = nothing();
    p.keep_last = -1;
    p.keep_daily = -3;
    p.keep_within = -1h;
    REQUIRE_FALSE(retention_policy_is_empty(p));
    const auto ds = decide(p, times);
    CHECK(kept(ds) == std::vector<int64_t>{times[0]});
    CHECK(ds[0].reasons == Reasons{"newest"});
  }

  SECTION("with valid counts every non-empty policy keeps it by its own rules") {
    std::mt19937 rng(20261125);
    std::uniform_int_distribution<int> count(0, 3);
    std::uniform_int_distribution<int64_t> offset(0, int64_t{3} * 365 * 86400 * 1000);
    for (int round = 0; round < 500; ++round) {
      RetentionPolicy p{count(rng),
                        count(rng),
                        count(rng),
                        count(rng),
                        count(rng),
                        count(rng),
                        std::chrono::seconds(count(rng) * 3600)};
      if (retention_policy_is_empty(p)) continue;
      std::vector<int64_t> ts;
      for (int i = 0; i < 1 + round % 12; ++i) ts.push_back(utc_ms(2024, 1, 1, 0) + offset(rng));
      const auto ds = decide(p, ts);
      REQUIRE(!ds.empty());
      INFO("round " << round);
      CHECK(ds[0].keep);
      CHECK(ds[0].reasons != Reasons{"newest"});
      for (const RetentionDecision& d : ds) CHECK(d.keep == !d.reasons.empty());
    }
  }
}

TEST_CASE("retention: the configuration's default policy on a year of daily backups", "[retention]") {
  // keep_last 1, daily 7, weekly 4, monthly 12: 7 days, then the last backup of
  // each earlier week, then of each earlier month.
  std::vector<int64_t> times;
  for (int64_t day = 0; day < 400; ++day) times.push_back(utc_ms(2025, 1, 1, 2) + day * 86400'000);
  const auto ds = decide(RetentionPolicy{}, times);
  std::map<std::string, int> by_reason;
  for (const RetentionDecision& d : ds) {
    for (const std::string& r : d.reasons) ++by_reason[r];
  }
  CHECK(by_reason["last"] == 1);
  CHECK(by_reason["daily"] == 7);
  CHECK(by_reason["weekly"] == 4);
  CHECK(by_reason["monthly"] == 12);
  // 2026-02-04 (a Wednesday) is the newest; the daily ones reach back to
  // 2026-01-29. Weekly: Feb 4, Sunday Feb 1, Jan 25, Jan 18. Monthly: Feb 4,
  // Jan 31, then the last day of each month from 2025-12 back to 2025-03.
  CHECK(kept(ds).size() == 7 + 2 /* weekly outside the daily range */ + 10 /* monthly beyond */);
}
