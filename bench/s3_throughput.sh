#!/usr/bin/env bash
# S3 throughput: sqlbak against awscli, side by side in one run, both talking to
# one s3rver on loopback (a temporary directory). See bench/README.md.
#
#   bench/s3_throughput.sh [--size-mib N] [--build DIR] [--db PATH] [--verify MODE]
#                          [--reps N] [--keep] [--strict]
#
# Timed, each on the same database file:
#   upload    sqlbak backup (a new repository: every page goes up, compressed)
#             vs `aws s3 cp` of the database file
#             vs `aws s3 cp` of a zstd copy (-3, 2 threads, the level and threads
#                sqlbak uses), shown alone and with the compression time added
#   download  sqlbak restore vs `aws s3 cp` of the file back
#             vs `aws s3 cp` of the zstd copy, alone and with `zstd -d` added
# Throughput is database bytes per second for every line (so a compressed copy
# counts as the database it holds); ratio = sqlbak's throughput / the peer's.
# The sqlbak/awscli pairs run --reps times, in alternating order (each backup
# into a repository of its own); medians are reported, and every run.
# Results go to stdout; progress to stderr.
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/s3_throughput.sh [options]
  --size-mib N   size of the generated database in MiB (default 1024)
  --build DIR    sqlbak build directory holding ctl/sqlbakctl
                 (default $SQLBAK_BUILD, else build/ beside bench/)
  --db PATH      use this existing database instead of generating one (only read)
  --verify MODE  the backup's check of its image: none (default: the transfer
                 alone, as awscli does), quick or integrity (sqlbak's default)
  --reps N       runs of each sqlbak/awscli pair, medians reported (default 3)
  --keep         keep the work directory (printed at the end)
  --strict       exit 4 when sqlbak's median upload or download is slower than
                 awscli's copy of the database file
  -h, --help     this text
Needs: node and s3rver (scripts/install-deps.sh puts it in tests/peers, or set
SQLBAK_PEERS_DIR), aws (awscli), zstd, python3.
Exit: 0 completed, 1 a step failed, 2 usage error or missing tool, 4 goal missed (--strict).
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
SIZE_MIB=1024 DB_ARG= VERIFY=none KEEP=0 STRICT=0 REPS=3
BUILD=${SQLBAK_BUILD:-$root/build}
while [ $# -gt 0 ]; do
  case $1 in
    --size-mib) SIZE_MIB=${2:?--size-mib needs a value}; shift 2 ;;
    --size-mib=*) SIZE_MIB=${1#*=}; shift ;;
    --build) BUILD=${2:?--build needs a value}; shift 2 ;;
    --build=*) BUILD=${1#*=}; shift ;;
    --db) DB_ARG=${2:?--db needs a value}; shift 2 ;;
    --db=*) DB_ARG=${1#*=}; shift ;;
    --verify) VERIFY=${2:?--verify needs a value}; shift 2 ;;
    --verify=*) VERIFY=${1#*=}; shift ;;
    --reps) REPS=${2:?--reps needs a value}; shift 2 ;;
    --reps=*) REPS=${1#*=}; shift ;;
    --keep) KEEP=1; shift ;;
    --strict) STRICT=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "s3_throughput.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case $SIZE_MIB in ''|*[!0-9]*|0) echo "s3_throughput.sh: --size-mib must be a positive integer" >&2; exit 2 ;; esac
case $REPS in ''|*[!0-9]*|0) echo "s3_throughput.sh: --reps must be a positive integer" >&2; exit 2 ;; esac
case $VERIFY in none|quick|integrity) ;; *) echo "s3_throughput.sh: --verify is none, quick or integrity" >&2; exit 2 ;; esac

CTL=$BUILD/ctl/sqlbakctl
PEERS=${SQLBAK_PEERS_DIR:-$root/tests/peers}
S3RVER=$PEERS/node_modules/.bin/s3rver
missing=()
[ -x "$CTL" ] || missing+=("sqlbakctl ($CTL; build first or pass --build DIR)")
[ -x "$S3RVER" ] || missing+=("s3rver ($S3RVER; run scripts/install-deps.sh)")
for t in node aws zstd python3 stat; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
  printf 's3_throughput.sh: missing: %s\n' "${missing[@]}" >&2
  exit 2
fi
[ -z "$DB_ARG" ] || [ -f "$DB_ARG" ] || { echo "s3_throughput.sh: no database at $DB_ARG" >&2; exit 2; }

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

