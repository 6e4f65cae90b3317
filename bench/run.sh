#!/usr/bin/env bash
# sqlbak benchmark suite: times sqlbak side by side with a peer doing the same
# work, in one run, and prints the ratios against the goals. See bench/README.md.
#
#   bench/run.sh [--size-mib N] [--build DIR] [--db PATH] [--reps N] [--quick]
#                [--keep] [--strict]
#
# Results go to stdout; progress and errors go to stderr.
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/run.sh [options]
  --size-mib N   size of the generated database in MiB (default 1024; --quick: 64)
  --build DIR    sqlbak build directory holding ctl/sqlbakctl
                 (default $SQLBAK_BUILD, else build/ beside bench/)
  --db PATH      use this existing database instead of generating one; it is only
                 read (case C works on a copy of it)
  --reps N       repetitions of each timed pair, median reported (default 3; --quick: 1)
  --quick        smoke test: 64 MiB database, 1 repetition
  --keep         keep the work directory (printed at the end)
  --strict       exit 4 when a goal is missed (default: exit 0 once the run completed)
  -h, --help     this text
Exit: 0 completed, 1 a step failed, 2 usage error or missing tool, 4 goal missed (--strict).
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SIZE_MIB= REPS= QUICK=0 KEEP=0 STRICT=0 DB_ARG=
BUILD=${SQLBAK_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
while [ $# -gt 0 ]; do
  case $1 in
    --size-mib) SIZE_MIB=${2:?--size-mib needs a value}; shift 2 ;;
    --size-mib=*) SIZE_MIB=${1#*=}; shift ;;
    --build) BUILD=${2:?--build needs a value}; shift 2 ;;
    --build=*) BUILD=${1#*=}; shift ;;
    --db) DB_ARG=${2:?--db needs a value}; shift 2 ;;
    --db=*) DB_ARG=${1#*=}; shift ;;
    --reps) REPS=${2:?--reps needs a value}; shift 2 ;;
    --reps=*) REPS=${1#*=}; shift ;;
    --quick) QUICK=1; shift ;;
    --keep) KEEP=1; shift ;;
    --strict) STRICT=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then
  : "${SIZE_MIB:=64}" "${REPS:=1}"
else
  : "${SIZE_MIB:=1024}" "${REPS:=3}"
fi
case $SIZE_MIB in ''|*[!0-9]*|0) echo "run.sh: --size-mib must be a positive integer" >&2; exit 2 ;; esac
case $REPS in ''|*[!0-9]*|0) echo "run.sh: --reps must be a positive integer" >&2; exit 2 ;; esac

