#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lib/calendar.h"

// The expected values below are what `systemd-analyze calendar` of systemd 252
// prints for the same expressions, base times and TZ (Debian 12, tzdata 2025b).

using sqlbak::CalendarComponent;
using sqlbak::CalendarSpec;
using sqlbak::ErrorCode;
using sqlbak::find_next_elapse;
using sqlbak::format_elapse;
using sqlbak::next_elapse;
using sqlbak::normalized;
using sqlbak::parse_calendar;
using sqlbak::parse_calendar_base_time;

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
    if (old_) ::setenv("TZ", old_->c_str(), 1);
    else ::unsetenv("TZ");
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

CalendarSpec parsed(const std::string& text) {
  auto spec = parse_calendar(text);
  INFO("parse_calendar(\"" << text << "\")");
  if (!spec.ok()) INFO(spec.status().message());
  REQUIRE(spec.ok());
  return spec.value();
}

std::string parse_error(const std::string& text) {
  auto spec = parse_calendar(text);
  INFO("parse_calendar(\"" << text << "\") should fail");
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.status().code() == ErrorCode::kInvalidArgument);
  return spec.status().message();
}

int64_t base_time(const std::string& text) {
  auto t = parse_calendar_base_time(text, 0);
  INFO("parse_calendar_base_time(\"" << text << "\")");
  if (!t.ok()) INFO(t.status().message());
  REQUIRE(t.ok());
  return t.value();
}

// The next COUNT elapses after BASE, formatted in the local zone; "never" ends.
std::vector<std::string> elapses(const std::string& expr, const std::string& base, size_t count) {
  const CalendarSpec spec = parsed(expr);
  std::vector<std::string> out;
  int64_t after = base_time(base);
  while (out.size() < count) {
    const auto next = next_elapse(spec, after);
    if (!next) {
      if (out.empty()) out.push_back("never");
      break;
    }
    CHECK(*next > after);
    out.push_back(format_elapse(*next));
    after = *next;
  }
  return out;
}

}  // namespace

