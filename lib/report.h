// The history report behind `sqlbakctl report [--days N] [DB]`, the daemon's
// "report" request and /api/report: totals, per-database figures, a per-day
// trend, the most frequent errors and recommendations, computed from the job
// rows of the catalog (lib/catalog.h).
//
// compute_report() is a pure function of (jobs, options): the time ("now") and
// the local calendar are parameters, so tests give it hand-made histories, a
// fixed clock and a fake time zone. build_report() is the thin I/O wrapper that
// reads the window from a Catalog. ctl/report_render.h prints the result for
// people.
//
// Thread-safety: no shared state. The default local-date function uses
// localtime_r, which reads the process's time zone (TZ): do not change TZ
// while a report is being computed.
//
// The JSON document (counts and byte sums are integers; means, rates and
// ratios are unrounded floating-point numbers, "null" where there is nothing
// to average; instants are UTC, "YYYY-MM-DDTHH:MM:SSZ", to the second):
//
//   days        N, the window's length in days (1..3660).
//   since       start of the window, UTC: now - N x 24 h. Jobs that started at
//               or after it and not after "generated" are counted.
//   generated   end of the window: the time the report was computed, UTC.
//   from, to    the local calendar dates ("YYYY-MM-DD") of "since" and
//               "generated": the first and the last entry of per_day.
//   database    the database filter; "" for all databases.
//   totals      figures over every job of the window:
//     jobs                 jobs of any kind and result.
//     kinds                {"backup","verify","restore","rotate","prune"}: jobs
//                          of each kind (other kinds are counted in "jobs" only).
//     backups              backup jobs, whatever their result.
//     successes            backup jobs whose result is "success".
//     failures             backup jobs whose result is "failure".
//     cancelled            backup jobs whose result is "cancelled".
//     success_rate         successes / backups, 0..1; null when backups = 0.
//     failure_rate         failures / backups, 0..1; null when backups = 0.
//     mean_duration_ms     mean duration of the successful backups; null when none.
//     max_duration_ms      longest successful backup; null when none.
//     mean_database_bytes  mean size of the database image of the successful
//                          backups; null when none.
//     mean_ratio           mean compression ratio of the successful backups,
//                          where one backup's ratio is changed_pages x page_size
//                          / stored_bytes (what the pages it stored take in the
//                          target); backups with stored_bytes, page_size or
//                          changed_pages 0 have no ratio and are left out; null
//                          when no backup has one.
//     stored_bytes         bytes newly written to the targets by the successful
//                          backups.
//     stored_bytes_per_day stored_bytes / days.
//     uploaded_bytes       bytes sent to the targets by every job (failed jobs
//                          too: the traffic happened): request bodies.
//     downloaded_bytes     bytes read from the targets by every job: response
//                          bodies.
//     requests             {"put","get","list","delete"}: requests to the
//                          targets by every job, retries included (S3 bills
//                          each; lib/object_store.h says what counts as which,
//                          a local target counts its file operations alike).
//   databases   one object per database name seen in the window, sorted by
//               name (jobs without a database, such as a repository-wide prune,
//               count in the totals only): "name", every field of totals
//               restricted to that database, and
//     mean_changed_fraction  mean of changed_pages / page_count over the
//                            successful backups with page_count > 0; null when
//                            none.
//     backups_per_day        successes / days.
//     last_success           start of the newest successful backup, UTC; null
//                            when none in the window.
//     verifications          {"runs","failures"} of that database's verify jobs.
//   targets     what the jobs of the window asked of each target: one object
//               per target name seen, sorted by name (jobs without a target,
//               such as a backup that could not start, count in the totals
//               only); with a database filter, only that database's jobs
//               (so no prune, which is repository-wide):
//     name              the target name.
//     jobs              jobs of any kind and result on that target.
//     requests          {"put","get","list","delete"}, as in totals.
//     uploaded_bytes    as in totals.
//     downloaded_bytes  as in totals.
//   per_day     one object per local calendar date from "from" to "to", oldest
//               first, days without jobs included (zeros; the mean is null).
//               A window of N days touches N + 1 dates, the first and the last
//               partly (as `DATE(ts) BETWEEN today - N AND today` would).
//     date              "YYYY-MM-DD", local time.
//     backups           backup jobs that started that date.
//     failures          of those, the ones whose result is "failure".
//     mean_duration_ms  mean duration of that date's successful backups; null
//                       when none.
//     stored_bytes      bytes stored by that date's successful backups.
//     database_bytes    the sum over databases of the image size of each one's
//                       last successful backup that date: the volume of data
//                       protected; 0 when none.
//   errors      the most frequent error texts of failed jobs (any kind; a
//               cancelled job is not an error), most frequent first (ties: the
//               most recent first, then by text), at most 5:
//     error      the error text.
//     count      how many failed jobs of the window had exactly that text.
//     last       start of the newest such job, UTC.
//     databases  the database names concerned, sorted.
//   verifications  {"runs","failures"}: verify jobs of the window, and those
//                  whose result is "failure".
//   recommendations  what the figures suggest, most severe first, then by
//                    database name; each names the database and its figure:
//     database   the database name.
//     kind       one of the kinds below.
//     severity   "critical" | "warning" | "info".
//     value      the figure behind it (a number; its unit depends on kind).
//     threshold  the limit the figure crossed (same unit).
//     message    one sentence for people, with the figure and a suggestion.
//   The kinds, checked per database over its jobs of the window:
//     no_successful_backup  critical: backup jobs ran but none succeeded
//                           (value: backups, threshold: 0 successes). Replaces
//                           high_failure_rate for that database.
//     high_failure_rate     warning: failure_rate > 0.10 (the Python original's
//                           10 %); value: failure_rate.
//     verification_failed   critical: at least one verify job failed (value:
//                           failed verifications, threshold 0).
//     long_duration         warning: mean_duration_ms > 3,600,000 (one hour;
//                           the original's 5 minutes flags ordinary large
//                           databases, which sqlbak backs up online).
//     low_compression       info: mean_ratio < 1.5 (the original warned below
//                           2; below 1.5x, compressing costs more CPU time than
//                           the space it saves is worth, hence the suggestion
//                           of a cheaper level or none).
//     full_every_time       info: mean_changed_fraction >= 0.9 over at least 4
//                           successful backups: every backup stores nearly every
//                           page, so page-level increments save nothing.
//     cheap_increments      info: mean_changed_fraction < 0.01 over at least 3
//                           successful backups, at most 1.5 successful backups
//                           a day and a mean duration under 60 s: backing up
//                           more often would cut the data at risk for little
//                           cost (value: mean_changed_fraction, threshold 0.01).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/catalog.h"
#include "lib/status.h"

