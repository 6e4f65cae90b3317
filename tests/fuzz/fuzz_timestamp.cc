// Fuzzes the two timestamp parsers users type into: parse_timestamp()
// (lib/timefmt.h: `restore --at`, `list --before`) and
// parse_calendar_base_time() (lib/calendar.h: `sqlbakctl calendar
// --base-time`).
//
// The local zone is Europe/Berlin (set before the first call), so that local
// times cross daylight-saving changes and CET/CEST are recognised.
//
// Checked on every input:
//  - parse_timestamp(): a time other than "now" ends in 999 ms (the whole
//    second counts); a result between 1970 and 9999 formats
//    (format_iso_utc) to text that parses back to the same time;
//  - parse_calendar_base_time(): a result between 1970 and 9999 formats as
//    systemd prints it (format_elapse: weekday, date, time, CET/CEST) to text
//    that parses back to the same second.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/calendar.h"
#include "lib/timefmt.h"

namespace {

constexpr int64_t kNowMs = 1795625412000;  // 2026-11-25 16:50:12 UTC
constexpr int64_t kNowUs = kNowMs * 1000;
constexpr int64_t kMaxMs = 253402300799999;  // 9999-12-31 23:59:59.999 UTC

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_timestamp: invariant broken: %s: %s\n", what, detail.c_str());
  std::abort();
}

void check_timestamp(std::string_view text) {
  auto t = sqlbak::parse_timestamp(text, kNowMs);
  if (!t.ok()) {
    if (t.status().message().empty()) fail("empty error message", std::string(text));
    return;
  }
  if (text == "now") {
    if (*t != kNowMs) fail("now is not now", std::to_string(*t));
    return;
  }
  if ((*t % 1000 + 1000) % 1000 != 999) fail("time does not end in 999 ms", std::string(text) + " -> " + std::to_string(*t));
  if (*t < 0 || *t > kMaxMs) return;
  const std::string formatted = sqlbak::format_iso_utc(*t);
  auto back = sqlbak::parse_timestamp(formatted, kNowMs);
  if (!back.ok() || *back != *t)
    fail("time changes through format_iso_utc/parse_timestamp", std::string(text) + " -> " + formatted);
}

void check_base_time(std::string_view text) {
  auto t = sqlbak::parse_calendar_base_time(text, kNowUs);
  if (!t.ok()) {
    if (t.status().message().empty()) fail("empty error message", std::string(text));
    return;
  }
  if (*t < 0 || *t > kMaxMs * 1000) return;
  const std::string formatted = sqlbak::format_elapse(*t);
  auto back = sqlbak::parse_calendar_base_time(formatted, kNowUs);
  if (!back.ok() || *back != *t / 1'000'000 * 1'000'000)
    fail("time changes through format_elapse/parse_calendar_base_time",
         std::string(text) + " -> " + std::to_string(*t) + " -> " + formatted + " -> " +
             (back.ok() ? std::to_string(*back) : back.status().message()));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::setenv("TZ", "Europe/Berlin", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_timestamp(text);
  check_base_time(text);
  return 0;
}
