#!/usr/bin/env bash
# Installs what is needed, builds sqlbak and runs the main job on a demo
# database: sqlbakd up, a backup taken while the application writes, listed,
# verified, an incremental backup, and a restore compared with the source.
# The README's first command. Leaves its files in ${DEMO_DIR:-/tmp/sqlbak-demo}.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

demo=${DEMO_DIR:-/tmp/sqlbak-demo}
rm -rf "$demo"
mkdir -p "$demo/backups" "$demo/state"
ctl="$root/build/ctl/sqlbakctl"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "A demo application database (WAL mode, 50,000 orders)"
sqlite3 "$demo/shop.db" <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, total REAL, note TEXT);
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n WHERE x < 50000)
INSERT INTO orders(customer, total, note)
  SELECT 'customer-' || (x % 977), x * 1.5, hex(randomblob(60)) FROM n;
CREATE INDEX orders_customer ON orders(customer);
SQL
ls -l "$demo/shop.db"

cat > "$demo/sqlbak.yaml" <<EOF2
socket: $demo/control.sock
state_dir: $demo/state
defaults:
  compression: {algorithm: zstd, level: 3}
  verify: integrity
  schedule: hourly
targets:
  local: {type: local, path: $demo/backups}
databases:
  - name: shop
    path: $demo/shop.db
EOF2
chmod 600 "$demo/sqlbak.yaml"  # it may name secrets: sqlbakd warns about one others can read
say "Configuration ($demo/sqlbak.yaml)"
cat "$demo/sqlbak.yaml"
"$ctl" config check "$demo/sqlbak.yaml"
ctl() { "$ctl" -c "$demo/sqlbak.yaml" "$@"; }

say "sqlbakd up (in the foreground of a background job here; systemd runs it in production)"
"$root/build/daemon/sqlbakd" -c "$demo/sqlbak.yaml" 2>"$demo/sqlbakd.log" &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -S "$demo/control.sock" ] && break; sleep 0.1; done
ctl status

say "Backup while the application keeps writing"
( for i in $(seq 1 200); do
    sqlite3 "$demo/shop.db" "PRAGMA busy_timeout=5000; INSERT INTO orders(customer,total,note) VALUES ('live',$i,'x');" >/dev/null || true
  done ) &
writer=$!
ctl backup --wait
wait "$writer"

say "Every hundredth order changes; the next backup stores only the pages that changed"
sqlite3 "$demo/shop.db" "UPDATE orders SET total = total + 1 WHERE id % 100 = 0;"
ctl backup --wait

say "List"
ctl list

say "Verify every backup (every object re-read, rebuilt, integrity_check)"
ctl verify --all

newest=$(ctl --json list | python3 -c 'import json,sys; print(json.load(sys.stdin)["backups"][0]["id"])')
say "Restore $newest to $demo/restored.db"
ctl restore "$newest" --to "$demo/restored.db"
if cmp -s <(sqlite3 "$demo/shop.db" .dump) <(sqlite3 "$demo/restored.db" .dump); then
  echo "restored.db has the same content as shop.db (sqlite3 .dump identical)"
else
  echo "restored.db differs from shop.db" >&2
  exit 1
fi
sqlite3 "$demo/restored.db" "SELECT count(*) AS orders, round(sum(total)) AS total FROM orders;"

say "A restore never overwrites by surprise"
ctl restore "$newest" --to "$demo/restored.db" || echo "(refused, exit $?)"

say "Status, and the daemon's log"
ctl status
cat "$demo/sqlbakd.log"

say "Without the daemon: the same commands with --offline (cron, disaster recovery)"
kill "$daemon"; wait "$daemon" || true
ctl --offline list

say "Done. Files are in $demo"
