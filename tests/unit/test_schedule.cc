#include <catch2/catch.hpp>

#include "lib/schedule.h"

using namespace sqlbak;

namespace {
constexpr int64_t kHour = 3600LL * 1000000;
// 2026-11-25 00:00:00 UTC
constexpr int64_t kDay0 = 1795564800LL * 1000000;
}  // namespace

TEST_CASE("the scheduler runs once per elapse whatever the clock does", "[schedule]") {
  auto spec = parse_calendar("hourly UTC");
  REQUIRE(spec.ok());
  const int64_t due = kDay0 + 3 * kHour;

  SECTION("not due yet: keep waiting for the same elapse") {
    ScheduleDecision d = decide_schedule(*spec, due, due - 1);
    CHECK_FALSE(d.run);
    CHECK(d.next == due);
  }
  SECTION("due: run, then wait for the following elapse") {
    ScheduleDecision d = decide_schedule(*spec, due, due + 5);
    CHECK(d.run);
    CHECK(d.next == due + kHour);
    // Waking again at the same wall time does not run it twice.
    ScheduleDecision again = decide_schedule(*spec, d.next, due + 5);
    CHECK_FALSE(again.run);
  }
  SECTION("a suspend or forward step over many elapses makes one run") {
    const int64_t now = due + 10 * kHour + 17;
    ScheduleDecision d = decide_schedule(*spec, due, now);
    CHECK(d.run);
    CHECK(d.next == due + 11 * kHour);
  }
  SECTION("a backward step after a run does not repeat the elapse") {
    ScheduleDecision d = decide_schedule(*spec, due, due + 5);
    REQUIRE(d.run);
    // The clock goes back two hours: the pending elapse stays the next one.
    ScheduleDecision back = decide_schedule(*spec, d.next, due - 2 * kHour);
    CHECK_FALSE(back.run);
    CHECK(back.next == due + kHour);
  }
  SECTION("no elapse pending: nothing to do") {
    ScheduleDecision d = decide_schedule(*spec, std::nullopt, due);
    CHECK_FALSE(d.run);
    CHECK_FALSE(d.next.has_value());
  }
}