CTL=$BUILD/ctl/sqlbakctl
missing=()
[ -x "$CTL" ] || missing+=("sqlbakctl ($CTL; build first or pass --build DIR)")
for t in sqlite3 zstd restic sha256sum python3 du stat; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
[ -x /usr/bin/time ] || missing+=("/usr/bin/time (GNU time)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "run.sh: missing: ${missing[*]} (scripts/install-deps.sh installs the peers)" >&2
  exit 2
fi
if [ -n "$DB_ARG" ]; then
  [ -f "$DB_ARG" ] || { echo "run.sh: --db $DB_ARG: no such file" >&2; exit 2; }
  DB_ARG=$(cd "$(dirname "$DB_ARG")" && pwd)/$(basename "$DB_ARG")
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/sqlbak-bench.XXXXXX") || exit 1
cleanup() {
  if [ "$KEEP" = 1 ]; then
    echo "bench: work directory kept: $W" >&2
  else
    rm -rf "$W"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$W/logs"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export RESTIC_PASSWORD=sqlbak-bench
GROUP=$(id -gn)

log() { echo "bench: $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

# timed LABEL CMD...: runs CMD under GNU time; sets T_SEC (wall s) and T_RSS (peak KiB).
# stdout/stderr of CMD go to $W/logs/LABEL.{out,err}. Returns CMD's status.
T_SEC= T_RSS= T_ERR=
timed() {
  local label=$1; shift
  local tf=$W/logs/$label.time rc=0
  /usr/bin/time -f '%e %M' -o "$tf" "$@" >"$W/logs/$label.out" 2>"$W/logs/$label.err" || rc=$?
  read -r T_SEC T_RSS < <(tail -n 1 "$tf")
  if [ "$rc" != 0 ]; then
    T_ERR="$label exited $rc: $(tail -n 3 "$W/logs/$label.err" | tr '\n' ' ' | cut -c1-300)"
    log "$T_ERR"
  fi
  return "$rc"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "NA"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "NA" || b == "NA" || b + 0 <= 0) print "NA"; else printf "%.3f", a / b}'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a != "NA" && a + 0 <= b + 0)}'; }
mib() { awk -v b="$1" 'BEGIN {if (b == "NA" || b == "") print "NA"; else printf "%.1f", b / 1048576}'; }
kib2mib() { awk -v k="$1" 'BEGIN {if (k == "NA" || k == "") print "NA"; else printf "%.1f", k / 1024}'; }
bytes_of() { du -sb "$1" 2>/dev/null | awk '{print $1}'; }
json_get() { # json_get FILE PYEXPR  (d = the parsed document)
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# Read a database (and its WAL) once so that both sides of a pair start warm.
warm() {
  local f
  for f in "$@"; do
    if [ -d "$f" ]; then
      find "$f" -type f -exec cat {} + >/dev/null 2>&1
    else
      cat "$f" >/dev/null 2>&1
      [ -f "$f-wal" ] && cat "$f-wal" >/dev/null 2>&1
    fi
  done
  return 0
}

# write_config FILE STATE_DIR REPO_DIR DB_PATH [VERIFY]
# Without VERIFY the file sets no compression/verify keys: sqlbak's defaults apply.
write_config() {
  local f=$1 state=$2 repo=$3 db=$4 verify=${5:-}
  mkdir -p "$state" "$repo"
  {
    echo "# generated by bench/run.sh"
    echo "socket: $W/control.sock"
    echo "socket_group: $GROUP"
    echo "state_dir: $state"
    if [ -n "$verify" ]; then
      echo "defaults:"
      echo "  verify: $verify"
    fi
    echo "targets:"
    echo "  local: {type: local, path: $repo}"
    echo "databases:"
    echo "  - name: bench"
    echo "    path: $db"
  } >"$f"
}

# Results: R[case.side] = space-separated seconds; M[...] = peak RSS KiB
declare -A R=() M=() FAIL=() INFO=()
add() { R[$1]="${R[$1]:-} $2"; M[$1]="${M[$1]:-} $3"; }
med_s() { median ${R[$1]:-}; }
med_m() { median ${M[$1]:-}; }

# pair CASE REP: runs CASE_sqlbak and CASE_peer in alternating order (odd reps: sqlbak
# first). Each side function times itself and calls add; non-zero marks the case failed.
pair() {
  local c=$1 rep=$2 sides
  if [ $((rep % 2)) = 1 ]; then sides="sqlbak peer"; else sides="peer sqlbak"; fi
  for s in $sides; do
    if ! "${c}_$s" "$rep"; then
      FAIL[$c]="${FAIL[$c]:-$s side failed in repetition $rep: $T_ERR}"
      return 1
    fi
  done
}

# ---------------------------------------------------------------- databases

SRC=$W/src.db
if [ -n "$DB_ARG" ]; then
  SRC=$DB_ARG
  log "using existing database $SRC ($(mib "$(stat -c %s "$SRC")") MiB)"
else
  log "building a $SIZE_MIB MiB database..."
  python3 "$here/make_db.py" "$SRC" --size-mib "$SIZE_MIB" >"$W/logs/make_db.out" 2>&1 \
    || die "make_db.py failed: $(tail -n 5 "$W/logs/make_db.out")"
  log "$(cat "$W/logs/make_db.out")"
fi
SRC_BYTES=$(stat -c %s "$SRC")
SRC_MODE=$(sqlite3 "$SRC" 'PRAGMA journal_mode' 2>/dev/null || echo "?")
avail=$(df -B1 --output=avail "$W" | tail -n 1)
if [ "$avail" -lt $((SRC_BYTES * 8)) ]; then
  log "warning: $(mib "$avail") MiB free in $W; the run needs about $(mib $((SRC_BYTES * 8))) MiB"
fi

# ---------------------------------------------------------------- A: full backup + verify

# A) sqlbak backup with its defaults (zstd 3, integrity verify) into a fresh repository,
#    vs the shell pipeline doing the same work.
mkdir -p "$W/A"
A_prep() {
  rm -rf "$W/A/repo" "$W/A/state" "$W/A/tmp.db" "$W/A/tmp.db-wal" "$W/A/tmp.db-shm" "$W/A/tmp.db.zst"
  write_config "$W/A/sqlbak.yaml" "$W/A/state" "$W/A/repo" "$SRC"
}
A_sqlbak() {
  timed "A-sqlbak-$1" "$CTL" --offline -c "$W/A/sqlbak.yaml" --json backup bench || return 1
  add A.sqlbak "$T_SEC" "$T_RSS"
  cp "$W/logs/A-sqlbak-$1.out" "$W/A/last-backup.json"
}
A_peer() {
  timed "A-peer-$1" bash -c 'set -e
    sqlite3 "$1" ".backup '\''$2'\''"
    sqlite3 "$2" "PRAGMA integrity_check"
    zstd -3 -T2 -q "$2" -o "$2.zst"
    sha256sum "$2.zst"' _ "$SRC" "$W/A/tmp.db" || return 1
  add A.peer "$T_SEC" "$T_RSS"
  [ "$(head -n 1 "$W/logs/A-peer-$1.out")" = ok ] || log "A peer: integrity_check did not say ok"
}
log "case A: sqlbak backup (defaults) vs .backup + integrity_check + zstd -3 -T2 + sha256sum, $REPS rep(s)"
for rep in $(seq 1 "$REPS"); do
  A_prep
  warm "$SRC"
  pair A "$rep" || break
done
A_REPO_BYTES=$(bytes_of "$W/A/repo")
A_ZST_BYTES=$(stat -c %s "$W/A/tmp.db.zst" 2>/dev/null || echo NA)
A_ID=$(json_get "$W/A/last-backup.json" 'd["backups"][0]["id"]' || true)
rm -f "$W/A/tmp.db" "$W/A/tmp.db-wal" "$W/A/tmp.db-shm" "$W/A/tmp.db.zst"

# ---------------------------------------------------------------- B: backup without verify

mkdir -p "$W/B"
B_prep() {
  rm -rf "$W/B/repo" "$W/B/state" "$W/B/tmp.db" "$W/B/tmp.db-wal" "$W/B/tmp.db-shm"
  write_config "$W/B/sqlbak.yaml" "$W/B/state" "$W/B/repo" "$SRC" none
}
B_sqlbak() {
  timed "B-sqlbak-$1" "$CTL" --offline -c "$W/B/sqlbak.yaml" --json backup bench || return 1
  add B.sqlbak "$T_SEC" "$T_RSS"
}
B_peer() {
  timed "B-peer-$1" sqlite3 "$SRC" ".backup '$W/B/tmp.db'" || return 1
  add B.peer "$T_SEC" "$T_RSS"
}
log "case B: sqlbak backup (verify: none) vs sqlite3 .backup, $REPS rep(s)"
for rep in $(seq 1 "$REPS"); do
  B_prep
  warm "$SRC"
  pair B "$rep" || break
done
B_REPO_BYTES=$(bytes_of "$W/B/repo")
rm -rf "$W/B"

# ---------------------------------------------------------------- C: incremental after 1 % change

# Both tools get a first full backup of the same copy of the database; then, per
# repetition, ~1 % of the pages change (checkpointed into the main file) and only the
# second backup is timed.
mkdir -p "$W/C"
INC=$W/C/inc.db
RESTIC=(restic -r "$W/C/restic" --cache-dir "$W/C/restic-cache")
C_setup() {
  sqlite3 "$SRC" ".backup '$INC'" || return 1
  case $SRC_MODE in
    wal) sqlite3 "$INC" 'PRAGMA journal_mode=WAL' >/dev/null && sqlite3 "$INC" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null ;;
    delete|truncate|persist) sqlite3 "$INC" "PRAGMA journal_mode=$SRC_MODE" >/dev/null ;;
  esac || return 1
  write_config "$W/C/sqlbak.yaml" "$W/C/state" "$W/C/repo" "$INC" none
  "${RESTIC[@]}" init -q >"$W/logs/C-restic-init.out" 2>&1 \
    || { T_ERR="restic init failed: $(tail -n 3 "$W/logs/C-restic-init.out" | tr '\n' ' ')"; log "$T_ERR"; return 1; }
  warm "$INC"
  timed C-sqlbak-full "$CTL" --offline -c "$W/C/sqlbak.yaml" --json backup bench || return 1
  INFO[C.sqlbak.full]=$T_SEC
  warm "$INC"
  timed C-restic-full "${RESTIC[@]}" backup --host bench -q "$INC" || return 1
  INFO[C.restic.full]=$T_SEC
}
C_sqlbak() {
  local before; before=$(bytes_of "$W/C/repo")
  timed "C-sqlbak-$1" "$CTL" --offline -c "$W/C/sqlbak.yaml" --json backup bench || return 1
  add C.sqlbak "$T_SEC" "$T_RSS"
  R[C.sqlbak.added]="${R[C.sqlbak.added]:-} $(( $(bytes_of "$W/C/repo") - before ))"
  R[C.sqlbak.newpages]="${R[C.sqlbak.newpages]:-} $(json_get "$W/logs/C-sqlbak-$1.out" 'd["backups"][0]["new_pages"]' || echo NA)"
}
C_peer() {
  local before; before=$(bytes_of "$W/C/restic")
  timed "C-peer-$1" "${RESTIC[@]}" backup --host bench -q "$INC" || return 1
  add C.peer "$T_SEC" "$T_RSS"
  R[C.peer.added]="${R[C.peer.added]:-} $(( $(bytes_of "$W/C/restic") - before ))"
}
log "case C: first full backups (sqlbak, restic), then $REPS x (change 1 % of pages; sqlbak vs restic)"
if C_setup; then
  C_SQLBAK_FULL_BYTES=$(bytes_of "$W/C/repo")
  C_RESTIC_FULL_BYTES=$(bytes_of "$W/C/restic")
  for rep in $(seq 1 "$REPS"); do
    python3 "$here/make_db.py" "$INC" --change-percent 1 --seed "$rep" --json >"$W/logs/C-change-$rep.json" \
      2>"$W/logs/C-change-$rep.err" || { FAIL[C]="make_db.py --change-percent failed: $(tail -n 3 "$W/logs/C-change-$rep.err")"; break; }
    R[C.changed]="${R[C.changed]:-} $(json_get "$W/logs/C-change-$rep.json" 'd["changed_percent"]')"
    sqlite3 "$INC" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null 2>&1
    warm "$INC"
    pair C "$rep" || break
  done
