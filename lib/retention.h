// Retention: which backups of one database on one target a RetentionPolicy
// keeps, with the semantics of `restic forget` (restic 0.14, the version
// Debian 12 ships; tests/integration/test_retention_vs_restic.py compares the
// two on hundreds of histories).
//
// The decision is a pure function of (policy, backups, now, local time zone):
// no I/O and no clock; the caller passes the current time and, if it wants a
// zone other than the process's, the local-time breakdown. Deleting what is not
// kept is the caller's business.
//
// The rules, applied to the backups sorted newest first:
//   keep_last N     the N newest backups.
//   keep_hourly N   (and daily, weekly, monthly, yearly) walking from newest
//                   to oldest, a backup is kept when its bucket (its local
//                   hour, day, ISO week, month or year) differs from the
//                   bucket of the last backup this rule kept, while the rule
//                   has kept fewer than N: so the newest backup of each of the
//                   N newest buckets that hold a backup. Buckets are local
//                   wall-clock fields, so the hour a fall-back change repeats
//                   is one hourly bucket, and a DST day is one daily bucket.
//   keep_within D   every backup newer (strictly) than REF - D, where REF is
//                   the newest backup created before NOW; backups dated in the
//                   future (clock trouble) never serve as REF, and when every
//                   backup is in the future all of them are within.
// A backup is kept when any rule keeps it; its reasons list every rule that
// did, in this order: "within", "last", "hourly", "daily", "weekly",
// "monthly", "yearly" (restic's order).
//
// Choices of sqlbak, and where it differs from restic (deliberately):
//   - The newest backup is always kept (reason "newest" when no rule kept
//     it). With counts >= 0 every non-empty policy keeps it anyway (the first
//     backup seen opens a bucket in every rule); the rule is a safety net.
//   - An empty policy (every count 0 and keep_within 0) keeps everything,
//     reason "empty_policy", as restic refuses to remove anything without a
//     policy: a configuration that forgot its retention must not erase
//     backups.
//   - keep_within is an exact duration ("7d" is 168 hours). restic's
//     "d"/"m"/"y" units are calendar units; and restic rebuilds REF from its
//     local wall-clock fields (Go's AddDate), which moves REF by an hour when
//     it lies in the hour a fall-back change repeats: in Europe/Paris a REF in
//     the first pass moves an hour later, in America/New_York one in the
//     second pass an hour earlier. sqlbak measures from REF itself.
//
// Ties: backups with equal creation times are ordered by id, ascending (the
// first in that order counts as the newer). restic orders equal times the way
// it happened to load them, so only the multiset of decisions per time is
// comparable there.
//
// Thread-safety: apply_retention() and retention_policy_is_empty() are
// reentrant; system_local_time() reads the process's time zone ($TZ, via
// localtime_r) and is safe to call from any thread as long as nobody changes
// TZ meanwhile.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/config.h"

namespace sqlbak {

// One backup that retention decides on.
struct RetentionCandidate {
  std::string id;
  int64_t created_unix_ms = 0;
};

// What retention decided for one backup, and why.
struct RetentionDecision {
  std::string id;
  int64_t created_unix_ms = 0;
  bool keep = false;
  std::vector<std::string> reasons;  // empty iff !keep; see the header comment for the words
};

// The local wall-clock fields retention buckets by.
struct LocalTime {
  int year = 1970;
  int month = 1;        // 1..12
  int day = 1;          // 1..31
  int hour = 0;         // 0..23
  int iso_year = 1970;  // ISO 8601 week-numbering year (differs from `year` near Jan 1)
  int iso_week = 1;     // 1..53
};

// Breaks Unix seconds down into local time.
using LocalTimeFn = std::function<LocalTime(int64_t unix_seconds)>;

// The breakdown in the process's time zone (localtime_r).
LocalTime system_local_time(int64_t unix_seconds);

// The ISO 8601 week-numbering year and week of a calendar date.
// REQUIRES: a valid date (month 1..12, day within the month).
void iso_week_of(int year, int month, int day, int& iso_year, int& iso_week);

// True when POLICY has no rule at all: every count 0 and keep_within 0.
bool retention_policy_is_empty(const RetentionPolicy& policy);

// Decides, for every candidate, whether POLICY keeps it. Returns one decision
// per candidate, newest first (ties by id, ascending). NOW_UNIX_MS is the
// current time (only keep_within uses it, see above). LOCAL_TIME breaks
// times down for the hour/day/week/month/year buckets.
// REQUIRES: every count and keep_within >= 0 (load_config rejects negatives;
// a negative count or duration disables its rule, and then the newest backup
// is still kept).
std::vector<RetentionDecision> apply_retention(const RetentionPolicy& policy,
                                               std::vector<RetentionCandidate> candidates,
                                               int64_t now_unix_ms,
                                               const LocalTimeFn& local_time = system_local_time);

}  // namespace sqlbak
