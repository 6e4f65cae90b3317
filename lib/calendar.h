// Calendar expressions ("Mon..Fri 22:30", "*-*-1/2 02:00", "daily UTC") with the
// semantics of systemd.time(7) as systemd 252 implements them: the same grammar,
// the same normalized form and the same next elapses as `systemd-analyze
// calendar`, daylight-saving changes included (a local time that a spring-forward
// change skips does not elapse that day; the hour a fall-back change repeats
// elapses once).
//
// The module is pure apart from reading the time zone database: zone files are
// read from $TZDIR or /usr/share/zoneinfo (TZif, with the POSIX TZ footer for
// times after the last transition) and cached, so no process-wide state (TZ,
// tzset, localtime) is touched and every function may be called from any
// thread. The local zone is what the C library would use: $TZ if set (a zone
// name, a path or a POSIX TZ string; empty means UTC), else /etc/localtime.
//
// Times are Unix microseconds (int64_t) throughout.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/status.h"

namespace sqlbak {

// One element of a comma-separated list in one field of an expression:
// START, START..STOP, START/REPEAT or START..STOP/REPEAT. For the seconds field
// the values are microseconds ("1.5" is 1500000).
struct CalendarComponent {
  int start = 0;
  int stop = -1;   // -1: no range
  int repeat = 0;  // 0: no repetition

  friend bool operator==(const CalendarComponent&, const CalendarComponent&) = default;
};

// A parsed and normalized expression. Build it with parse_calendar(); the fields
// are public so that tests and callers can inspect it.
struct CalendarSpec {
  int weekdays = -1;  // bit 0 Monday .. bit 6 Sunday; -1: any day
  // Sorted, without duplicates. Empty means '*'. `second` is never empty ('*'
  // there is 0/1s).
  std::vector<CalendarComponent> year, month, day, hour, minute, second;
  bool end_of_month = false;  // '~': days count back from the month's last day
  bool utc = false;           // the expression ended in " UTC"
  std::string timezone;       // the expression ended in a zone name ("Europe/Paris")
  // 0 or 1 when the expression ended in the local zone's standard or summer
  // abbreviation ("CET", "CEST"): the time is read with that UTC offset only.
  int dst = -1;
  std::string dst_abbreviation;
};

// Parses TEXT. Errors are kInvalidArgument and name the expression and what is
// wrong in it, e.g. "calendar expression 'Mon..Fry 10:00': unknown weekday 'Fry'".
// Accepts exactly what systemd 252 accepts. A trailing local zone abbreviation
// is recognised against the process's local zone.
Result<CalendarSpec> parse_calendar(std::string_view text);

// The normalized form systemd-analyze prints, e.g. "Mon..Fri *-*-* 22:30:00".
std::string normalized(const CalendarSpec& spec);

// The first time strictly after AFTER_UNIX_US at which SPEC elapses, or nullopt
// if it never does again (systemd searches up to the year 2199). The local
// times of SPEC are read in the spec's own zone if it names one ("... UTC",
// "... Europe/Paris"), else in TZ: empty for the local zone, "UTC", a zone name
// or a POSIX TZ string (an unknown name is UTC, as in the C library).
std::optional<int64_t> next_elapse(const CalendarSpec& spec, int64_t after_unix_us, std::string_view tz = {});

// next_elapse() telling its two failures apart: kNotFound if SPEC never elapses
// again, kInvalidArgument if the search does not converge (as systemd, which
// reports "infinite loop in calendar calculation", e.g. for '*-1/5-1' in a
// zone with summer time).
Result<int64_t> find_next_elapse(const CalendarSpec& spec, int64_t after_unix_us, std::string_view tz = {});

// UNIX_US as systemd prints timestamps, to the second: "Wed 2026-11-25 22:30:00 UTC",
// "Sun 2026-03-29 03:30:00 CEST". TZ as for next_elapse(); "UTC" prints "UTC".
std::string format_elapse(int64_t unix_us, std::string_view tz = {});

// True if TZ (as for next_elapse()) is UTC for the purposes of systemd's output:
// a zero standard offset and no daylight-saving time.
bool zone_is_utc(std::string_view tz = {});

// Parses a timestamp the way systemd's --base-time does, in the local zone:
// "2026-03-28 12:00", "2026-03-28 12:00:30.5", "2026-03-28", "12:00" (today),
// an optional leading weekday ("Sat 2026-03-28 12:00"), a trailing " UTC", a
// local zone abbreviation or a zone name, "now", "today", "yesterday",
// "tomorrow", "@SECONDS". A local time that occurs twice or not at all is
// resolved as glibc's mktime() resolves it at the start of a process. NOW_US is
// the time "now" and the relative forms refer to.
Result<int64_t> parse_calendar_base_time(std::string_view text, int64_t now_us);

}  // namespace sqlbak
