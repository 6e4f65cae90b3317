// Timestamps as users type and read them. Pure functions (local time uses the
// process's time zone, TZ).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/status.h"

namespace sqlbak {

// "2026-11-25T16:50:12Z" (second precision, UTC).
std::string format_iso_utc(int64_t unix_ms);

// Parses "YYYY-MM-DD[(T| )HH:MM[:SS]][Z|±HH:MM]" into Unix milliseconds. Without
// a zone the time is local; a date alone means its end (23:59:59 local), so
// that `--at 2026-11-25` picks the last backup of that day. "now" is accepted
// with NOW_MS.
Result<int64_t> parse_timestamp(std::string_view text, int64_t now_ms);

}  // namespace sqlbak
