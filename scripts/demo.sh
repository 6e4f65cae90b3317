#!/usr/bin/env bash
# Installs what is needed, builds sqlbak and runs the main job on a demo
# database: a backup taken while the application writes, listed, verified,
# an incremental backup, and a restore compared with the source.
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
state_dir: $demo/state
defaults:
  compression: {algorithm: zstd, level: 3}
  verify: integrity
targets:
  local: {type: local, path: $demo/backups}
databases:
  - name: shop
    path: $demo/shop.db
EOF2
say "Configuration ($demo/sqlbak.yaml)"
cat "$demo/sqlbak.yaml"
"$ctl" config check "$demo/sqlbak.yaml"

say "Backup while the application keeps writing"
( for i in $(seq 1 200); do
    sqlite3 "$demo/shop.db" "PRAGMA busy_timeout=5000; INSERT INTO orders(customer,total,note) VALUES ('live',$i,'x');" >/dev/null || true
  done ) &
writer=$!
"$ctl" --offline -c "$demo/sqlbak.yaml" backup
wait "$writer"

say "1 % of the orders change; the next backup stores only changed pages"
sqlite3 "$demo/shop.db" "UPDATE orders SET total = total + 1 WHERE id % 100 = 0;"
"$ctl" --offline -c "$demo/sqlbak.yaml" backup

say "List"
"$ctl" --offline -c "$demo/sqlbak.yaml" list

say "Verify every backup (every object re-read, rebuilt, integrity_check)"
"$ctl" --offline -c "$demo/sqlbak.yaml" verify --all

newest=$("$ctl" --offline -c "$demo/sqlbak.yaml" --json list | python3 -c 'import json,sys; print(json.load(sys.stdin)["backups"][0]["id"])')
say "Restore $newest to $demo/restored.db"
"$ctl" --offline -c "$demo/sqlbak.yaml" restore "$newest" --to "$demo/restored.db"
if cmp -s <(sqlite3 "$demo/shop.db" .dump) <(sqlite3 "$demo/restored.db" .dump); then
  echo "restored.db has the same content as shop.db (sqlite3 .dump identical)"
else
  echo "restored.db differs from shop.db" >&2
  exit 1
fi
sqlite3 "$demo/restored.db" "SELECT count(*) AS orders, round(sum(total)) AS total FROM orders;"

say "A restore never overwrites by surprise"
"$ctl" --offline -c "$demo/sqlbak.yaml" restore "$newest" --to "$demo/restored.db" || echo "(refused, exit $?)"

say "Done. Files are in $demo"
