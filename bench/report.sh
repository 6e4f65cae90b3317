#!/usr/bin/env bash
# How fast `report` answers on years of history, side by side with the sqlite3 shell.
#
#   bench/report.sh BUILD_DIR [--jobs N] [--years Y] [--reps R] [--keep]
#
# BUILD_DIR is a configured and built sqlbak build directory (this script builds
# nothing; `make -C BUILD_DIR report_bench sqlbakctl` first). Like bench/run.sh it
# works in a fresh `mktemp -d` directory, removed at the end unless --keep, and
# prints its results on stdout, progress on stderr.
#
# 1. tests/tools/report_bench fills a catalog (STATE/catalog.db) with N generated
#    jobs (default 10,000) over Y years (default 3), five databases, ~10 % failures,
#    and times build_report() in process over 365 days and over all the history
#    (3660 days), R times each (default 5), each time on a freshly opened catalog.
# 2. The peer: the sqlite3 shell runs, on the same file, the aggregate SQL a report
#    needs (figures GROUP BY local date and database, GROUP BY database, the five
#    most frequent errors) for the same two windows, R times each; its in-process
#    time is the sum of its `.timer on` "real" figures (1 ms resolution).
# 3. When BUILD_DIR/ctl/sqlbakctl knows `report`, whole commands are timed as
#    well: `sqlbakctl --offline --json -c CFG report --days N` against
#    `sqlite3 catalog.db < the same SQL`, wall clock, process start included.
#
#    Besides the wall clock, the CPU time (user + sys) of each command is taken
#    with GNU time when /usr/bin/time exists: on a loaded machine the wall clock
#    mostly measures the wait for a CPU.
#
# Reported: the median milliseconds of each side, the ratio sqlbak / sqlite3, and
# whether sqlbak meets the goal of issue 4: a report over 10,000 jobs in under
# 0.2 s (checked on the all-history window, in process and, when available, as a
# whole command). The first line gives the load average: compare runs only at
# similar load. The two sides do not do quite the same work: sqlite3 only
# aggregates and prints rows, sqlbak also fills every empty day, ranks errors,
# derives recommendations and prints one JSON document; the ratio shows where
# the time goes, the goal is the absolute time. Both sides use local time (TZ).
#
# Exit status: 0 the run completed, 1 a step failed, 2 usage error or a missing tool.
set -uo pipefail

usage() {
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2
}

BUILD= JOBS=10000 YEARS=3 REPS=5 KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --jobs) JOBS=${2:?--jobs needs a value}; shift 2 ;;
    --years) YEARS=${2:?--years needs a value}; shift 2 ;;
    --reps) REPS=${2:?--reps needs a value}; shift 2 ;;
    --build) BUILD=${2:?--build needs a value}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "report.sh: unknown option '$1'" >&2; usage; exit 2 ;;
    *) if [ -z "$BUILD" ]; then BUILD=$1; shift; else echo "report.sh: unexpected '$1'" >&2; usage; exit 2; fi ;;
  esac
done
BUILD=${BUILD:-${SQLBAK_BUILD:-}}
[ -n "$BUILD" ] || { echo "report.sh: name the build directory" >&2; usage; exit 2; }
for v in "$JOBS" "$YEARS" "$REPS"; do
  case $v in ''|*[!0-9]*|0) echo "report.sh: --jobs, --years and --reps take positive integers" >&2; exit 2 ;; esac
done
BENCH=$BUILD/tests/report_bench
CTL=$BUILD/ctl/sqlbakctl
[ -x "$BENCH" ] || { echo "report.sh: $BENCH not found (make -C $BUILD report_bench)" >&2; exit 2; }
for t in sqlite3 python3; do
  command -v "$t" >/dev/null 2>&1 || { echo "report.sh: $t not found" >&2; exit 2; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/sqlbak-report-bench.XXXXXX") || exit 1
if [ "$KEEP" = 1 ]; then trap 'echo "report.sh: work directory kept: $W" >&2' EXIT; else trap 'rm -rf "$W"' EXIT; fi
log() { echo "report.sh: $*" >&2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "NA"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b <= 0) print "NA"; else printf "%.2f", a / b }'; }
under() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "NA" && a < b) }'; }

# ---------------------------------------------------------------- 1: sqlbak in process

log "filling a catalog with $JOBS jobs over $YEARS years and timing build_report ($REPS reps)..."
"$BENCH" --jobs "$JOBS" --years "$YEARS" --reps "$REPS" --state-dir "$W/state" >"$W/bench.json" 2>"$W/bench.err" \
  || { log "report_bench failed: $(tail -n 3 "$W/bench.err")"; exit 1; }