else
  FAIL[C]="setup failed: $T_ERR"
fi
# Correctness check (not timed): the newest incremental backup restores to the copy's content.
C_LAST_ID=$(json_get "$W/logs/C-sqlbak-$REPS.out" 'd["backups"][0]["id"]' || true)
if [ -n "$C_LAST_ID" ] && [ -f "$INC" ]; then
  if "$CTL" --offline -c "$W/C/sqlbak.yaml" restore "$C_LAST_ID" --to "$W/C/check.db" >"$W/logs/C-check.out" 2>&1; then
    if [ "$(sqlite3 "$W/C/check.db" .sha3sum 2>&1)" = "$(sqlite3 "$INC" .sha3sum 2>&1)" ]; then
      INFO[C.check]="restore of incremental $C_LAST_ID: content equal to the changed database (.sha3sum)"
    else
      INFO[C.check]="restore of incremental $C_LAST_ID: content DIFFERS from the changed database (.sha3sum)"
    fi
  else
    INFO[C.check]="restore of incremental $C_LAST_ID FAILED: $(tail -n 2 "$W/logs/C-check.out" | tr '\n' ' ')"
  fi
fi
C_SQLBAK_REPO_BYTES=$(bytes_of "$W/C/repo")
C_RESTIC_REPO_BYTES=$(bytes_of "$W/C/restic")
rm -rf "$W/C"