W=$(mktemp -d "${TMPDIR:-/var/tmp}/sqlbak-s3bench-XXXXXX") || die "cannot create a work directory"
S3PID=
cleanup() {
  if [ -n "$S3PID" ] && kill -0 "$S3PID" 2>/dev/null; then
    kill -TERM -- "-$S3PID" 2>/dev/null
    wait "$S3PID" 2>/dev/null
  fi
  if [ "$KEEP" = 1 ]; then log "work directory kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$W/logs" "$W/out" "$W/state"

# --- the database ------------------------------------------------------------------
if [ -n "$DB_ARG" ]; then
  SRC=$DB_ARG
else
  SRC=$W/src.db
  log "building a ${SIZE_MIB} MiB database with make_db.py"
  python3 "$here/make_db.py" "$SRC" --size-mib "$SIZE_MIB" >"$W/logs/make_db.out" 2>&1 \
    || die "make_db.py failed: $(tail -n 5 "$W/logs/make_db.out")"
  # Fold the WAL in: both tools then read one file of the same size.
  python3 - "$SRC" <<'EOF' || die "checkpoint failed"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.close()
EOF
fi
SRC_BYTES=$(stat -c %s "$SRC")

# --- s3rver ------------------------------------------------------------------------
BUCKET=bench
log "starting s3rver"
NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider" \
  setsid "$S3RVER" -d "$W/s3rver" -a 127.0.0.1 -p 0 --configure-bucket "$BUCKET" \
  </dev/null >"$W/logs/s3rver.log" 2>&1 &
S3PID=$!
PORT=
for _ in $(seq 1 600); do
  PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$W/logs/s3rver.log" | head -n 1)
  [ -n "$PORT" ] && break
  kill -0 "$S3PID" 2>/dev/null || die "s3rver exited: $(tail -n 5 "$W/logs/s3rver.log")"
  sleep 0.1
done
[ -n "$PORT" ] || die "s3rver did not start: $(tail -n 5 "$W/logs/s3rver.log")"
ENDPOINT=http://127.0.0.1:$PORT

# s3rver's built-in account; as tests/integration/s3_peer.py runs awscli.
echo S3RVER >"$W/key-id"
echo S3RVER >"$W/secret"
chmod 600 "$W/key-id" "$W/secret"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  AWS_REQUEST_CHECKSUM_CALCULATION=when_required AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
awscp() { aws --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "$@"; }

# One repository (prefix) and state directory per repetition: every backup is a
# full upload.
write_config() {  # REP
  mkdir -p "$W/state-$1"
  cat >"$W/config-$1.yaml" <<EOF
socket: $W/control-$1.sock
state_dir: $W/state-$1
workers: 2
defaults:
  targets: [offsite]
  verify: $VERIFY
targets:
  offsite: {type: s3, endpoint: "$ENDPOINT", region: us-east-1, bucket: $BUCKET, prefix: sqlbak-$1/,
            access_key_id_file: "$W/key-id", secret_access_key_file: "$W/secret"}
databases:
  - name: bench
    path: "$SRC"
EOF
}

# Runs "$@", logging to $W/logs/NAME.log; sets SECS. A failure ends the run.
timed() {
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$W/logs/$name.log" 2>&1 || die "$name: $(tail -n 5 "$W/logs/$name.log")"
  t1=$(date +%s.%N)
  SECS=$(python3 -c "print('%.2f' % ($t1 - $t0))")
  log "$name: $SECS s"
}

sqlbak_backup() {  # REP
  log "rep $1: sqlbak backup (verify: $VERIFY)"
  timed "sqlbak-backup-$1" "$CTL" -c "$W/config-$1.yaml" --offline --json backup bench
  T_BACKUP+=("$SECS")
  BACKUP_ID[$1]=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['backups'][0]['id'])" \
    "$W/logs/sqlbak-backup-$1.log") || die "no backup id in $(tail -c 2000 "$W/logs/sqlbak-backup-$1.log")"
}
aws_upload() {  # REP
  log "rep $1: aws s3 cp (database file)"
  timed "aws-upload-$1" awscp "$SRC" "s3://$BUCKET/raw/src-$1.db"
  T_AWS_UP+=("$SECS")
}
sqlbak_restore() {  # REP
  log "rep $1: sqlbak restore"
  timed "sqlbak-restore-$1" "$CTL" -c "$W/config-$1.yaml" --offline restore "${BACKUP_ID[$1]}" \
    --to "$W/out/restored.db"
  T_RESTORE+=("$SECS")
  rm -f "$W/out/restored.db"*
}
aws_download() {  # REP
  log "rep $1: aws s3 cp (database file, back)"
  timed "aws-download-$1" awscp "s3://$BUCKET/raw/src-$1.db" "$W/out/aws.db"
  T_AWS_DOWN+=("$SECS")
  rm -f "$W/out/aws.db"
}

# --- upload, then download: sqlbak and awscli in turn, the first alternating ----------
T_BACKUP=() T_AWS_UP=() T_RESTORE=() T_AWS_DOWN=()
declare -a BACKUP_ID
for rep in $(seq 1 "$REPS"); do
  write_config "$rep"
  if [ $((rep % 2)) = 1 ]; then sqlbak_backup "$rep"; aws_upload "$rep"
  else aws_upload "$rep"; sqlbak_backup "$rep"; fi
done
log "zstd -3 -T2, then aws s3 cp of the copy"
timed zstd-compress zstd -q -3 -T2 -f "$SRC" -o "$W/src.db.zst"
T_ZSTD=$SECS
ZST_BYTES=$(stat -c %s "$W/src.db.zst")
timed aws-upload-zst awscp "$W/src.db.zst" "s3://$BUCKET/zst/src.db.zst"
T_AWS_UP_ZST=$SECS
rm -f "$W/src.db.zst"