CATALOG=$W/state/catalog.db
get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$W/bench.json" "$1"; }
NOW=$(get 'd["now_unix_ms"]')
S365=$(get 'round(d["median_ms"]["report_365"], 1)')
SALL=$(get 'round(d["median_ms"]["report_all"], 1)')
SREAD=$(get 'round(d["median_ms"]["read_all"], 1)')
SCOMP=$(get 'round(d["median_ms"]["compute_all"], 1)')
SOPEN=$(get 'round(d["median_ms"]["open"], 2)')
IN365=$(get 'd["jobs_in_window"]["report_365"]')
INALL=$(get 'd["jobs_in_window"]["report_all"]')

# ---------------------------------------------------------------- 2: the sqlite3 shell

# The aggregate SQL of a report over the window [SINCE, NOW] (milliseconds).
report_sql() {
  local since=$1 now=$2
  local figures="count(*),
    sum(kind = 'backup'), sum(kind = 'backup' AND result = 'success'),
    sum(kind = 'backup' AND result = 'failure'), sum(kind = 'backup' AND result = 'cancelled'),
    avg(CASE WHEN kind = 'backup' AND result = 'success' THEN duration_ms END),
    max(CASE WHEN kind = 'backup' AND result = 'success' THEN duration_ms END),
    avg(CASE WHEN kind = 'backup' AND result = 'success' THEN database_bytes END),
    avg(CASE WHEN kind = 'backup' AND result = 'success' AND stored_bytes > 0 AND page_size > 0
             AND changed_pages > 0 THEN changed_pages * page_size * 1.0 / stored_bytes END),
    avg(CASE WHEN kind = 'backup' AND result = 'success' AND page_count > 0
             THEN changed_pages * 1.0 / page_count END),
    sum(CASE WHEN kind = 'backup' AND result = 'success' THEN stored_bytes ELSE 0 END),
    sum(bytes_uploaded), sum(put_requests), sum(get_requests), sum(list_requests), sum(delete_requests),
    sum(kind = 'verify'), sum(kind = 'verify' AND result = 'failure')"
  local window="started_at_ms BETWEEN $since AND $now"
  cat <<EOF
SELECT date(started_at_ms / 1000, 'unixepoch', 'localtime') AS day, "database", $figures
  FROM jobs WHERE $window GROUP BY day, "database" ORDER BY day, "database";
SELECT "database", $figures FROM jobs WHERE $window GROUP BY "database" ORDER BY "database";
SELECT error, count(*) AS n, max(started_at_ms) AS last, group_concat(DISTINCT "database")
  FROM jobs WHERE $window AND result = 'failure' AND error <> ''
  GROUP BY error ORDER BY n DESC, last DESC, error LIMIT 5;
EOF
}

for days in 365 3660; do
  report_sql $((NOW - days * 86400000)) "$NOW" >"$W/report-$days.sql"
  { echo ".timer on"; echo ".output /dev/null"; cat "$W/report-$days.sql"; } >"$W/timed-$days.sql"
done

declare -A P=()
log "timing the sqlite3 shell on the same aggregates ($REPS reps)..."
for rep in $(seq 1 "$REPS"); do
  for days in 365 3660; do
    sqlite3 -batch "$CATALOG" <"$W/timed-$days.sql" >"$W/peer-$days.out" 2>"$W/peer.err" \
      || { log "sqlite3 failed: $(tail -n 3 "$W/peer.err")"; exit 1; }
    ms=$(awk '/^Run Time: real/ {s += $4} END {printf "%.1f", s * 1000}' "$W/peer-$days.out")
    P[$days]="${P[$days]:-} $ms"
  done
done
P365=$(median ${P[365]})
PALL=$(median ${P[3660]})
ROWS=$(sqlite3 -batch "$CATALOG" <"$W/report-3660.sql" | wc -l)

# ---------------------------------------------------------------- 3: whole commands