# ---------------------------------------------------------------- D: restore

mkdir -p "$W/D"
D_prep() { rm -f "$W/D/out.db" "$W/D/out.db-wal" "$W/D/out.db-shm" "$W/D/out2.db" "$W/D/out2.db-wal" "$W/D/out2.db-shm"; }
D_sqlbak() {
  timed "D-sqlbak-$1" "$CTL" --offline -c "$W/A/sqlbak.yaml" restore "$A_ID" --to "$W/D/out.db" || return 1
  add D.sqlbak "$T_SEC" "$T_RSS"
}
D_peer() {
  timed "D-peer-$1" sqlite3 "$SRC" ".backup '$W/D/out2.db'" || return 1
  add D.peer "$T_SEC" "$T_RSS"
}
if [ -z "$A_ID" ] || [ ! -d "$W/A/repo" ]; then
  FAIL[D]="no backup from case A to restore"
  log "case D: skipped (${FAIL[D]})"
else
  log "case D: sqlbak restore $A_ID vs sqlite3 .backup, $REPS rep(s)"
  for rep in $(seq 1 "$REPS"); do
    D_prep
    warm "$SRC" "$W/A/repo"
    pair D "$rep" || break
  done
  # Correctness check (not timed): the restored database has the source's content.
  if [ -f "$W/D/out.db" ]; then
    if [ "$(sqlite3 "$W/D/out.db" 'PRAGMA integrity_check' 2>&1)" != ok ]; then
      INFO[D.check]="restored database FAILS integrity_check"
    elif [ "$(sqlite3 "$W/D/out.db" .sha3sum 2>&1)" != "$(sqlite3 "$SRC" .sha3sum 2>&1)" ]; then
      INFO[D.check]="restored database content DIFFERS from the source (.sha3sum)"
    else
      INFO[D.check]="restored database: integrity ok, content equal to the source (.sha3sum)"
    fi
  fi