TEST_CASE("parse_calendar normalizes as systemd-analyze does", "[calendar]") {
  ScopedTz tz("UTC");
  const struct {
    const char* text;
    const char* normalized;
  } cases[] = {
      {"minutely", "*-*-* *:*:00"},
      {"hourly", "*-*-* *:00:00"},
      {"daily", "*-*-* 00:00:00"},
      {"DAILY", "*-*-* 00:00:00"},
      {"weekly", "Mon *-*-* 00:00:00"},
      {"monthly", "*-*-01 00:00:00"},
      {"yearly", "*-01-01 00:00:00"},
      {"annually", "*-01-01 00:00:00"},
      {"quarterly", "*-01,04,07,10-01 00:00:00"},
      {"semiannually", "*-01,07-01 00:00:00"},
      {"semi-annually", "*-01,07-01 00:00:00"},
      {"biannually", "*-01,07-01 00:00:00"},
      {"Mon..Fri 22:30", "Mon..Fri *-*-* 22:30:00"},
      {"Sat,Sun 10:00", "Sat,Sun *-*-* 10:00:00"},
      {"Mon,Wed..Fri 08:15", "Mon,Wed..Fri *-*-* 08:15:00"},
      {"Monday 09:00", "Mon *-*-* 09:00:00"},
      {"Mon-Wed 12:00", "Mon..Wed *-*-* 12:00:00"},
      {"Mon,Tue 12:00", "Mon,Tue *-*-* 12:00:00"},
      {"Mon..Sun 01:00", "*-*-* 01:00:00"},
      {"Fri", "Fri *-*-* 00:00:00"},
      {"02:00", "*-*-* 02:00:00"},
      {"02:00:30", "*-*-* 02:00:30"},
      {"2026-03-29", "2026-03-29 00:00:00"},
      {"26-12-31 23:59:59", "2026-12-31 23:59:59"},
      {"89-01-01", "1989-01-01 00:00:00"},
      {"03-15", "*-03-15 00:00:00"},
      {"*-*-1/2 03:00", "*-*-01/2 03:00:00"},
      {"*-*-1,15 04:00", "*-*-01,15 04:00:00"},
      {"*-*-15,1,15 04:00", "*-*-01,15 04:00:00"},
      {"*-*-1..5 05:00", "*-*-01..05 05:00:00"},
      {"*-*-1..6/2", "*-*-01..05/2 00:00:00"},
      {"*-*-3..3", "*-*-03 00:00:00"},
      {"*:0/15", "*-*-* *:00/15:00"},
      {"*:*:0/10", "*-*-* *:*:00/10"},
      {"*:*:*", "*-*-* *:*:*"},
      {"*:*:1.5", "*-*-* *:*:01.500000"},
      {"*:*:1.1234567", "*-*-* *:*:01.123457"},
      {"*:*:0/7.5", "*-*-* *:*:00/7.500000"},
      {"8..18/2:30", "*-*-* 08..18/2:30:00"},
      {"*-02~1 07:00", "*-02~01 07:00:00"},
      {"*-*~1..3", "*-*~01..03 00:00:00"},
      {"*-*~5/1", "*-*~05/1 00:00:00"},
      {"*-*~* 07:00", "*-*-* 07:00:00"},
      {"@1800000000", "2027-01-15 08:00:00 UTC"},
      {"daily UTC", "*-*-* 00:00:00 UTC"},
      {"daily utc", "*-*-* 00:00:00 UTC"},
      {"Mon 10:00 Europe/Paris", "Mon *-*-* 10:00:00 Europe/Paris"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    CHECK(normalized(parsed(c.text)) == c.normalized);
  }
}

TEST_CASE("parse_calendar exposes the parsed fields", "[calendar]") {
  ScopedTz tz("UTC");
  const CalendarSpec spec = parsed("Mon,Wed..Fri *-*-1,15 8..18/2:0/15");
  CHECK(spec.weekdays == (1 | 4 | 8 | 16));
  CHECK(spec.year.empty());
  CHECK(spec.month.empty());
  CHECK(spec.day == std::vector<CalendarComponent>{{1, -1, 0}, {15, -1, 0}});
  CHECK(spec.hour == std::vector<CalendarComponent>{{8, 18, 2}});
  CHECK(spec.minute == std::vector<CalendarComponent>{{0, -1, 15}});
  CHECK(spec.second == std::vector<CalendarComponent>{{0, -1, 0}});
  CHECK_FALSE(spec.utc);
  CHECK(spec.timezone.empty());

  const CalendarSpec eom = parsed("*-02~1 07:00");
  CHECK(eom.end_of_month);
  CHECK(parsed("*:*:1.5").second == std::vector<CalendarComponent>{{1'500'000, -1, 0}});
  CHECK(parsed("*:*:*").second == std::vector<CalendarComponent>{{0, -1, 1'000'000}});
}

TEST_CASE("parse_calendar says what is wrong and where", "[calendar]") {
  ScopedTz tz("UTC");
  const struct {
    const char* text;
    const char* message;  // a part of the message
  } cases[] = {
      {"", "empty expression"},
      {"Mon..Fry 10:00", "unknown weekday 'Fry'"},
      {"Mond 10:00", "unknown weekday 'Mond'"},
      {"Fry 10:00", "unknown word 'Fry'"},
      {"foo", "unknown word 'foo'"},
      {"Fri..Mon", "goes backwards"},
      {"Mon.. 10:00", "weekday range without an end"},
      {"25:00", "hour '25' is out of range 0..23"},
      {"2026-13-01", "month '13' is out of range 1..12"},
      {"*-*-0", "day '0' is out of range 1..31"},
      {"*-*-32", "day '32' is out of range 1..31"},
      {"*:60", "minute '60' is out of range 0..59"},
      {"10:00:60", "second '60' is out of range"},
      {"1969-01-01", "year '1969' is out of range 1970..2199"},
      {"2200-01-01", "year '2200' is out of range 1970..2199"},
      {"1..0:00", "hour '1..0' is an empty range"},
      {"*:0/0", "repetition '/0'"},
      {"*:50/15", "minute '50/15' cannot repeat"},
      {"*-02~29", "day '~29' is out of range ~1..~28"},
      {"*:*:1.", "expected digits after the decimal point at column 7"},
      {"*/2:00", "at column 2"},
      {"10:00 ", "unexpected ' ' at column 6"},
      {"1:2:3:4", "unexpected ':4' at column 6"},
      {"daily 02:30", "'daily' stands alone"},
      {" daily", "unexpected space at column 1"},
      {"10:00 Europe/Nowhere", "unknown time zone 'Europe/Nowhere'"},
      {"99999999999:00", "number '99999999999' is out of range"},
  };
  for (const auto& c : cases) {
    const std::string message = parse_error(c.text);
    INFO(message);
    CHECK(message.find("calendar expression '" + std::string(c.text) + "'") == 0);
    CHECK(message.find(c.message) != std::string::npos);
  }
}

TEST_CASE("parse_calendar accepts what systemd accepts at the edges", "[calendar]") {
  ScopedTz tz("UTC");
  for (const char* text : {"*-*-31", "*-02-30", "2199-12-31 23:59:59", "1970-01-01", "*:*:59.999999", "*-*~28",
                           "mon..FRI 10:00", "Sun,Sat", "Mon, 10:00", "0/1:0/1:0/1", "*-*-* 00:00:00"}) {
    INFO(text);
    CHECK(parse_calendar(text).ok());
  }
  for (const char* text : {" daily", "daily ", "UTC", " UTC", "10:00 Europe/Nowhere", "Mon,,Tue", "*-*~3..1",
                           "*-*-1,*", "1,2,3", "*:*:5..5.5", "Mon 10"}) {
    INFO(text);
    CHECK_FALSE(parse_calendar(text).ok());
  }
}

TEST_CASE("next_elapse follows systemd across zones and DST changes", "[calendar]") {
  if (!have_zoneinfo()) {
    WARN("no time zone database in /usr/share/zoneinfo: skipped");
    return;
  }
  const struct {
    const char* tz;
    const char* expr;
    const char* base;
    std::vector<std::string> want;
  } cases[] = {
      // Paris springs forward on 2026-03-29 at 02:00: 02:30 does not exist and
      // is skipped, not moved.
      {"Europe/Paris", "Sun 02:30", "2026-03-28 12:00",
       {"Sun 2026-04-05 02:30:00 CEST", "Sun 2026-04-12 02:30:00 CEST", "Sun 2026-04-19 02:30:00 CEST"}},
      {"Europe/Paris", "02:30", "2026-03-28 12:00",
       {"Mon 2026-03-30 02:30:00 CEST", "Tue 2026-03-31 02:30:00 CEST", "Wed 2026-04-01 02:30:00 CEST"}},
      {"Europe/Paris", "*:0/20", "2026-03-29 01:00",
       {"Sun 2026-03-29 01:20:00 CET", "Sun 2026-03-29 01:40:00 CET", "Sun 2026-03-29 03:00:00 CEST"}},
      // It falls back on 2026-10-25 at 03:00: the repeated hour elapses once,
      // in summer time, and its second pass is skipped.
      {"Europe/Paris", "*:0/20", "2026-10-25 01:00",
       {"Sun 2026-10-25 01:20:00 CEST", "Sun 2026-10-25 01:40:00 CEST", "Sun 2026-10-25 02:00:00 CEST",
        "Sun 2026-10-25 02:20:00 CEST", "Sun 2026-10-25 02:40:00 CEST", "Sun 2026-10-25 03:00:00 CET"}},
      {"Europe/Paris", "02:30", "2026-10-24 12:00", {"Sun 2026-10-25 02:30:00 CEST", "Mon 2026-10-26 02:30:00 CET"}},
      {"Europe/Paris", "hourly", "2026-10-25 01:00",
       {"Sun 2026-10-25 02:00:00 CEST", "Sun 2026-10-25 03:00:00 CET", "Sun 2026-10-25 04:00:00 CET"}},
      {"Europe/Paris", "Mon..Fri 22:30", "2026-11-25 16:50",
       {"Wed 2026-11-25 22:30:00 CET", "Thu 2026-11-26 22:30:00 CET", "Fri 2026-11-27 22:30:00 CET",
        "Mon 2026-11-30 22:30:00 CET"}},
      {"Europe/Paris", "daily", "2026-03-28 12:00", {"Sun 2026-03-29 00:00:00 CET", "Mon 2026-03-30 00:00:00 CEST"}},
      // The local abbreviations pin the offset: 10:00 CET is 11:00 in summer,
      // which systemd never matches.
      {"Europe/Paris", "10:00 CET", "2026-07-28 12:00", {"never"}},
      {"Europe/Paris", "10:00 CEST", "2026-07-28 12:00", {"Wed 2026-07-29 10:00:00 CEST"}},
      {"America/New_York", "02:30", "2026-03-07 12:00", {"Mon 2026-03-09 02:30:00 EDT", "Tue 2026-03-10 02:30:00 EDT"}},
      // The base time 01:30 is ambiguous; like glibc at process start, it is
      // read as daylight time in New York.
      {"America/New_York", "*:0/20", "2026-11-01 01:30",
       {"Sun 2026-11-01 01:40:00 EDT", "Sun 2026-11-01 02:00:00 EST", "Sun 2026-11-01 02:20:00 EST"}},
      {"America/New_York", "01:30", "2026-10-31 12:00", {"Sun 2026-11-01 01:30:00 EDT", "Mon 2026-11-02 01:30:00 EST"}},
      {"America/New_York", "01,02:0:59 EDT", "2027-11-07 01:51", {"Sun 2027-11-07 02:00:59 EST"}},
      {"UTC", "*-*-1/2 03:00", "2026-01-30 12:00",
       {"Sat 2026-01-31 03:00:00 UTC", "Sun 2026-02-01 03:00:00 UTC", "Tue 2026-02-03 03:00:00 UTC"}},
      {"UTC", "*-02~1 07:00", "2027-01-01", {"Sun 2027-02-28 07:00:00 UTC", "Tue 2028-02-29 07:00:00 UTC"}},
      {"UTC", "*-*~1..3 18:00", "2026-02-25",
       {"Thu 2026-02-26 18:00:00 UTC", "Fri 2026-02-27 18:00:00 UTC", "Sat 2026-02-28 18:00:00 UTC",
        "Sun 2026-03-29 18:00:00 UTC"}},
      {"UTC", "*-*~5/1", "2026-02-25",
       {"Thu 2026-02-26 00:00:00 UTC", "Fri 2026-02-27 00:00:00 UTC", "Sat 2026-02-28 00:00:00 UTC",
        "Fri 2026-03-27 00:00:00 UTC"}},
      {"UTC", "*-02-29 06:00", "2026-01-01", {"Tue 2028-02-29 06:00:00 UTC", "Sun 2032-02-29 06:00:00 UTC"}},
      {"UTC", "quarterly", "2026-11-25",
       {"Fri 2027-01-01 00:00:00 UTC", "Thu 2027-04-01 00:00:00 UTC", "Thu 2027-07-01 00:00:00 UTC"}},
      {"UTC", "semiannually", "2026-11-25", {"Fri 2027-01-01 00:00:00 UTC", "Thu 2027-07-01 00:00:00 UTC"}},
      {"UTC", "weekly", "2026-11-25", {"Mon 2026-11-30 00:00:00 UTC", "Mon 2026-12-07 00:00:00 UTC"}},
      {"UTC", "monthly", "2026-12-31 23:59:59", {"Fri 2027-01-01 00:00:00 UTC", "Mon 2027-02-01 00:00:00 UTC"}},
      {"UTC", "yearly", "2026-12-31 23:59:59", {"Fri 2027-01-01 00:00:00 UTC", "Sat 2028-01-01 00:00:00 UTC"}},
      {"UTC", "minutely", "2026-12-31 23:59:30", {"Fri 2027-01-01 00:00:00 UTC", "Fri 2027-01-01 00:01:00 UTC"}},
      {"UTC", "Sat,Sun 10:00", "2026-11-25",
       {"Sat 2026-11-28 10:00:00 UTC", "Sun 2026-11-29 10:00:00 UTC", "Sat 2026-12-05 10:00:00 UTC"}},
      {"UTC", "Mon,Wed..Fri 08:15", "2026-11-25 09:00",
       {"Thu 2026-11-26 08:15:00 UTC", "Fri 2026-11-27 08:15:00 UTC", "Mon 2026-11-30 08:15:00 UTC",
        "Wed 2026-12-02 08:15:00 UTC"}},
      {"UTC", "*:*:0/7.5", "2026-11-25 10:00",
       {"Wed 2026-11-25 10:00:07 UTC", "Wed 2026-11-25 10:00:15 UTC", "Wed 2026-11-25 10:00:22 UTC"}},
      // The expression's own zone wins over the local one.
      {"UTC", "Mon 10:00 Europe/Paris", "2026-03-28 12:00", {"Mon 2026-03-30 08:00:00 UTC", "Mon 2026-04-06 08:00:00 UTC"}},
      {"UTC", "10:00 America/New_York", "2026-03-28 12:00", {"Sat 2026-03-28 14:00:00 UTC", "Sun 2026-03-29 14:00:00 UTC"}},
      {"UTC", "Sun *-03-25..31 02:00", "2026-01-01", {"Sun 2026-03-29 02:00:00 UTC", "Sun 2027-03-28 02:00:00 UTC"}},
      {"UTC", "@1800000000", "2026-01-01", {"Fri 2027-01-15 08:00:00 UTC"}},
      {"UTC", "*-02-30", "2026-01-01", {"never"}},
      {"UTC", "2020-01-01", "2026-01-01", {"never"}},
  };
  for (const auto& c : cases) {
    ScopedTz tz(c.tz);
    INFO("TZ=" << c.tz << " expr '" << c.expr << "' base " << c.base);
    CHECK(elapses(c.expr, c.base, c.want.size()) == c.want);
  }
}

TEST_CASE("next_elapse takes the zone as a parameter too", "[calendar]") {
  if (!have_zoneinfo()) return;
  ScopedTz tz("UTC");
  const CalendarSpec spec = parsed("Sun 02:30");
  const int64_t after = base_time("2026-03-28 11:00");  // UTC here: 12:00 in Paris
  const auto paris = next_elapse(spec, after, "Europe/Paris");
  REQUIRE(paris);
  CHECK(format_elapse(*paris, "Europe/Paris") == "Sun 2026-04-05 02:30:00 CEST");
  CHECK(format_elapse(*paris, "UTC") == "Sun 2026-04-05 00:30:00 UTC");
  const auto utc = next_elapse(spec, after, "UTC");
  REQUIRE(utc);
  CHECK(format_elapse(*utc) == "Sun 2026-03-29 02:30:00 UTC");
  // The same as with TZ set.
  ScopedTz paris_tz("Europe/Paris");
  CHECK(next_elapse(spec, after) == paris);
}

TEST_CASE("next_elapse is strictly after its argument, to the microsecond", "[calendar]") {
  ScopedTz tz("UTC");
  const CalendarSpec spec = parsed("*:*:0/0.5");
  const int64_t t = base_time("2026-11-25 10:00:00");
  CHECK(next_elapse(spec, t - 1) == t);
  CHECK(next_elapse(spec, t) == t + 500'000);
  CHECK(next_elapse(spec, t + 499'999) == t + 500'000);
}

TEST_CASE("find_next_elapse tells never from a search systemd gives up", "[calendar]") {
  if (!have_zoneinfo()) return;
  ScopedTz tz("Europe/Paris");
  const int64_t after = base_time("2026-03-28 12:00");
  auto never = find_next_elapse(parsed("2020-01-01"), after);
  REQUIRE_FALSE(never.ok());
  CHECK(never.status().code() == ErrorCode::kNotFound);
  // After November 1st, month 16 normalises to April (summer time), whose
  // January 1st reads back as December 31st: systemd reports an infinite loop.
  const CalendarSpec spec = parsed("*-1/5-1 00:00");
  auto june = find_next_elapse(spec, after);
  REQUIRE(june.ok());
  CHECK(format_elapse(june.value()) == "Mon 2026-06-01 00:00:00 CEST");
  auto november = find_next_elapse(spec, june.value());
  REQUIRE(november.ok());
  CHECK(format_elapse(november.value()) == "Sun 2026-11-01 00:00:00 CET");
  auto loop = find_next_elapse(spec, november.value());
  REQUIRE_FALSE(loop.ok());
  CHECK(loop.status().code() == ErrorCode::kInvalidArgument);
  CHECK(loop.status().message().find("does not converge") != std::string::npos);
  CHECK_FALSE(next_elapse(spec, november.value()));
}

TEST_CASE("format_elapse prints as systemd", "[calendar]") {
  if (!have_zoneinfo()) return;
  const int64_t t = 1'795'642'200'000'000;  // 2026-11-25 21:30:00 UTC
  CHECK(format_elapse(t, "UTC") == "Wed 2026-11-25 21:30:00 UTC");
  CHECK(format_elapse(t, "Europe/Paris") == "Wed 2026-11-25 22:30:00 CET");
  CHECK(format_elapse(t + 999'999, "America/New_York") == "Wed 2026-11-25 16:30:00 EST");
  ScopedTz tz("Europe/Paris");
  CHECK(format_elapse(t) == "Wed 2026-11-25 22:30:00 CET");
  CHECK_FALSE(sqlbak::zone_is_utc());
  CHECK(sqlbak::zone_is_utc("UTC"));
  CHECK(sqlbak::zone_is_utc("Etc/UTC"));
  CHECK_FALSE(sqlbak::zone_is_utc("Europe/London"));
}

TEST_CASE("parse_calendar_base_time reads systemd's timestamps", "[calendar]") {
  if (!have_zoneinfo()) return;
  ScopedTz tz("Europe/Paris");
  const int64_t now = 1'795'642'200'000'000;  // Wed 2026-11-25 22:30:00 CET
  CHECK(base_time("2026-03-28 12:00") == 1'774'695'600'000'000);
  CHECK(parse_calendar_base_time("2026-03-28 11:00 UTC", now).value() == 1'774'695'600'000'000);
  CHECK(parse_calendar_base_time("Sat 2026-03-28 12:00:00", now).value() == 1'774'695'600'000'000);
  CHECK(parse_calendar_base_time("2026-03-28 12:00:00.25", now).value() == 1'774'695'600'250'000);
  CHECK(parse_calendar_base_time("@1774695600", now).value() == 1'774'695'600'000'000);
  CHECK(parse_calendar_base_time("now", now).value() == now);
  CHECK(format_elapse(parse_calendar_base_time("today", now).value()) == "Wed 2026-11-25 00:00:00 CET");
  CHECK(format_elapse(parse_calendar_base_time("tomorrow", now).value()) == "Thu 2026-11-26 00:00:00 CET");
  CHECK(format_elapse(parse_calendar_base_time("08:15", now).value()) == "Wed 2026-11-25 08:15:00 CET");
  // In the gap: 02:30 becomes 03:30 summer time. In the repeated hour:
  // standard time, as glibc's mktime() reads it at process start in Paris.
  CHECK(format_elapse(base_time("2026-03-29 02:30")) == "Sun 2026-03-29 03:30:00 CEST");
  CHECK(format_elapse(base_time("2026-10-25 02:30")) == "Sun 2026-10-25 02:30:00 CET");
  for (const char* bad : {"", "2026-13-01", "yesterday-ish", "Mon 2026-03-28 12:00", "12", "2026-03-28T12:00"}) {
    INFO(bad);
    CHECK_FALSE(parse_calendar_base_time(bad, now).ok());
  }
}

TEST_CASE("next_elapse can run on many threads at once", "[calendar]") {
  if (!have_zoneinfo()) return;
  const CalendarSpec spec = parsed("*:0/7");
  const int64_t start = 1'774'695'600'000'000;
  const char* zones[] = {"Europe/Paris", "America/New_York", "UTC", "Australia/Sydney"};
  std::vector<std::vector<int64_t>> sequential(4), parallel(4);
  auto run = [&](int z, std::vector<int64_t>* out) {
    int64_t after = start;
    for (int i = 0; i < 2000; ++i) {
      const auto next = next_elapse(spec, after, zones[z]);
      if (!next) break;
      out->push_back(*next);
      after = *next;
    }
  };
  for (int z = 0; z < 4; ++z) run(z, &sequential[z]);
  std::vector<std::thread> threads;
  for (int z = 0; z < 4; ++z) threads.emplace_back(run, z, &parallel[z]);
  for (auto& t : threads) t.join();
  CHECK(parallel == sequential);
  CHECK(sequential[0].size() == 2000);
}

// Found by fuzz_timestamp: "@SECONDS" of 13 or more digits overflowed int64_t
// when multiplied into microseconds (signed overflow, undefined behaviour).
TEST_CASE("parse_calendar_base_time refuses @SECONDS beyond 64 bits of microseconds", "[calendar]") {
  const int64_t now = 1'795'642'200'000'000;
  auto huge = parse_calendar_base_time("@179562549562548", now);
  REQUIRE_FALSE(huge.ok());
  CHECK(huge.status().code() == ErrorCode::kInvalidArgument);
  CHECK(huge.status().message() == "timestamp '@179562549562548': out of range");
  CHECK_FALSE(parse_calendar_base_time("@999999999999999", now).ok());
  CHECK_FALSE(parse_calendar_base_time("@9223372036855", now).ok());
  CHECK_FALSE(parse_calendar_base_time("@9223372036854.775808", now).ok());
  CHECK(parse_calendar_base_time("@9223372036854.775807", now).value() == INT64_MAX);
  CHECK(parse_calendar_base_time("@999999999999", now).value() == 999'999'999'999'000'000);
}
