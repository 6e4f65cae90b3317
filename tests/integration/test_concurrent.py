#!/usr/bin/env python3
"""Hot backups while another process keeps committing.

A writer process moves amounts between rows of `accounts` (SUM(balance) constant)
and appends one `log` row per transaction, numbered by the counter in `meta`
(count(log) == meta.counter). Every backup taken meanwhile must succeed and
restore to a database where both invariants hold and integrity_check is ok.
"""

import json
import os
import subprocess
import sys
import time
import unittest

import sqlbaktest as T

ACCOUNTS = 200
INITIAL_BALANCE = 1000
BACKUPS_PER_MODE = 5

WRITER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bank_writer.py")


def create_bank(path, mode):
    T.create_db(path, page_size=4096, journal_mode="delete", script="""
        CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
        CREATE TABLE meta(id INTEGER PRIMARY KEY, counter INTEGER NOT NULL);
        CREATE TABLE log(id INTEGER PRIMARY KEY, n INTEGER NOT NULL UNIQUE, a INTEGER,
                         b INTEGER, amount INTEGER, pad BLOB);
        CREATE INDEX log_a ON log(a);
        INSERT INTO meta VALUES (1, 0);
    """, rows=1500, row_bytes=4000, table="filler")  # ~6 MiB: many steps of 16 pages
    con = T.connect(path)
    con.execute("BEGIN")
    con.executemany("INSERT INTO accounts VALUES (?, ?)",
                    [(i, INITIAL_BALANCE) for i in range(1, ACCOUNTS + 1)])
    con.execute("COMMIT")
    got = con.execute("PRAGMA journal_mode=%s" % mode).fetchone()[0]
    con.close()
    assert got == mode, got


def check_bank(testcase, path, what):
    """Asserts the invariants on PATH; returns meta.counter."""
    testcase.assertEqual(T.integrity_check(path), "ok", what)
    con = T.connect(path)
    try:
        total, count = con.execute("SELECT sum(balance), count(*) FROM accounts").fetchone()
        counter = con.execute("SELECT counter FROM meta WHERE id = 1").fetchone()[0]
        logs, max_n = con.execute("SELECT count(*), coalesce(max(n), 0) FROM log").fetchone()
    finally:
        con.close()
    testcase.assertEqual(count, ACCOUNTS, what)
    testcase.assertEqual(total, ACCOUNTS * INITIAL_BALANCE, "%s: SUM(balance)" % what)
    testcase.assertEqual(logs, counter, "%s: count(log) vs meta.counter" % what)
    testcase.assertEqual(max_n, counter, "%s: max(log.n) vs meta.counter" % what)
    return counter


def read_counter(path):
    con = T.connect(path, timeout=30)
    try:
        return con.execute("SELECT counter FROM meta WHERE id = 1").fetchone()[0]
    finally:
        con.close()


