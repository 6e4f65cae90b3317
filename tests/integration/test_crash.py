#!/usr/bin/env python3
"""kill -9 of `sqlbakctl --offline backup` at random moments.

A ~30 MiB database is changed (by a varying amount) before every attempt, and the
backup process is SIGKILLed after a random delay between 0 and the duration of a
normal full backup. After every kill `list` must show only complete backups; at
the end `verify --all` exits 0, every listed backup restores to one of the states
the database was in, and the next backup succeeds.
"""

import os
import subprocess
import sys
import time
import unittest

import sqlbaktest as T

ITERATIONS = int(os.environ.get("SQLBAK_CRASH_ITERATIONS", "15"))
ROWS = 30000
ROW_BYTES = 1000


class CrashDuringBackup(T.EnvTestCase):

    def change(self, db, fraction):
        con = T.connect(db)
        con.execute("BEGIN")
        n = max(1, int(ROWS * fraction))
        for rid in self.rng.sample(range(1, ROWS + 1), n):
            con.execute("UPDATE t SET b = randomblob(?) WHERE id = ?", (ROW_BYTES, rid))
        con.execute("INSERT INTO t(n, b) VALUES (?, randomblob(10))", (self.rng.randrange(1 << 30),))
        con.execute("COMMIT")
        con.close()

    def normal_backup_duration(self, db):
        """Wall time of a complete full backup of DB into a scratch repository."""
        scratch = T.TempEnv(databases={"crash": db})
        try:
            t0 = time.monotonic()
            scratch.ctl("backup", "crash", check=0)
            return time.monotonic() - t0
        finally:
            scratch.cleanup()

    def test_kill_9_at_random_moments(self):
        env = self.env
        db = env.add_database("crash")
        T.create_db(db, page_size=4096, journal_mode="wal", rows=ROWS, row_bytes=ROW_BYTES)
        self.assertGreater(os.path.getsize(db), 25 << 20)
        duration = self.normal_backup_duration(db)
        sys.stderr.write("normal full backup: %.2f s\n" % duration)

        states = set()
        seen = set()
        killed = completed = 0
        for i in range(ITERATIONS):
            self.change(db, self.rng.choice([0.01, 0.1, 0.5, 1.0]))
            states.add(T.db_digest(db))
            delay = self.rng.uniform(0, duration)
            args = [T.SQLBAKCTL] + env.ctl_args("backup", "crash")
            p = env.spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(delay)
            if p.poll() is None:
                os.killpg(p.pid, 9)
                killed += 1
            out, err = p.communicate(timeout=60)
            if p.returncode >= 0:
                # It finished before the kill: it must have succeeded.
                completed += 1
                self.assertEqual(p.returncode, 0, "iteration %d: %s" % (
                    i, T.describe(args, p.returncode, out, err)))
            listed = env.list("crash")
            for b in listed:
                self.assertEqual(b["database"], "crash")
            listed_ids = {b["id"] for b in listed}
            self.assertLessEqual(seen, listed_ids,
                                 "complete backups vanished after the kill in iteration %d" % i)
            fresh = sorted(listed_ids - seen)
            if fresh:
                env.ctl("verify", *fresh, check=0)
            seen = listed_ids
        sys.stderr.write("killed %d, completed %d of %d attempts; %d backups listed\n" % (
            killed, completed, ITERATIONS, len(seen)))

        # The source is fine.
        self.assertEqual(T.integrity_check(db), "ok")
        self.assertEqual(T.pragma(db, "journal_mode"), "wal")

        env.verify_all()
        for b in env.list("crash"):
            out = env.restore(b["id"])
            self.assertEqual(T.integrity_check(out), "ok")
            self.assertIn(T.db_digest(out), states,
                          "backup %s restores to a state the database never had" % b["id"])
            os.unlink(out)

        # The next backup succeeds (no stale lock) and is exact.
        self.change(db, 0.01)
        final = T.db_digest(db)
        b = env.backup_one("crash")
        out = env.restore(b["id"])
        self.assertEqual(T.db_digest(out), final)
        env.verify_all()


if __name__ == "__main__":
    T.main()
