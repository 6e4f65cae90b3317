// The scheduler's decision, as a pure function of the schedule, the pending
// elapse and the wall-clock time, so that clock steps and suspends are
// unit-tested without a daemon or a clock.
#pragma once

#include <cstdint>
#include <optional>

#include "lib/calendar.h"

namespace sqlbak {

struct ScheduleDecision {
  bool run = false;             // start a backup now
  std::optional<int64_t> next;  // the elapse to wait for next (Unix µs), none if never
};

// NOW_US is the wall clock when the scheduler wakes; DUE_US the elapse it was
// waiting for. Not due yet (also after the clock stepped back): keep waiting
// for DUE_US. Due: run once, and wait for the first elapse after both DUE_US
// and now — however many elapses a suspend or a forward step skipped, they
// make one run, and an elapse never makes two.
ScheduleDecision decide_schedule(const CalendarSpec& spec, std::optional<int64_t> due_us, int64_t now_us);

}  // namespace sqlbak