for rep in $(seq 1 "$REPS"); do
  if [ $((rep % 2)) = 1 ]; then sqlbak_restore "$rep"; aws_download "$rep"
  else aws_download "$rep"; sqlbak_restore "$rep"; fi
done
timed aws-download-zst awscp "s3://$BUCKET/zst/src.db.zst" "$W/out/aws.db.zst"
T_AWS_DOWN_ZST=$SECS
timed zstd-decompress zstd -q -d -f "$W/out/aws.db.zst" -o "$W/out/aws.db"
T_UNZSTD=$SECS
rm -f "$W/out/aws.db" "$W/out/aws.db.zst"

# What the first backup and restore asked of S3, from the catalog (`report`).
"$CTL" -c "$W/config-1.yaml" --offline --json report --days 1 >"$W/logs/report.json" 2>"$W/logs/report.err" \
  || die "report: $(tail -n 5 "$W/logs/report.err")"

# --- results -----------------------------------------------------------------------
list() { local IFS=,; echo "$*"; }
python3 - "$SRC_BYTES" "$ZST_BYTES" "$VERIFY" "$W/logs/report.json" \
  "$(list "${T_BACKUP[@]}")" "$(list "${T_AWS_UP[@]}")" "$T_ZSTD" "$T_AWS_UP_ZST" \
  "$(list "${T_RESTORE[@]}")" "$(list "${T_AWS_DOWN[@]}")" "$T_AWS_DOWN_ZST" "$T_UNZSTD" <<'EOF'
import json, statistics, sys
size, zst, verify, report = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = lambda arg: [float(x) for x in arg.split(",")]
b_runs, au_runs, r_runs, ad_runs = runs(sys.argv[5]), runs(sys.argv[6]), runs(sys.argv[9]), runs(sys.argv[10])
tb, tau, tr, tad = (statistics.median(x) for x in (b_runs, au_runs, r_runs, ad_runs))
tz, tauz, tadz, tuz = float(sys.argv[7]), float(sys.argv[8]), float(sys.argv[11]), float(sys.argv[12])
mb = size / 1e6

def row(what, secs, all_runs=None):
    rate = mb / secs if secs > 0 else float("inf")
    every = "" if not all_runs or len(all_runs) < 2 else "  runs: " + " ".join("%.2f" % x for x in all_runs)
    print("  %-44s %8.2f s  %8.1f MB/s%s" % (what, secs, rate, every))

print("S3 throughput, s3rver on loopback: database %.1f MiB (%d bytes), zstd -3 copy %.1f MiB" % (
    size / 2**20, size, zst / 2**20))
print("throughput = database bytes / seconds; ratio = sqlbak's throughput / this line's")
print("sqlbak and awscli of the database file: median of %d runs each, in alternating order" % len(b_runs))
print("upload:")
row("sqlbak backup (verify: %s)" % verify, tb, b_runs)
row("aws s3 cp, database file", tau, au_runs)
row("aws s3 cp, zstd copy (upload only)", tauz)
row("zstd -3 -T2 + aws s3 cp of the copy", tz + tauz)
print("  ratio sqlbak/aws: %.2fx (file), %.2fx (zstd copy, upload only), %.2fx (zstd + upload)" % (
    tau / tb, tauz / tb, (tz + tauz) / tb))
print("download:")
row("sqlbak restore", tr, r_runs)
row("aws s3 cp, database file", tad, ad_runs)
row("aws s3 cp, zstd copy (download only)", tadz)
row("aws s3 cp of the copy + zstd -d", tadz + tuz)
print("  ratio sqlbak/aws: %.2fx (file), %.2fx (zstd copy, download only), %.2fx (download + zstd -d)" % (
    tad / tr, tadz / tr, (tadz + tuz) / tr))
if len(r_runs) > 1:
    print("  per pair of runs, restore vs the awscli download beside it: " +
          " ".join("%.2fx" % (a / s) for s, a in zip(r_runs, ad_runs)))
r = json.load(open(report))
for t in r.get("targets", []):
    q = t["requests"]
    print("requests (catalog, one backup + one restore): target %s: %d PUT, %d GET, %d LIST, %d DELETE, "
          "%.1f MiB up, %.1f MiB down" % (t["name"], q["put"], q["get"], q["list"], q["delete"],
                                          t["uploaded_bytes"] / 2**20, t["downloaded_bytes"] / 2**20))
missed = [w for w, ok in (("upload", tb <= tau), ("download", tr <= tad)) if not ok]
print("goal (>= 1.0x aws s3 cp of the database file, medians): " + ("met" if not missed else "missed: " + ", ".join(missed)))
sys.exit(4 if missed else 0)
EOF
rc=$?
[ "$rc" = 4 ] && [ "$STRICT" = 1 ] && exit 4
[ "$rc" = 0 ] || [ "$rc" = 4 ] || exit 1
exit 0