fi
rm -rf "$W/D"

# ---------------------------------------------------------------- E: peak RSS as the database grows

E_SIZES=()
if [ -n "$DB_ARG" ]; then
  E_MAIN_MIB=$(( (SRC_BYTES + 1048575) / 1048576 ))
else
  E_MAIN_MIB=$SIZE_MIB
fi
for d in 4 2; do
  s=$(( E_MAIN_MIB / d ))
  [ "$s" -ge 1 ] && E_SIZES+=("$s")
done
log "case E: sqlbak backup (defaults) peak RSS at ${E_SIZES[*]} MiB (and ${E_MAIN_MIB} MiB from case A)"
mkdir -p "$W/E"
declare -A E_RSS=() E_SEC=() E_BYTES=()
for s in "${E_SIZES[@]}"; do
  db=$W/E/db$s.db
  if ! python3 "$here/make_db.py" "$db" --size-mib "$s" >"$W/logs/E-make-$s.out" 2>&1; then
    FAIL[E]="make_db.py --size-mib $s failed"
    continue
  fi
  E_BYTES[$s]=$(stat -c %s "$db")
  write_config "$W/E/sqlbak$s.yaml" "$W/E/state$s" "$W/E/repo$s" "$db"
  warm "$db"
  if timed "E-sqlbak-$s" "$CTL" --offline -c "$W/E/sqlbak$s.yaml" --json backup bench; then
    E_RSS[$s]=$T_RSS E_SEC[$s]=$T_SEC
  else
    FAIL[E]="sqlbak backup of the $s MiB database failed: $T_ERR"
  fi
  rm -rf "$W/E/db$s.db" "$W/E/db$s.db-wal" "$W/E/db$s.db-shm" "$W/E/repo$s" "$W/E/state$s"
