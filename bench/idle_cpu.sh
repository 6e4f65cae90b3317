#!/usr/bin/env bash
# CPU used by an idle sqlbakd watching 20 databases (goal: < 1 % of one core).
# Usage: bench/idle_cpu.sh [SECONDS] (default 60). Reads utime+stime from /proc.
set -euo pipefail
seconds=${1:-60}
build=${SQLBAK_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
mkdir -p "$dir/repo" "$dir/state"
{
  echo "socket: $dir/ctl.sock"
  echo "state_dir: $dir/state"
  echo "defaults: {schedule: daily, verify: quick}"
  echo "targets: {local: {type: local, path: $dir/repo}}"
  echo "databases:"
  for i in $(seq 1 20); do
    sqlite3 "$dir/db$i.db" "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES ($i);" >/dev/null
    echo "  - {name: db$i, path: $dir/db$i.db}"
  done
} > "$dir/sqlbak.yaml"
"$build/daemon/sqlbakd" -c "$dir/sqlbak.yaml" 2>"$dir/log" &
pid=$!
for _ in $(seq 1 50); do [ -S "$dir/ctl.sock" ] && break; sleep 0.1; done
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); sleep "$seconds"; t1=$(ticks)
python3 - "$t0" "$t1" "$hz" "$seconds" <<'PY'
import sys
t0, t1, hz, secs = map(float, sys.argv[1:])
cpu = (t1 - t0) / hz
print(f"idle sqlbakd, 20 databases, {secs:.0f} s: {cpu:.3f} s of CPU = {100 * cpu / secs:.3f} % of one core (goal < 1 %)")
PY
