// Fuzzes the calendar-expression parser (lib/calendar.h) and, for what it
// accepts, the search for the next elapse.
//
// The local zone is Europe/Berlin (set before the first call), so that its
// abbreviations (CET, CEST) are recognised and the searches cross
// daylight-saving changes; the bases lie just before the spring-forward and
// fall-back nights of 2026.
//
// Checked for each expression that parses:
//  - the normalized form is a fixed point: it parses, to a spec with the same
//    normalized form;
//  - from each base, in the local zone and in UTC, a few successive next
//    elapses are strictly increasing (each strictly after the one before),
//    and each formats;
//  - in UTC (no daylight-saving quirks to reproduce), the next elapse after
//    one microsecond before an elapse is that elapse.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/calendar.h"

namespace {

constexpr int64_t kUs = 1'000'000;
// 2026-03-28 23:30 UTC and 2026-10-24 23:30 UTC: the nights before Europe's
// changes to and from summer time.
constexpr int64_t kBases[] = {1774740600 * kUs, 1792884600 * kUs};
constexpr int kIterations = 4;

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_calendar: invariant broken: %s: %s\n", what, detail.c_str());
  std::abort();
}

bool is_plain_utc(const sqlbak::CalendarSpec& spec, std::string_view tz) {
  if (spec.dst >= 0) return false;
  if (spec.utc) return true;
  return spec.timezone.empty() ? tz == "UTC" : spec.timezone == "UTC";
}

void check_elapses(const sqlbak::CalendarSpec& spec, const std::string& norm, std::string_view tz) {
  for (int64_t base : kBases) {
    int64_t after = base;
    for (int i = 0; i < kIterations; ++i) {
      auto next = sqlbak::find_next_elapse(spec, after, tz);
      if (!next.ok()) {
        if (next.status().message().empty()) fail("empty error message", norm);
        break;
      }
      if (*next <= after)
        fail("next elapse is not after its base",
             norm + " in '" + std::string(tz) + "': after " + std::to_string(after) + " came " + std::to_string(*next));
      (void)sqlbak::format_elapse(*next, tz);
      if (is_plain_utc(spec, tz)) {
        auto same = sqlbak::find_next_elapse(spec, *next - 1, tz);
        if (!same.ok() || *same != *next)
          fail("next elapse before an elapse is not that elapse", norm + " at " + std::to_string(*next));
      }
      after = *next;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::setenv("TZ", "Europe/Berlin", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = sqlbak::parse_calendar(text);
  if (!spec.ok()) {
    if (spec.status().message().empty()) fail("empty error message", std::string(text));
    return 0;
  }
  const std::string norm = sqlbak::normalized(*spec);
  auto again = sqlbak::parse_calendar(norm);
  if (!again.ok()) fail("normalized form does not parse", std::string(text) + " -> " + norm + ": " + again.status().message());
  const std::string norm_again = sqlbak::normalized(*again);
  if (norm_again != norm) fail("normalized form is not a fixed point", std::string(text) + " -> " + norm + " -> " + norm_again);

  check_elapses(*spec, norm, "");
  check_elapses(*spec, norm, "UTC");
  return 0;
}