done
if [ -n "${R[A.sqlbak]:-}" ]; then
  E_RSS[$E_MAIN_MIB]=$(med_m A.sqlbak) E_SEC[$E_MAIN_MIB]=$(med_s A.sqlbak) E_BYTES[$E_MAIN_MIB]=$SRC_BYTES
fi
rm -rf "$W/E"

# ---------------------------------------------------------------- report

missed=0
row() { # row CASE DESCRIPTION GOAL
  local c=$1 desc=$2 goal=$3 s p r met
  if [ -n "${FAIL[$c]:-}" ] && [ -z "${R[$c.sqlbak]:-}" ]; then
    printf '%-44s %9s %9s %7s %7s  %s\n' "$c  $desc" - - - "<=$goal" "FAILED: ${FAIL[$c]}"
    missed=1
    return
  fi
  s=$(med_s "$c.sqlbak") p=$(med_s "$c.peer") r=$(ratio "$s" "$p")
  if [ "$r" = NA ]; then met="n/a"; elif le "$r" "$goal"; then met=yes; else met=NO; missed=1; fi
  [ -n "${FAIL[$c]:-}" ] && met="$met (incomplete: ${FAIL[$c]})"
  printf '%-44s %9s %9s %7s %7s  %s\n' "$c  $desc" "$s" "$p" "$r" "<=$goal" "$met"
}

echo
echo "sqlbak benchmark: started $STARTED on $(hostname), $(nproc) CPU(s)"
echo "database: $(mib "$SRC_BYTES") MiB, journal_mode=$SRC_MODE, $( [ -n "$DB_ARG" ] && echo "$DB_ARG" || echo "generated by make_db.py" )"
echo "sqlbakctl: $CTL; peers: $(sqlite3 --version | cut -d' ' -f1-2 | sed 's/ .*//;s/^/sqlite3 /'), $(zstd --version | grep -o 'v[0-9.]*' | sed 's/^/zstd /'), $(restic version | cut -d' ' -f1-2)"
echo "repetitions: $REPS (median; pairs alternate which side runs first; the input is read once before each pair)"
echo
printf '%-44s %9s %9s %7s %7s  %s\n' "case" "sqlbak s" "peer s" "ratio" "goal" "met?"
printf '%-44s %9s %9s %7s %7s  %s\n' "--------------------------------------------" "--------" "--------" "-------" "-------" "----"
row A "full backup+verify vs pipeline" 0.5
row B "backup (verify none) vs .backup" 1.0
row C "incremental 1 % vs restic backup" 0.25
row D "restore vs .backup" 1.2
a_rss=$(med_m A.sqlbak)
if [ "$a_rss" = NA ]; then
  printf '%-44s %9s %9s %7s %7s  %s\n' "E  peak RSS of A (MiB)" NA - - "<=100" "n/a"
  missed=1
else
  a_rss_mib=$(kib2mib "$a_rss")
  if le "$a_rss_mib" 100; then met=yes; else met=NO; missed=1; fi
  printf '%-44s %9s %9s %7s %7s  %s\n' "E  peak RSS of A (MiB)" "$a_rss_mib" - - "<=100" "$met"
fi
echo
echo "peak RSS (MiB), median:   sqlbak      peer"
for c in A B C D; do
  [ -n "${M[$c.sqlbak]:-}" ] || continue
  printf '  %-22s %9s %9s\n' "$c" "$(kib2mib "$(med_m "$c.sqlbak")")" "$(kib2mib "$(med_m "$c.peer")")"
