#!/usr/bin/env python3
"""A writer for the consistency tests and the writer-latency benchmark.

Usage: bank_writer.py DB STOP_FILE READY_FILE SEED [--chaos] [--latencies FILE]

Moves amounts between rows of `accounts` (SUM(balance) stays constant) and appends
one `log` row per transaction numbered by `meta.counter`, until STOP_FILE exists or
its parent dies. With --chaos it also, now and then, forces a WAL checkpoint
(TRUNCATE), runs VACUUM, and changes the schema (creates, alters and drops a scratch
table) — none of which may break the invariants. With --latencies it writes the
duration of every committed transaction (seconds, one per line) to FILE.
Prints {"commits", "busy", "chaos"} as JSON at the end.
"""

import json
import os
import random
import sqlite3
import sys
import time


def is_busy(error):
    msg = str(error).lower()
    return "locked" in msg or "busy" in msg


def query_when_free(con, sql, attempts=20):
    """One autocommit query, retried while another connection holds the lock.

    In rollback-journal mode a reader waits behind a writer's PENDING lock, and that
    writer behind a backup step's SHARED lock, so even the opening query can outlast
    the busy timeout under load.
    """
    for attempt in range(attempts):
        try:
            return con.execute(sql).fetchone()[0]
        except sqlite3.OperationalError as e:
            if not is_busy(e) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def main():
    db, stop, ready, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    chaos = "--chaos" in sys.argv
    lat_path = sys.argv[sys.argv.index("--latencies") + 1] if "--latencies" in sys.argv else None
    rng = random.Random(seed)
    con = sqlite3.connect(db, timeout=5.0, isolation_level=None)
    con.execute("PRAGMA busy_timeout=5000")
    n = query_when_free(con, "SELECT count(*) FROM accounts")
    wal = query_when_free(con, "PRAGMA journal_mode") == "wal"
    commits = busy = chaos_ops = 0
    latencies = []
    parent = os.getppid()
    open(ready, "w").close()
    while not os.path.exists(stop) and os.getppid() == parent:
        a, b = rng.sample(range(1, n + 1), 2)
        amount = rng.randint(1, 100)
        t0 = time.perf_counter()
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, a))
            con.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, b))
            con.execute("UPDATE meta SET counter = counter + 1 WHERE id = 1")
            con.execute("INSERT INTO log(n, a, b, amount, pad) "
                        "SELECT counter, ?, ?, ?, randomblob(?) FROM meta WHERE id = 1",
                        (a, b, amount, rng.randint(10, 600)))
            con.execute("COMMIT")
            commits += 1
            if lat_path:
                latencies.append(time.perf_counter() - t0)
        except sqlite3.OperationalError as e:
            if not is_busy(e):
                raise
            busy += 1
            try:
                con.execute("ROLLBACK")
            except sqlite3.OperationalError:
                pass
            time.sleep(rng.uniform(0, 0.005))
            continue
        if chaos and rng.random() < 0.02:
            op = rng.choice(["checkpoint", "vacuum", "schema"])
            try:
                if op == "checkpoint" and wal:
                    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                elif op == "vacuum":
                    con.execute("VACUUM")
                else:
                    # One transaction: with two chaos writers, the other one may
                    # drop the table between these statements otherwise.
                    con.execute("BEGIN IMMEDIATE")
                    con.execute("CREATE TABLE IF NOT EXISTS scratch(x)")
                    con.execute("INSERT INTO scratch(x) VALUES (randomblob(3000))")
                    cols = [r[1] for r in con.execute("PRAGMA table_info(scratch)")]
                    if "y" not in cols:
                        con.execute("ALTER TABLE scratch ADD COLUMN y")
                    else:
                        con.execute("DROP TABLE scratch")
                    con.execute("COMMIT")
                chaos_ops += 1
            except sqlite3.OperationalError as e:
                if not is_busy(e):
                    raise
                if con.in_transaction:
                    con.execute("ROLLBACK")
    con.close()
    if lat_path:
        with open(lat_path, "w") as f:
            f.write("\n".join("%.6f" % x for x in latencies))
    print(json.dumps({"commits": commits, "busy": busy, "chaos": chaos_ops}))


if __name__ == "__main__":
    main()
