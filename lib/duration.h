// Durations as written in the configuration ("48h", "1h30m", "90s", "2d", "0s",
// "1w"), in the manner of systemd.time(7) time spans. Pure functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "lib/status.h"

namespace sqlbak {

// Parses a time span: one or more NUMBER UNIT groups, optionally separated by
// spaces. Units: us, ms, s/sec/second(s), m/min/minute(s), h/hr/hour(s),
// d/day(s), w/week(s), M/month(s) (30.44 d), y/year(s) (365.25 d). A bare
// number means seconds. Negative values and an empty string are errors.
Result<std::chrono::seconds> parse_duration(std::string_view text);

// Formats seconds the way systemd prints spans: "1d 2h 3min 4s", "0s".
std::string format_duration(std::chrono::seconds span);

// The same grammar as parse_duration at millisecond precision, for timeouts
// that are commonly below a second (busy_timeout: "250ms"). parse_duration
// truncates such spans to whole seconds; finer parts are truncated here.
Result<std::chrono::milliseconds> parse_duration_ms(std::string_view text);

}  // namespace sqlbak
