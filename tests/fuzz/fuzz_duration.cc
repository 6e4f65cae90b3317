// Fuzzes the duration parser (lib/duration.h): parse_duration() and
// parse_duration_ms() on any text.
//
// Checked on every input:
//  - both parsers agree on whether the text is a duration, and on its value
//    (the seconds are the milliseconds truncated);
//  - a duration is never negative;
//  - format_duration() of an accepted span parses back to the same span.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/duration.h"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_duration: invariant broken: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string shown(text);
  auto seconds = sqlbak::parse_duration(text);
  auto millis = sqlbak::parse_duration_ms(text);
  if (seconds.ok() != millis.ok()) fail("parse_duration and parse_duration_ms disagree", shown);
  if (!seconds.ok()) {
    if (seconds.status().message().empty() || millis.status().message().empty()) fail("empty error message", shown);
    return 0;
  }
  if (seconds->count() < 0 || millis->count() < 0) fail("negative duration", shown);
  if (seconds->count() != millis->count() / 1000)
    fail("seconds are not the truncated milliseconds",
         shown + ": " + std::to_string(seconds->count()) + "s vs " + std::to_string(millis->count()) + "ms");

  const std::string formatted = sqlbak::format_duration(*seconds);
  auto back = sqlbak::parse_duration(formatted);
  if (!back.ok()) fail("formatted duration does not parse", shown + " -> " + formatted + ": " + back.status().message());
  if (*back != *seconds)
    fail("duration changes through format/parse",
         shown + " -> " + formatted + " -> " + std::to_string(back->count()) + "s");
  return 0;
}