namespace sqlbak {

// The limits of `report --days N`.
inline constexpr int kReportMinDays = 1;
inline constexpr int kReportMaxDays = 3660;

// Unix milliseconds -> the local calendar date "YYYY-MM-DD".
using LocalDateFunction = std::function<std::string(int64_t unix_ms)>;

// The date of UNIX_MS in the process's time zone (localtime_r).
std::string local_date(int64_t unix_ms);

struct ReportOptions {
  int days = 7;          // REQUIRES: kReportMinDays <= days <= kReportMaxDays
  int64_t now_ms = 0;    // the end of the window (Unix milliseconds)
  std::string database;  // only this database; empty for all
  LocalDateFunction local_date = sqlbak::local_date;
};

// The report over JOBS (catalog rows, in any order) described above. Jobs
// outside [now_ms - days x 24 h, now_ms] and, with a database filter, of
// other databases are ignored.
nlohmann::json compute_report(const std::vector<JobRecord>& jobs, const ReportOptions& options);

// Reads the window from CATALOG and computes the report in local time.
// kUsage when DAYS is outside kReportMinDays..kReportMaxDays; catalog errors
// as they come.
Result<nlohmann::json> build_report(Catalog& catalog, int days, const std::string& database, int64_t now_ms);

}  // namespace sqlbak