class ConcurrentWriter(T.EnvTestCase):
    env_kwargs = {"step_pages": 16}

    def start_writer(self, db, tag, chaos=False):
        stop = self.env.path("stop-" + tag)
        ready = self.env.path("ready-" + tag)
        p = self.env.spawn([sys.executable, WRITER, db, stop, ready,
                            str(self.rng.randrange(1 << 30))] + (["--chaos"] if chaos else []),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not os.path.exists(ready):
            if p.poll() is not None:
                self.fail("writer died at start: %s" % p.stderr.read())
            if time.monotonic() > deadline:
                self.fail("writer did not start")
            time.sleep(0.05)
        # Let it commit a little before the first backup.
        start = read_counter(db)
        while read_counter(db) < start + 20:
            if p.poll() is not None:
                self.fail("writer died: %s" % p.stderr.read())
            if time.monotonic() > deadline:
                self.fail("writer makes no progress")
            time.sleep(0.05)
        return p, stop

    def stop_writer(self, p, stop):
        if p.poll() is not None:
            self.fail("writer exited early (%s): %s" % (p.returncode, p.stderr.read()))
        open(stop, "w").close()
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, "writer failed:\n%s" % err)
        return json.loads(out.strip().splitlines()[-1])

    def run_mode(self, mode):
        db = self.env.add_database("bank_" + mode)
        create_bank(db, mode)
        p, stop = self.start_writer(db, mode)
        c0 = read_counter(db)
        backups = []
        for _ in range(BACKUPS_PER_MODE):
            backups.append(self.env.backup_one("bank_" + mode))
            if p.poll() is not None:
                self.fail("writer died during backups: %s" % p.stderr.read())
        c1 = read_counter(db)
        stats = self.stop_writer(p, stop)
        self.assertGreater(c1, c0, "the writer committed nothing while backups ran")
        self.assertEqual(T.pragma(db, "journal_mode"), mode, "source journal mode changed")
        final = check_bank(self, db, "source after the writer stopped")
        self.assertEqual(final, stats["commits"])

        self.env.verify_all()
        counters = []
        for b in backups:
            out = self.env.restore(b["id"])
            counters.append(check_bank(self, out, "restored %s" % b["id"]))
            self.assertEqual(T.pragma(out, "journal_mode"), mode)
        self.assertEqual(counters, sorted(counters),
                         "later backups must not hold older states: %r" % counters)
        sys.stderr.write("[%s] writer: %r; counters in backups: %r\n" % (mode, stats, counters))

    def test_wal(self):
        self.run_mode("wal")

    def run_chaos(self, mode):
        """Two writer processes, with checkpoints forced at random, VACUUM and schema
        changes between their transactions, while backups are taken one after the
        other: every backup restores to a state where the invariants hold."""
        name = "chaos_" + mode
        db = self.env.add_database(name)
        create_bank(db, mode)
        writers = [self.start_writer(db, "%s-%d" % (name, i), chaos=True) for i in range(2)]
        backups = [self.env.backup_one(name) for _ in range(BACKUPS_PER_MODE)]
        stats = [self.stop_writer(p, stop) for p, stop in writers]
        commits = sum(s["commits"] for s in stats)
        self.assertGreater(sum(s["chaos"] for s in stats), 0, "no chaos happened: %r" % stats)
        self.assertEqual(check_bank(self, db, "source after the writers stopped"), commits)
        self.env.verify_all()
        counters = [check_bank(self, self.env.restore(b["id"]), "restored %s" % b["id"])
                    for b in backups]
        self.assertEqual(counters, sorted(counters))
        sys.stderr.write("[chaos %s] writers: %r; counters in backups: %r\n" % (mode, stats, counters))

    def test_chaos_wal(self):
        self.run_chaos("wal")

    def test_chaos_rollback_journal(self):
        self.run_chaos("delete")

    def test_rollback_journal(self):
        self.run_mode("delete")

    def test_two_backups_at_once(self):
        """Two `--offline backup` of the same database at the same time, writer running:
        each one succeeds or fails cleanly (exit 1 naming the database); at least one
        succeeds, and everything listed restores."""
        for mode in ("wal", "delete"):
            with self.subTest(mode=mode):
                name = "twice_" + mode
                db = self.env.add_database(name)
                create_bank(db, mode)
                p, stop = self.start_writer(db, name)
                procs = [self.env.spawn([T.SQLBAKCTL] + self.env.ctl_args("backup", name),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                         for _ in range(2)]
                results = [q.communicate(timeout=T.COMMAND_TIMEOUT) + (q.returncode,) for q in procs]
                self.stop_writer(p, stop)
                ok = 0
                for out, err, rc in results:
                    T.assert_no_crash(rc, out, err, ["sqlbakctl", "backup", name])
                    if rc == 0:
                        ok += 1
                    else:
                        self.assertClearError(rc, out, err, 1, names=(name,))
                self.assertGreaterEqual(ok, 1, "neither concurrent backup succeeded: %r" % results)
                self.env.verify_all()
                for b in self.env.list(name):
                    check_bank(self, self.env.restore(b["id"]), "restored %s" % b["id"])


if __name__ == "__main__":
    T.main()
