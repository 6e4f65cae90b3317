#!/usr/bin/env python3
"""Writer latency while backups run (issue 9): does a hot backup slow the application?

A writer (tests/integration/bank_writer.py) commits small transactions to a WAL-mode
database of --size-mib MiB for --seconds seconds in each of three phases, recording
the duration of every commit:
  idle     nothing else runs;
  sqlbak   `sqlbakctl --offline backup` runs back to back (each backup after the
           first is incremental, as in production);
  sqlite3  the peer: `sqlite3 DB ".backup COPY"` runs back to back.
Prints p50/p99 of each phase and the ratios to idle; the goal is sqlbak's p99 within
2x of idle. Not a test: timing depends on the machine, and is reported, not asserted.

Usage: bench/writer_latency.py [--build DIR] [--size-mib N] [--seconds S]
"""

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WRITER = os.path.join(ROOT, "tests", "integration", "bank_writer.py")


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def make_bank(path, size_mib):
    con = sqlite3.connect(path, isolation_level=None)
    con.executescript("""
        PRAGMA journal_mode=WAL;
        CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
        CREATE TABLE meta(id INTEGER PRIMARY KEY, counter INTEGER NOT NULL);
        CREATE TABLE log(id INTEGER PRIMARY KEY, n INTEGER NOT NULL UNIQUE, a, b, amount, pad BLOB);
        CREATE TABLE filler(id INTEGER PRIMARY KEY, v BLOB);
        INSERT INTO meta VALUES (1, 0);
    """)
    con.execute("BEGIN")
    con.executemany("INSERT INTO accounts VALUES (?, 1000)", [(i,) for i in range(1, 201)])
    con.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?) "
                "INSERT INTO filler(v) SELECT randomblob(4000) FROM c", (size_mib * 256,))
    con.execute("COMMIT")
    con.close()


def run_phase(work, db, seconds, background):
    """Runs the writer for SECONDS while BACKGROUND (a list of argv, or None) runs in a
    loop; returns (latencies, background runs)."""
    stop, ready, lat = (os.path.join(work, n) for n in ("stop", "ready", "lat"))
    for f in (stop, ready, lat):
        if os.path.exists(f):
            os.unlink(f)
    w = subprocess.Popen([sys.executable, WRITER, db, stop, ready, "1", "--latencies", lat],
                         stdout=subprocess.PIPE, text=True)
    while not os.path.exists(ready):
        time.sleep(0.01)
    runs = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if background:
            # The sqlite3 shell's .backup restarts whenever another connection
            # writes, so under a steady writer it may never finish: cut it off.
            try:
                subprocess.run(background, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               check=True, timeout=max(5.0, end - time.monotonic()) + 30)
                runs += 1
            except subprocess.TimeoutExpired:
                break
        else:
            time.sleep(0.1)
    open(stop, "w").close()
    w.communicate(timeout=60)
    with open(lat) as f:
        return [float(x) for x in f.read().split()], runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("SQLBAK_BUILD", os.path.join(ROOT, "build")))
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=15)
    a = ap.parse_args()
    ctl = os.path.join(a.build, "ctl", "sqlbakctl")
    if not os.access(ctl, os.X_OK) or not shutil.which("sqlite3"):
        print("need %s and sqlite3" % ctl, file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="sqlbak-latency-")
    try:
        db = os.path.join(work, "bank.db")
        make_bank(db, a.size_mib)
        os.mkdir(os.path.join(work, "repo"))
        cfg = os.path.join(work, "c.yaml")
        with open(cfg, "w") as f:
            f.write("state_dir: %s/state\nsocket: %s/s.sock\ndefaults: {targets: [local]}\n"
                    "targets: {local: {type: local, path: %s/repo}}\n"
                    "databases: [{name: bank, path: %s}]\n" % (work, work, work, db))
        phases = [
            ("idle", None),
            ("sqlbak", [ctl, "-c", cfg, "--offline", "backup"]),
            ("sqlite3", ["sqlite3", db, ".backup %s" % os.path.join(work, "copy.db")]),
        ]
        results = {}
        for name, bg in phases:
            lat, runs = run_phase(work, db, a.seconds, bg)
            results[name] = (percentile(lat, 50), percentile(lat, 99), len(lat), runs)
        idle50, idle99 = results["idle"][0], results["idle"][1]
        print("writer commit latency, WAL mode, %d MiB database, %.0f s per phase" % (a.size_mib, a.seconds))
        print("%-8s %10s %10s %9s %9s %8s %6s" % ("phase", "p50 ms", "p99 ms", "p50/idle", "p99/idle",
                                                  "commits", "runs"))
        print("(runs: backups completed during the phase; 0 for sqlite3 means its .backup kept "
              "restarting and never finished)")
        for name, (p50, p99, n, runs) in results.items():
            print("%-8s %10.3f %10.3f %8.2fx %8.2fx %8d %6d" % (name, p50 * 1e3, p99 * 1e3, p50 / idle50,
                                                               p99 / idle99, n, runs))
        ok = results["sqlbak"][1] <= 2 * idle99
        print("goal: sqlbak p99 within 2x of idle: %s" % ("met" if ok else "missed"))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
