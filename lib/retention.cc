#include "lib/retention.h"

#include "lib/civil_date.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <utility>

namespace sqlbak {

namespace {

// ISO weekday, 1 (Monday) .. 7 (Sunday). 1970-01-01 was a Thursday.
int iso_weekday(int64_t days_since_epoch) {
  const int64_t from_monday = ((days_since_epoch + 3) % 7 + 7) % 7;
  return static_cast<int>(from_monday) + 1;
}

enum Rule { kLast, kHourly, kDaily, kWeekly, kMonthly, kYearly, kRuleCount };

constexpr std::array<const char*, kRuleCount> kRuleNames = {"last",   "hourly",  "daily",
                                                            "weekly", "monthly", "yearly"};

// The bucket of a backup for each rule; kLast's bucket is the backup's position,
// so that every backup is a bucket of its own.
int64_t bucket_of(Rule rule, const LocalTime& t, int64_t position) {
  switch (rule) {
    case kLast:
      return position;
    case kHourly:
      return ((int64_t{t.year} * 100 + t.month) * 100 + t.day) * 100 + t.hour;
    case kDaily:
      return (int64_t{t.year} * 100 + t.month) * 100 + t.day;
    case kWeekly:
      return int64_t{t.iso_year} * 100 + t.iso_week;
    case kMonthly:
      return int64_t{t.year} * 100 + t.month;
    case kYearly:
    case kRuleCount:
      break;
  }
  return t.year;
}

}  // namespace

void iso_week_of(int year, int month, int day, int& iso_year, int& iso_week) {
  const int64_t days = days_from_civil(year, month, day);
  // The ISO week of a day is the week of its Thursday, and the ISO year is the
  // calendar year of that Thursday.
  const int64_t thursday = days + 4 - iso_weekday(days);
  int64_t thursday_year = year + 1;
  while (days_from_civil(thursday_year, 1, 1) > thursday) --thursday_year;
  iso_year = static_cast<int>(thursday_year);
  iso_week = static_cast<int>((thursday - days_from_civil(thursday_year, 1, 1)) / 7 + 1);
}

LocalTime system_local_time(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  LocalTime out;
  if (localtime_r(&t, &tm) == nullptr) return out;  // beyond the C library's years; not a backup time
  out.year = tm.tm_year + 1900;
  out.month = tm.tm_mon + 1;
  out.day = tm.tm_mday;
  out.hour = tm.tm_hour;
  iso_week_of(out.year, out.month, out.day, out.iso_year, out.iso_week);
  return out;
}

bool retention_policy_is_empty(const RetentionPolicy& p) {
  return p.keep_last == 0 && p.keep_hourly == 0 && p.keep_daily == 0 && p.keep_weekly == 0 &&
         p.keep_monthly == 0 && p.keep_yearly == 0 && p.keep_within.count() == 0;
}

std::vector<RetentionDecision> apply_retention(const RetentionPolicy& policy,
                                               std::vector<RetentionCandidate> candidates,
                                               int64_t now_unix_ms, const LocalTimeFn& local_time) {
  std::sort(candidates.begin(), candidates.end(),
            [](const RetentionCandidate& a, const RetentionCandidate& b) {
              if (a.created_unix_ms != b.created_unix_ms) return a.created_unix_ms > b.created_unix_ms;
              return a.id < b.id;
            });

  std::vector<RetentionDecision> decisions;
  decisions.reserve(candidates.size());
  for (RetentionCandidate& c : candidates) {
    decisions.push_back(RetentionDecision{std::move(c.id), c.created_unix_ms, false, {}});
  }

  if (retention_policy_is_empty(policy)) {
    for (RetentionDecision& d : decisions) {
      d.keep = true;
      d.reasons = {"empty_policy"};
    }
    return decisions;
  }

  // keep_within counts back from the newest backup that is not in the future;
  // restic's reference starts at the zero time, so that with every backup in
  // the future all of them are within.
  constexpr int64_t kMaxWithinSeconds = INT64_MAX / 1000;
  const int64_t within_ms = std::clamp<int64_t>(policy.keep_within.count(), 0, kMaxWithinSeconds) * 1000;
  std::optional<int64_t> reference_ms;
  for (const RetentionDecision& d : decisions) {
    if (d.created_unix_ms < now_unix_ms) {
      reference_ms = d.created_unix_ms;  // sorted newest first: the first one is the newest
      break;
    }
  }

  std::array<int, kRuleCount> left = {policy.keep_last,   policy.keep_hourly,  policy.keep_daily,
                                      policy.keep_weekly, policy.keep_monthly, policy.keep_yearly};
  std::array<std::optional<int64_t>, kRuleCount> last_bucket;

  for (size_t i = 0; i < decisions.size(); ++i) {
    RetentionDecision& d = decisions[i];
    if (within_ms > 0 && (!reference_ms || *reference_ms - d.created_unix_ms < within_ms)) {
      d.reasons.emplace_back("within");
    }
    const LocalTime t = local_time(floor_div(d.created_unix_ms, 1000));
    for (int r = 0; r < kRuleCount; ++r) {
      if (left[r] <= 0) continue;
      const int64_t bucket = bucket_of(static_cast<Rule>(r), t, static_cast<int64_t>(i));
      if (last_bucket[r] == bucket) continue;
      last_bucket[r] = bucket;
      --left[r];
      d.reasons.emplace_back(kRuleNames[r]);
    }
    d.keep = !d.reasons.empty();
  }

  if (!decisions.empty() && !decisions.front().keep) {
    decisions.front().keep = true;
    decisions.front().reasons = {"newest"};
  }
  return decisions;
}

}  // namespace sqlbak