done
echo
echo "peak RSS of sqlbak backup (defaults) as the database grows:"
printf '  %10s %10s %10s %14s\n' "size MiB" "db MiB" "seconds" "peak RSS MiB"
e_first= e_last=
for s in $(printf '%s\n' "${!E_RSS[@]}" | sort -n); do
  printf '  %10s %10s %10s %14s\n' "$s" "$(mib "${E_BYTES[$s]}")" "${E_SEC[$s]}" "$(kib2mib "${E_RSS[$s]}")"
  [ -z "$e_first" ] && e_first=${E_RSS[$s]}
  e_last=${E_RSS[$s]}
done
if [ ${#E_RSS[@]} -gt 1 ]; then
  # "flat": the largest database needs at most 20 % (+4 MiB slack) more than the smallest
  if awk -v a="$e_first" -v b="$e_last" 'BEGIN {exit !(b <= a * 1.2 + 4096)}'; then met=yes; else met=NO; missed=1; fi
  echo "  flat (largest <= 1.2 x smallest + 4 MiB): $met"
fi
[ -n "${FAIL[E]:-}" ] && echo "  problem: ${FAIL[E]}"
echo
echo "stored sizes (MiB):"
printf '  %-52s %10s\n' "database" "$(mib "$SRC_BYTES")"
printf '  %-52s %10s\n' "sqlbak repository, one full backup (A, defaults)" "$(mib "$A_REPO_BYTES")"
printf '  %-52s %10s\n' "zstd -3 file of the .backup copy (A peer)" "$(mib "$A_ZST_BYTES")"
printf '  %-52s %10s\n' "sqlbak repository, one full backup (B, verify none)" "$(mib "${B_REPO_BYTES:-NA}")"
if [ -z "${FAIL[C]:-}" ] || [ -n "${R[C.sqlbak]:-}" ]; then
  printf '  %-52s %10s\n' "sqlbak repository after first full backup (C)" "$(mib "${C_SQLBAK_FULL_BYTES:-NA}")"
  printf '  %-52s %10s\n' "restic repository after first full backup (C)" "$(mib "${C_RESTIC_FULL_BYTES:-NA}")"
  printf '  %-52s %10s\n' "sqlbak bytes added per 1 % change (median)" "$(mib "$(median ${R[C.sqlbak.added]:-})")"
  printf '  %-52s %10s\n' "restic bytes added per 1 % change (median)" "$(mib "$(median ${R[C.peer.added]:-})")"
  printf '  %-52s %10s\n' "sqlbak repository at the end of C" "$(mib "$C_SQLBAK_REPO_BYTES")"
  printf '  %-52s %10s\n' "restic repository at the end of C" "$(mib "$C_RESTIC_REPO_BYTES")"
fi
echo
echo "notes:"
[ -n "${R[C.changed]:-}" ] && echo "  C: pages changed per repetition (%):${R[C.changed]}; sqlbak new_pages:${R[C.sqlbak.newpages]:-}"
[ -n "${INFO[C.sqlbak.full]:-}" ] && echo "  C: first full backup (not in the table): sqlbak ${INFO[C.sqlbak.full]} s, restic ${INFO[C.restic.full]} s"
[ -n "${INFO[C.check]:-}" ] && echo "  C: ${INFO[C.check]}"
[ -n "${INFO[D.check]:-}" ] && echo "  D: ${INFO[D.check]}"
for c in A B C D; do
  [ -n "${R[$c.sqlbak]:-}" ] && echo "  $c: all runs, sqlbak s:${R[$c.sqlbak]}; peer s:${R[$c.peer]:-}"
done
for c in A B C D E; do
  [ -n "${FAIL[$c]:-}" ] && echo "  $c: PROBLEM: ${FAIL[$c]}"
done

if [ ${#FAIL[@]} -gt 0 ]; then
  exit 1
fi
if [ "$STRICT" = 1 ] && [ "$missed" = 1 ]; then
  exit 4
fi
exit 0
