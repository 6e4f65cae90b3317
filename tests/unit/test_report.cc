#include "lib/report.h"

#include <stdlib.h>
#include <time.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/catalog.h"
#include "testutil.h"

namespace sqlbak {
namespace {

using nlohmann::json;

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

int64_t utc_ms(int y, int mo, int d, int h = 0, int mi = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return static_cast<int64_t>(::timegm(&tm)) * 1000;
}

std::string utc_date(int64_t ms) {
  const time_t t = static_cast<time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

// A zone whose offset is OFFSET(t): the local date is the UTC date of t + offset.
LocalDateFunction zone(std::function<int64_t(int64_t)> offset) {
  return [offset](int64_t ms) { return utc_date(ms + offset(ms)); };
}

ReportOptions options_at(int64_t now, int days, const std::string& database = "") {
  ReportOptions o;
  o.days = days;
  o.now_ms = now;
  o.database = database;
  o.local_date = utc_date;
  return o;
}

struct Job {
  JobRecord r;
  Job(const std::string& kind, const std::string& db, int64_t at, const std::string& result = "success") {
    static int64_t next_id = 1;
    r.id = next_id++;
    r.kind = kind;
    r.database = db;
    r.target = "local";
    r.started_at_ms = at;
    r.result = result;
  }
  Job& duration(int64_t ms) { return r.duration_ms = ms, *this; }
  Job& image(int64_t page_count, int64_t page_size) {
    r.page_count = page_count;
    r.page_size = page_size;
    r.database_bytes = page_count * page_size;
    return *this;
  }
  Job& stored(int64_t changed_pages, int64_t bytes) {
    r.changed_pages = changed_pages;
    r.stored_bytes = bytes;
    return *this;
  }
  Job& uploaded(int64_t bytes) { return r.bytes_uploaded = bytes, *this; }
  Job& downloaded(int64_t bytes) { return r.bytes_downloaded = bytes, *this; }
  Job& target(const std::string& name) { return r.target = name, *this; }
  Job& requests(int64_t put, int64_t get, int64_t list, int64_t del) {
    r.put_requests = put, r.get_requests = get, r.list_requests = list, r.delete_requests = del;
    return *this;
  }
  Job& error(const std::string& text) { return r.error = text, *this; }
  operator JobRecord() const { return r; }  // NOLINT(google-explicit-constructor)
};

const json* find_database(const json& report, const std::string& name) {
  for (const json& d : report.at("databases"))
    if (d.at("name") == name) return &d;
  return nullptr;
}

std::vector<std::string> kinds_for(const json& report, const std::string& database) {
  std::vector<std::string> out;
  for (const json& r : report.at("recommendations"))
    if (r.at("database") == database) out.push_back(r.at("kind").get<std::string>());
  return out;
}

std::optional<json> recommendation(const json& report, const std::string& database, const std::string& kind) {
  for (const json& r : report.at("recommendations"))
    if (r.at("database") == database && r.at("kind") == kind) return r;
  return std::nullopt;
}

TEST_CASE("an empty history gives zeros, nulls and a zero-filled window", "[report]") {
  const int64_t now = utc_ms(2024, 5, 10, 12);
  const json r = compute_report({}, options_at(now, 7));
  CHECK(r.at("days") == 7);
  CHECK(r.at("generated") == "2024-05-10T12:00:00Z");
  CHECK(r.at("since") == "2024-05-03T12:00:00Z");
  CHECK(r.at("from") == "2024-05-03");
  CHECK(r.at("to") == "2024-05-10");
  CHECK(r.at("database") == "");
  const json& t = r.at("totals");
  CHECK(t.at("jobs") == 0);
  CHECK(t.at("backups") == 0);
  CHECK(t.at("successes") == 0);
  CHECK(t.at("failures") == 0);
  CHECK(t.at("success_rate").is_null());
  CHECK(t.at("failure_rate").is_null());
  CHECK(t.at("mean_duration_ms").is_null());
  CHECK(t.at("max_duration_ms").is_null());
  CHECK(t.at("mean_database_bytes").is_null());
  CHECK(t.at("mean_ratio").is_null());
  CHECK(t.at("stored_bytes") == 0);
  CHECK(t.at("stored_bytes_per_day") == 0.0);
  CHECK(t.at("uploaded_bytes") == 0);
  CHECK(t.at("requests") == json{{"put", 0}, {"get", 0}, {"list", 0}, {"delete", 0}});
  CHECK(r.at("databases").empty());
  CHECK(r.at("errors").empty());
  CHECK(r.at("recommendations").empty());
  CHECK(r.at("verifications") == json{{"runs", 0}, {"failures", 0}});
  const json& days = r.at("per_day");
  REQUIRE(days.size() == 8);  // 7 days touch 8 dates
  for (const json& d : days) {
    CHECK(d.at("backups") == 0);
    CHECK(d.at("failures") == 0);
    CHECK(d.at("mean_duration_ms").is_null());
    CHECK(d.at("stored_bytes") == 0);
    CHECK(d.at("database_bytes") == 0);
  }
  CHECK(days.front().at("date") == "2024-05-03");
  CHECK(days.back().at("date") == "2024-05-10");
}

TEST_CASE("every figure of a small hand-made history", "[report]") {
  const int64_t d1 = utc_ms(2024, 5, 7, 2), d2 = utc_ms(2024, 5, 8, 2), d3 = utc_ms(2024, 5, 9, 2);
  const int64_t now = utc_ms(2024, 5, 10, 12);
  std::vector<JobRecord> jobs = {
      // "a": a full backup (ratio 100*4096/102400 = 4), an increment (10*4096/20480 = 2),
      // a failure and a cancelled one.
      Job("backup", "a", d1)
          .duration(1000)
          .image(100, 4096)
          .stored(100, 102400)
          .uploaded(102400)
          .requests(3, 0, 1, 0),
      Job("backup", "a", d2)
          .duration(3000)
          .image(110, 4096)
          .stored(10, 20480)
          .uploaded(20480)
          .requests(2, 0, 1, 0),
      Job("backup", "a", d2 + kHour, "failure")
          .duration(500)
          .uploaded(100)
          .requests(1, 0, 0, 0)
          .error("disk full"),
      Job("backup", "a", d3, "cancelled").duration(200).error("cancelled by SIGTERM"),
      Job("verify", "a", d3 + kHour).duration(700).requests(0, 5, 1, 0),
      Job("verify", "a", d3 + 2 * kHour, "failure").error("checksum mismatch in pack 1f"),
      Job("rotate", "a", d3 + 3 * kHour).requests(0, 1, 2, 3),
      // "b": one backup that stored nothing (no ratio), and a restore.
      Job("backup", "b", d3).duration(2000).image(50, 4096).stored(0, 0),
      Job("restore", "b", d3 + kHour).requests(0, 7, 1, 0),
      // A repository-wide prune: totals only.
      Job("prune", "", d3 + 4 * kHour).requests(0, 0, 2, 4),
  };
  const json r = compute_report(jobs, options_at(now, 7));

  const json& t = r.at("totals");
  CHECK(t.at("jobs") == 10);
  CHECK(t.at("kinds") == json{{"backup", 5}, {"verify", 2}, {"restore", 1}, {"rotate", 1}, {"prune", 1}});
  CHECK(t.at("backups") == 5);
  CHECK(t.at("successes") == 3);
  CHECK(t.at("failures") == 1);
  CHECK(t.at("cancelled") == 1);
  CHECK(t.at("success_rate").get<double>() == Approx(3.0 / 5));
  CHECK(t.at("failure_rate").get<double>() == Approx(1.0 / 5));
  CHECK(t.at("mean_duration_ms").get<double>() == Approx((1000 + 3000 + 2000) / 3.0));
  CHECK(t.at("max_duration_ms") == 3000);
  CHECK(t.at("mean_database_bytes").get<double>() == Approx((100 + 110 + 50) * 4096 / 3.0));
  CHECK(t.at("mean_ratio").get<double>() == Approx((4.0 + 2.0) / 2));
  CHECK(t.at("stored_bytes") == 102400 + 20480);
  CHECK(t.at("stored_bytes_per_day").get<double>() == Approx((102400 + 20480) / 7.0));
  CHECK(t.at("uploaded_bytes") == 102400 + 20480 + 100);
  CHECK(t.at("requests") == json{{"put", 6}, {"get", 13}, {"list", 8}, {"delete", 7}});
  CHECK(r.at("verifications") == json{{"runs", 2}, {"failures", 1}});

  REQUIRE(r.at("databases").size() == 2);
  CHECK(r.at("databases")[0].at("name") == "a");
  const json& a = *find_database(r, "a");
  CHECK(a.at("jobs") == 7);
  CHECK(a.at("backups") == 4);
  CHECK(a.at("successes") == 2);
  CHECK(a.at("failures") == 1);
  CHECK(a.at("cancelled") == 1);
  CHECK(a.at("success_rate").get<double>() == Approx(0.5));
  CHECK(a.at("mean_duration_ms").get<double>() == Approx(2000));
  CHECK(a.at("max_duration_ms") == 3000);
  CHECK(a.at("mean_database_bytes").get<double>() == Approx(105 * 4096));
  CHECK(a.at("mean_ratio").get<double>() == Approx(3.0));
  CHECK(a.at("mean_changed_fraction").get<double>() == Approx((1.0 + 10.0 / 110) / 2));
  CHECK(a.at("stored_bytes") == 122880);
  CHECK(a.at("uploaded_bytes") == 122980);
  CHECK(a.at("requests") == json{{"put", 6}, {"get", 6}, {"list", 5}, {"delete", 3}});
  CHECK(a.at("backups_per_day").get<double>() == Approx(2.0 / 7));
  CHECK(a.at("last_success") == "2024-05-08T02:00:00Z");
  CHECK(a.at("verifications") == json{{"runs", 2}, {"failures", 1}});
  const json& b = *find_database(r, "b");
  CHECK(b.at("backups") == 1);
  CHECK(b.at("success_rate").get<double>() == Approx(1.0));
  CHECK(b.at("mean_ratio").is_null());  // stored nothing: no ratio
  CHECK(b.at("mean_changed_fraction").get<double>() == Approx(0.0));
  CHECK(b.at("requests") == json{{"put", 0}, {"get", 7}, {"list", 1}, {"delete", 0}});

  const json& days = r.at("per_day");
  REQUIRE(days.size() == 8);
  auto day = [&](const std::string& date) -> const json& {
    for (const json& d : days)
      if (d.at("date") == date) return d;
    FAIL("no per_day entry " << date);
    return days[0];
  };
  CHECK(day("2024-05-06") == json{{"date", "2024-05-06"},
                                  {"backups", 0},
                                  {"failures", 0},
                                  {"mean_duration_ms", nullptr},
                                  {"stored_bytes", 0},
                                  {"database_bytes", 0}});
  CHECK(day("2024-05-07").at("backups") == 1);
  CHECK(day("2024-05-07").at("stored_bytes") == 102400);
  CHECK(day("2024-05-07").at("database_bytes") == 100 * 4096);
  CHECK(day("2024-05-08").at("backups") == 2);
  CHECK(day("2024-05-08").at("failures") == 1);
  CHECK(day("2024-05-08").at("mean_duration_ms").get<double>() == Approx(3000));
  CHECK(day("2024-05-09").at("backups") == 2);  // a cancelled, b success
  CHECK(day("2024-05-09").at("failures") == 0);
  CHECK(day("2024-05-09").at("database_bytes") == 50 * 4096);

  // Failed jobs of any kind; the cancelled backup is not an error.
  REQUIRE(r.at("errors").size() == 2);
  CHECK(r.at("errors")[0] == json{{"error", "checksum mismatch in pack 1f"},
                                  {"count", 1},
                                  {"last", "2024-05-09T04:00:00Z"},
                                  {"databases", {"a"}}});
  CHECK(r.at("errors")[1].at("error") == "disk full");
}

TEST_CASE("jobs outside the window or of other databases are left out", "[report]") {
  const int64_t now = utc_ms(2024, 5, 10, 12);
  const int64_t since = now - 2 * kDay;
  std::vector<JobRecord> jobs = {
      Job("backup", "a", since - 1).duration(10),     Job("backup", "a", since).duration(20),
      Job("backup", "b", since + kHour).duration(40), Job("backup", "a", now).duration(30),
      Job("backup", "a", now + 1).duration(50),
  };
  json r = compute_report(jobs, options_at(now, 2));
  CHECK(r.at("totals").at("backups") == 3);
  CHECK(r.at("totals").at("max_duration_ms") == 40);
  r = compute_report(jobs, options_at(now, 2, "a"));
  CHECK(r.at("database") == "a");
  CHECK(r.at("totals").at("backups") == 2);
  CHECK(r.at("totals").at("mean_duration_ms").get<double>() == Approx(25));
  REQUIRE(r.at("databases").size() == 1);
  CHECK(r.at("databases")[0].at("name") == "a");
}

TEST_CASE("per_day: one entry per date, zero-filled, and the last image of each database", "[report]") {
  const int64_t now = utc_ms(2024, 1, 3, 6);
  std::vector<JobRecord> jobs = {
      // Out of order on purpose: "last" is by time, not by position.
      Job("backup", "a", utc_ms(2024, 1, 2, 20)).image(30, 1000).stored(1, 10),
      Job("backup", "a", utc_ms(2024, 1, 2, 8)).image(10, 1000).stored(1, 10),
      Job("backup", "b", utc_ms(2024, 1, 2, 9)).image(5, 1000).stored(1, 10),
      Job("backup", "b", utc_ms(2024, 1, 2, 23), "failure").image(99, 1000),
  };
  const json r = compute_report(jobs, options_at(now, 3));
  const json& days = r.at("per_day");
  std::vector<std::string> dates;
  for (const json& d : days) dates.push_back(d.at("date"));
  CHECK(dates == std::vector<std::string>{"2023-12-31", "2024-01-01", "2024-01-02", "2024-01-03"});
  CHECK(days[2].at("backups") == 4);
  CHECK(days[2].at("failures") == 1);
  CHECK(days[2].at("stored_bytes") == 30);
  CHECK(days[2].at("database_bytes") == 30000 + 5000);
  CHECK(days[0].at("backups") == 0);
  CHECK(days[3].at("backups") == 0);

  // A window ending at local midnight sharp touches days + 1 dates as well.
  const json edge = compute_report({}, options_at(utc_ms(2024, 1, 3), 1));
  CHECK(edge.at("per_day").size() == 2);
  CHECK(edge.at("from") == "2024-01-02");
  CHECK(edge.at("to") == "2024-01-03");
}

TEST_CASE("per_day across DST changes with an injected local date", "[report]") {
  // Like Europe/Berlin in 2024: UTC+1, UTC+2 from 31 March 01:00 UTC to 27 October 01:00 UTC.
  const int64_t spring = utc_ms(2024, 3, 31, 1), autumn = utc_ms(2024, 10, 27, 1);
  const LocalDateFunction berlin =
      zone([=](int64_t t) { return t >= spring && t < autumn ? 2 * kHour : 1 * kHour; });

  SECTION("spring forward: the 23-hour day is there once, and late jobs move to the next date") {
    ReportOptions o = options_at(utc_ms(2024, 4, 2, 10), 4);
    o.local_date = berlin;
    std::vector<JobRecord> jobs = {
        Job("backup", "a", utc_ms(2024, 3, 30, 22, 30)).stored(1, 100),  // 23:30 local, 30 March
        Job("backup", "a", utc_ms(2024, 3, 31, 22, 30)).stored(1, 200),  // 00:30 local, 1 April
        Job("backup", "a", utc_ms(2024, 3, 31, 21, 59)).stored(1, 400),  // 23:59 local, 31 March
    };
    const json r = compute_report(jobs, o);
    std::vector<std::string> dates;
    for (const json& d : r.at("per_day")) dates.push_back(d.at("date"));
    CHECK(dates ==
          std::vector<std::string>{"2024-03-29", "2024-03-30", "2024-03-31", "2024-04-01", "2024-04-02"});
    CHECK(r.at("per_day")[1].at("stored_bytes") == 100);
    CHECK(r.at("per_day")[2].at("stored_bytes") == 400);
    CHECK(r.at("per_day")[3].at("stored_bytes") == 200);
  }

  SECTION("fall back: the 25-hour day is there once") {
    ReportOptions o = options_at(utc_ms(2024, 10, 28, 23, 30), 3);  // 00:30 local on 29 October
    o.local_date = berlin;
    std::vector<JobRecord> jobs = {
        Job("backup", "a", utc_ms(2024, 10, 27, 0, 30)).stored(1, 1),   // 02:30 CEST, 27 October
        Job("backup", "a", utc_ms(2024, 10, 27, 1, 30)).stored(1, 2),   // 02:30 CET, 27 October
        Job("backup", "a", utc_ms(2024, 10, 27, 22, 59)).stored(1, 4),  // 23:59 CET, 27 October
        Job("backup", "a", utc_ms(2024, 10, 27, 23, 0)).stored(1, 8),   // 00:00 CET, 28 October
    };
    const json r = compute_report(jobs, o);
    std::vector<std::string> dates;
    for (const json& d : r.at("per_day")) dates.push_back(d.at("date"));
    CHECK(dates == std::vector<std::string>{"2024-10-26", "2024-10-27", "2024-10-28", "2024-10-29"});
    CHECK(r.at("per_day")[1].at("stored_bytes") == 7);
    CHECK(r.at("per_day")[2].at("stored_bytes") == 8);
    CHECK(r.at("to") == "2024-10-29");
  }

  SECTION("a zone that turns back across midnight lists each date once, in order") {
    // At 2024-06-02 00:00 local (UTC-4) clocks go back to 23:00 on 1 June (UTC-5).
    const int64_t back = utc_ms(2024, 6, 2, 4);
    ReportOptions o = options_at(utc_ms(2024, 6, 3, 12), 3);
    o.local_date = zone([=](int64_t t) { return t < back ? -4 * kHour : -5 * kHour; });
    const json r = compute_report({Job("backup", "a", back - 30 * 60'000).stored(1, 5),   // 23:30, 1 June
                                   Job("backup", "a", back + 30 * 60'000).stored(1, 6)},  // 23:30 again
                                  o);
    std::vector<std::string> dates;
    for (const json& d : r.at("per_day")) dates.push_back(d.at("date"));
    CHECK(dates == std::vector<std::string>{"2024-05-31", "2024-06-01", "2024-06-02", "2024-06-03"});
    CHECK(r.at("per_day")[1].at("stored_bytes") == 11);
  }
}

TEST_CASE("the default local date follows TZ", "[report]") {
  const char* old = std::getenv("TZ");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  ::setenv("TZ", "Europe/Berlin", 1);
  ::tzset();
  CHECK(local_date(utc_ms(2024, 3, 30, 22, 59)) == "2024-03-30");
  CHECK(local_date(utc_ms(2024, 3, 30, 23, 0)) == "2024-03-31");
  CHECK(local_date(utc_ms(2024, 3, 31, 21, 59)) == "2024-03-31");
  CHECK(local_date(utc_ms(2024, 3, 31, 22, 0)) == "2024-04-01");
  CHECK(local_date(-1) == "1970-01-01");  // 00:59:59.999 local
  // The same as strftime over two centuries.
  for (int64_t ms = -86'400'000LL * 365; ms < 86'400'000LL * 365 * 200; ms += 86'400'000LL * 7 + 3'599'999) {
    const time_t t = static_cast<time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    INFO("ms " << ms);
    REQUIRE(local_date(ms) == buf);
  }
  ReportOptions o;
  o.days = 3;
  o.now_ms = utc_ms(2024, 4, 1, 12);
  const json r = compute_report({}, o);
  CHECK(r.at("from") == "2024-03-29");
  CHECK(r.at("per_day").size() == 4);
  if (saved)
    ::setenv("TZ", saved->c_str(), 1);
  else
    ::unsetenv("TZ");
  ::tzset();
}

TEST_CASE("errors: the five most frequent, ties broken by recency then text", "[report]") {
  const int64_t now = utc_ms(2024, 5, 10, 12);
  const int64_t t0 = now - 5 * kDay;
  std::vector<JobRecord> jobs;
  auto fail = [&](const std::string& db, const std::string& text, int64_t at) {
    jobs.push_back(Job("backup", db, at, "failure").error(text));
  };
  for (int i = 0; i < 4; ++i) fail("a", "disk full", t0 + i * kHour);
  fail("b", "disk full", t0 + 10 * kHour);
  for (int i = 0; i < 3; ++i) fail("a", "timeout", t0 + i * kHour);
  fail("a", "e-old", t0);
  fail("a", "e-new", t0 + 20 * kHour);
  fail("a", "e-b", t0 + 5 * kHour);
  fail("a", "e-a", t0 + 5 * kHour);
  fail("a", "e-dropped", t0 + 1);
  jobs.push_back(Job("backup", "a", t0, "cancelled").error("cancelled"));
  jobs.push_back(Job("backup", "a", t0, "failure"));  // no text: not listed
  const json r = compute_report(jobs, options_at(now, 7));
  const json& e = r.at("errors");
  REQUIRE(e.size() == 5);
  CHECK(e[0] == json{{"error", "disk full"},
                     {"count", 5},
                     {"last", "2024-05-05T22:00:00Z"},
                     {"databases", {"a", "b"}}});
  CHECK(e[1].at("error") == "timeout");
  CHECK(e[1].at("count") == 3);
  CHECK(e[2].at("error") == "e-new");
  CHECK(e[3].at("error") == "e-a");
  CHECK(e[4].at("error") == "e-b");
  CHECK(r.at("totals").at("failures") == 14);
}

// A history of N successful backups of DB spread over the last 7 days.
std::vector<JobRecord> backups(const std::string& db, int n, int64_t now, int64_t duration,
                               int64_t page_count, int64_t changed, int64_t stored,
                               int64_t page_size = 4096) {
  std::vector<JobRecord> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(Job("backup", db, now - 6 * kDay + i * (6 * kDay / n))
                      .duration(duration)
                      .image(page_count, page_size)
                      .stored(changed, stored));
  }
  return out;
}

std::vector<JobRecord> operator+(std::vector<JobRecord> a, const std::vector<JobRecord>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST_CASE("recommendations: each one triggered and not", "[report]") {
  const int64_t now = utc_ms(2024, 5, 10, 12);
  // An ordinary database: 10 % changed, ratio 2, 10 s; triggers nothing.
  const auto ordinary = [&](const std::string& db, int n = 7) {
    return backups(db, n, now, 10'000, 1000, 100, 204800);
  };
  auto failures = [&](const std::string& db, int n) {
    std::vector<JobRecord> out;
    for (int i = 0; i < n; ++i)
      out.push_back(Job("backup", db, now - kDay + i, "failure").error("disk full"));
    return out;
  };
  auto report = [&](const std::vector<JobRecord>& jobs) { return compute_report(jobs, options_at(now, 7)); };

  SECTION("an ordinary history recommends nothing") {
    CHECK(report(ordinary("a")).at("recommendations").empty());
  }

  SECTION("no successful backup") {
    json r = report(failures("a", 3));
    REQUIRE(kinds_for(r, "a") ==
            std::vector<std::string>{"no_successful_backup"});  // not high_failure_rate too
    json rec = *recommendation(r, "a", "no_successful_backup");
    CHECK(rec.at("severity") == "critical");
    CHECK(rec.at("value") == 3.0);
    CHECK(rec.at("message").get<std::string>().find("a: none of its 3 backups in the last 7 days") == 0);
    CHECK(rec.at("message").get<std::string>().find("disk full") != std::string::npos);
    r = report(failures("a", 3) + backups("a", 1, now, 10'000, 1000, 100, 204800));
    CHECK_FALSE(recommendation(r, "a", "no_successful_backup"));
    // Only cancelled ones: still no successful backup.
    r = report({Job("backup", "a", now - kHour, "cancelled")});
    CHECK(recommendation(r, "a", "no_successful_backup"));
  }

  SECTION("failure rate above 10 %") {
    json r = report(ordinary("a", 8) + failures("a", 2));  // 20 %
    auto rec = recommendation(r, "a", "high_failure_rate");
    REQUIRE(rec);
    CHECK(rec->at("value").get<double>() == Approx(0.2));
    CHECK(rec->at("threshold").get<double>() == Approx(0.1));
    CHECK(rec->at("message").get<std::string>().find("2 of 10 backups failed") != std::string::npos);
    CHECK(rec->at("message").get<std::string>().find("20.0 %") != std::string::npos);
    r = report(ordinary("a", 9) + failures("a", 1));  // exactly 10 %
    CHECK_FALSE(recommendation(r, "a", "high_failure_rate"));
  }

  SECTION("failed verification") {
    json r =
        report(ordinary("a") + std::vector<JobRecord>{Job("verify", "a", now - kHour, "failure").error("bad"),
                                                      Job("verify", "a", now - 2 * kHour)});
    auto rec = recommendation(r, "a", "verification_failed");
    REQUIRE(rec);
    CHECK(rec->at("severity") == "critical");
    CHECK(rec->at("message").get<std::string>().find("1 of 2 verifications failed") != std::string::npos);
    r = report(ordinary("a") + std::vector<JobRecord>{Job("verify", "a", now - kHour)});
    CHECK_FALSE(recommendation(r, "a", "verification_failed"));
  }

  SECTION("mean duration above one hour") {
    json r = report(backups("a", 5, now, 3'600'001 + 59'999, 1000, 100, 204800));
    auto rec = recommendation(r, "a", "long_duration");
    REQUIRE(rec);
    CHECK(rec->at("value").get<double>() == Approx(3'660'000));
    CHECK(rec->at("message").get<std::string>().find("1 h 1 min") != std::string::npos);
    r = report(backups("a", 5, now, 3'600'000, 1000, 100, 204800));
    CHECK_FALSE(recommendation(r, "a", "long_duration"));
  }

  SECTION("compression ratio below 1.5") {
    json r = report(backups("a", 5, now, 10'000, 100, 14, 10'000, 1000));  // 14 000 / 10 000 = 1.4
    auto rec = recommendation(r, "a", "low_compression");
    REQUIRE(rec);
    CHECK(rec->at("value").get<double>() == Approx(1.4));
    CHECK(rec->at("message").get<std::string>().find("1.4x") != std::string::npos);
    r = report(backups("a", 5, now, 10'000, 100, 15, 10'000, 1000));  // exactly 1.5
    CHECK_FALSE(recommendation(r, "a", "low_compression"));
  }

  SECTION("every backup a full one") {
    json r = report(backups("a", 4, now, 10'000, 100, 95, 100 * 4096 / 3));
    auto rec = recommendation(r, "a", "full_every_time");
    REQUIRE(rec);
    CHECK(rec->at("value").get<double>() == Approx(0.95));
    CHECK(rec->at("message").get<std::string>().find("95.0 %") != std::string::npos);
    CHECK(rec->at("message").get<std::string>().find("VACUUM") != std::string::npos);
    // Too few backups to tell (the first one of a database is always full).
    CHECK_FALSE(recommendation(report(backups("a", 3, now, 10'000, 100, 95, 100 * 4096 / 3)), "a",
                               "full_every_time"));
    CHECK_FALSE(recommendation(report(backups("a", 4, now, 10'000, 100, 85, 100 * 4096 / 3)), "a",
                               "full_every_time"));
  }

  SECTION("cheap increments: back up more often") {
    // 3 backups in 7 days, 0.5 % of 1000 pages each, 1 s.
    json r = report(backups("a", 3, now, 1000, 1000, 5, 4096));
    auto rec = recommendation(r, "a", "cheap_increments");
    REQUIRE(rec);
    CHECK(rec->at("value").get<double>() == Approx(0.005));
    CHECK(rec->at("message").get<std::string>().find("0.5 %") != std::string::npos);
    CHECK(rec->at("message").get<std::string>().find("0.4 backups a day") != std::string::npos);
    CHECK_FALSE(recommendation(report(backups("a", 2, now, 1000, 1000, 5, 4096)), "a", "cheap_increments"));
    // Already often (20 in 7 days > 1.5 a day), or slow, or not so small a change.
    CHECK_FALSE(recommendation(report(backups("a", 20, now, 1000, 1000, 5, 4096)), "a", "cheap_increments"));
    CHECK_FALSE(recommendation(report(backups("a", 3, now, 60'000, 1000, 5, 4096)), "a", "cheap_increments"));
    CHECK_FALSE(recommendation(report(backups("a", 3, now, 1000, 1000, 10, 4096)), "a", "cheap_increments"));
  }

  SECTION("most severe first, then by database") {
    json r = report(backups("z", 5, now, 10'000, 100, 14, 10'000, 1000) + failures("y", 2) + ordinary("x") +
                    backups("w", 5, now, 4'000'000, 1000, 100, 204800));
    std::vector<std::string> order;
    for (const json& rec : r.at("recommendations"))
      order.push_back(rec.at("database").get<std::string>() + ":" + rec.at("kind").get<std::string>());
    CHECK(order ==
          std::vector<std::string>{"y:no_successful_backup", "w:long_duration", "z:low_compression"});
  }
}

TEST_CASE("build_report reads the window from the catalog", "[report]") {
  test::TempDir dir;
  auto opened = Catalog::open(dir.path());
  REQUIRE(opened.ok());
  Catalog& catalog = **opened;
  const int64_t now = utc_ms(2024, 5, 10, 12);
  std::vector<JobRecord> jobs = {
      Job("backup", "a", now - 40 * kDay).duration(5),
      Job("backup", "a", now - 3 * kDay).duration(10).image(10, 4096).stored(5, 8192).uploaded(8192),
      Job("backup", "b", now - 2 * kDay, "failure").error("disk full"),
      Job("verify", "a", now - kDay),
  };
  for (const JobRecord& j : jobs) REQUIRE(catalog.record(j).ok());

  auto r = build_report(catalog, 7, "", now);
  REQUIRE(r.ok());
  CHECK(r->at("totals").at("jobs") == 3);
  CHECK(r->at("totals").at("backups") == 2);
  CHECK(r->at("totals").at("mean_ratio").get<double>() == Approx(2.5));
  CHECK(r->at("errors").size() == 1);
  auto only_a = build_report(catalog, 60, "a", now);
  REQUIRE(only_a.ok());
  CHECK(only_a->at("totals").at("jobs") == 3);
  CHECK(only_a->at("per_day").size() == 61);

  for (int bad : {0, -1, 3661}) {
    auto e = build_report(catalog, bad, "", now);
    REQUIRE_FALSE(e.ok());
    CHECK(e.status().code() == ErrorCode::kUsage);
    CHECK(e.status().message().find("between 1 and 3660") != std::string::npos);
  }
  CHECK(build_report(catalog, 3660, "", now).ok());
}

TEST_CASE("targets: requests and bytes per target, in totals and per database", "[report]") {
  const int64_t now = utc_ms(2024, 5, 10, 12);
  std::vector<JobRecord> jobs = {
      Job("backup", "a", now - kDay).requests(1200, 30, 10, 2).uploaded(5000).downloaded(70),
      Job("backup", "b", now - kDay).target("offsite").requests(34, 26, 2, 1).uploaded(1 << 20),
      Job("restore", "a", now - 2 * kDay).target("offsite").requests(0, 20, 1, 0).downloaded(900),
      Job("prune", "", now - 2 * kDay).target("offsite").requests(0, 10, 3, 2).downloaded(100),
      Job("backup", "a", now - kDay, "failure").target("").requests(0, 0, 1, 0).error("locked"),
      Job("backup", "a", now - 9 * kDay).requests(1000, 0, 0, 0),  // outside the window
  };
  const json r = compute_report(jobs, options_at(now, 7));
  INFO(r.dump(1));
  const json& t = r.at("totals");
  CHECK(t.at("requests") == json({{"put", 1234}, {"get", 86}, {"list", 17}, {"delete", 5}}));
  CHECK(t.at("uploaded_bytes") == 5000 + (1 << 20));
  CHECK(t.at("downloaded_bytes") == 1070);
  REQUIRE(r.at("targets").size() == 2);  // no entry for the job without a target
  const json& local = r.at("targets")[0];
  CHECK(local.at("name") == "local");
  CHECK(local.at("jobs") == 1);
  CHECK(local.at("requests") == json({{"put", 1200}, {"get", 30}, {"list", 10}, {"delete", 2}}));
  CHECK(local.at("uploaded_bytes") == 5000);
  CHECK(local.at("downloaded_bytes") == 70);
  const json& offsite = r.at("targets")[1];
  CHECK(offsite.at("name") == "offsite");
  CHECK(offsite.at("jobs") == 3);
  CHECK(offsite.at("requests") == json({{"put", 34}, {"get", 56}, {"list", 6}, {"delete", 3}}));
  CHECK(offsite.at("uploaded_bytes") == 1 << 20);
  CHECK(offsite.at("downloaded_bytes") == 1000);
  CHECK(find_database(r, "a")->at("downloaded_bytes") == 970);

  // A database filter keeps that database's jobs: no prune, no other database.
  const json only_a = compute_report(jobs, options_at(now, 7, "a"));
  REQUIRE(only_a.at("targets").size() == 2);
  CHECK(only_a.at("targets")[1].at("requests") == json({{"put", 0}, {"get", 20}, {"list", 1}, {"delete", 0}}));
  CHECK(only_a.at("targets")[1].at("jobs") == 1);

  CHECK(compute_report({}, options_at(now, 7)).at("targets") == json::array());
}

}  // namespace
}  // namespace sqlbak