CMD_NOTE=
if [ -x "$CTL" ]; then
  printf 'state_dir: %s\nsocket: %s\ntargets:\n  local: {type: local, path: %s}\ndatabases: []\n' \
    "$W/state" "$W/control.sock" "$W/repo" >"$W/sqlbak.yaml"
  mkdir -p "$W/repo"
  if "$CTL" --offline --json -c "$W/sqlbak.yaml" report --days 3660 >"$W/ctl.json" 2>"$W/ctl.err"; then
    declare -A C=() Q=() CC=() QC=()
    # CPU time (user + sys, GNU time, 10 ms resolution) beside the wall clock: on
    # a busy machine the wall clock mostly measures the wait for a CPU.
    # cpu OUT ERR COMMAND...: runs COMMAND with its output in OUT and ERR (appended),
    # prints its CPU milliseconds (NA without GNU time).
    cpu() {
      local out=$1 err=$2
      shift 2
      if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%U %S' -o "$W/cpu" "$@" >"$out" 2>>"$err" && awk '{printf "%.0f", ($1 + $2) * 1000}' "$W/cpu"
      else
        "$@" >"$out" 2>>"$err" && echo NA
      fi
    }
    log "timing whole commands: sqlbakctl --offline report vs sqlite3 ($REPS reps)..."
    for rep in $(seq 1 "$REPS"); do
      for days in 365 3660; do
        t0=$(now_ms)
        c=$(cpu "$W/ctl.out" "$W/ctl.err" "$CTL" --offline --json -c "$W/sqlbak.yaml" report --days "$days") \
          || { log "sqlbakctl report failed: $(tail -n 3 "$W/ctl.err")"; exit 1; }
        t1=$(now_ms)
        q=$(cpu "$W/peer.out" "$W/peer.err" sqlite3 -batch "$CATALOG" <"$W/report-$days.sql") \
          || { log "sqlite3 failed: $(tail -n 3 "$W/peer.err")"; exit 1; }
        t2=$(now_ms)
        C[$days]="${C[$days]:-} $((t1 - t0))" CC[$days]="${CC[$days]:-} $c"
        Q[$days]="${Q[$days]:-} $((t2 - t1))" QC[$days]="${QC[$days]:-} $q"
      done
    done
    C365=$(median ${C[365]}) CALL=$(median ${C[3660]}) Q365=$(median ${Q[365]}) QALL=$(median ${Q[3660]})
    CC365=$(median ${CC[365]}) CCALL=$(median ${CC[3660]}) QC365=$(median ${QC[365]}) QCALL=$(median ${QC[3660]})
  else
    CMD_NOTE="sqlbakctl at $CTL does not run 'report' yet: $(head -n 1 "$W/ctl.err")"
  fi
else
  CMD_NOTE="no sqlbakctl at $CTL: whole commands not timed"
fi

# ---------------------------------------------------------------- results

goal_ms=200
met() { if under "$1" "$goal_ms"; then echo yes; else echo NO; fi; }
echo "sqlbak report benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), $(nproc) CPU(s), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "catalog: $JOBS jobs over $YEARS years, $(( $(stat -c %s "$CATALOG") / 1024 )) KiB; $(sqlite3 --version | cut -d' ' -f1); TZ=${TZ:-(system)}"
echo "median of $REPS repetitions, milliseconds"
echo
printf '%-46s %10s %10s %7s %9s  %s\n' "case" "sqlbak ms" "sqlite3 ms" "ratio" "goal" "met?"
printf '%-46s %10s %10s %7s %9s  %s\n' "in process, 365 days ($IN365 jobs)" "$S365" "$P365" "$(ratio "$S365" "$P365")" "-" "-"
printf '%-46s %10s %10s %7s %9s  %s\n' "in process, all history ($INALL jobs)" "$SALL" "$PALL" "$(ratio "$SALL" "$PALL")" "<${goal_ms}" "$(met "$SALL")"
if [ -z "$CMD_NOTE" ]; then
  printf '%-46s %10s %10s %7s %9s  %s\n' "whole command, 365 days" "$C365" "$Q365" "$(ratio "$C365" "$Q365")" "-" "-"
  printf '%-46s %10s %10s %7s %9s  %s\n' "whole command, all history" "$CALL" "$QALL" "$(ratio "$CALL" "$QALL")" "<${goal_ms}" "$(met "$CALL")"
  printf '%-46s %10s %10s %7s %9s  %s\n' "whole command CPU time, 365 days" "$CC365" "$QC365" "$(ratio "$CC365" "$QC365")" "-" "-"
  printf '%-46s %10s %10s %7s %9s  %s\n' "whole command CPU time, all history" "$CCALL" "$QCALL" "$(ratio "$CCALL" "$QCALL")" "<${goal_ms}" "$(met "$CCALL")"
fi
echo
echo "notes:"
echo "  sqlbak in process, all history: open $SOPEN ms, read the rows $SREAD ms, compute $SCOMP ms (medians)"
echo "  sqlite3: $ROWS result rows for all history; in-process times are the sum of .timer 'real' (1 ms resolution)"
echo "  sqlbak all runs (ms): $(get '" ".join("%.1f" % x for x in d["timings_ms"]["report_all"])'); sqlite3:${P[3660]}"
[ -n "$CMD_NOTE" ] && echo "  $CMD_NOTE"
exit 0
