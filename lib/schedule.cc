#include "lib/schedule.h"

#include <algorithm>

namespace sqlbak {

ScheduleDecision decide_schedule(const CalendarSpec& spec, std::optional<int64_t> due_us, int64_t now_us) {
  if (!due_us) return {false, std::nullopt};
  if (*due_us > now_us) return {false, due_us};
  return {true, next_elapse(spec, std::max(*due_us, now_us))};
}

}  // namespace sqlbak
