#!/usr/bin/env python3
"""sqlbakd's own rotation (`rotate:` schedule) and scheduled verification
(`verify_schedule:`, `verify_latest:`): they run by themselves, log what they did,
record it in the catalog, and `list` shows each backup's last verification.
Schedules of a few seconds make the daemon do in seconds what it does weekly.
"""

import os
import sqlite3

import sqlbaktest as T


class DaemonMaintenance(T.DaemonTestCase):
    env_kwargs = {"extra_defaults": {
        "schedule": '"*:*:0/2"',
        "rotate": '"*:*:0/5"',
        "verify_schedule": '"*:*:0/5"',
        "verify_latest": "2",
        "retention": "{keep_last: 2, keep_hourly: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, "
                     "keep_yearly: 0, keep_within: 0s}",
    }}

    def test_rotation_and_verification_run_by_themselves(self):
        self.small_db("shop", rows=200)
        d = self.start_daemon()
        # Enough backups for the rotation to have something to remove.
        d.wait_log(r"backup \S+ of 'shop' on target 'local'", timeout=120, count=4)
        d.wait_log(r"rotation of 'shop' on target 'local': kept \d+, removed [1-9]", timeout=120)
        d.wait_log(r"prune of target 'local': \d+ pack\(s\)", timeout=60)
        d.wait_log(r"scheduled verification of backup \S+ on target 'local': OK", timeout=120, count=2)
        self.assertNotIn("FAILED", d.log())

        listed = self.env.list()
        # keep_last 2, and backups keep coming every 2 s: a few at most between rotations.
        self.assertLess(len(listed), 8, listed)
        with sqlite3.connect(os.path.join(self.env.state, "catalog.db")) as con:
            kinds = dict(con.execute(
                "SELECT kind, count(*) FROM jobs WHERE result = 'success' GROUP BY kind").fetchall())
        self.assertGreater(kinds.get("rotate", 0), 0, kinds)
        self.assertGreater(kinds.get("prune", 0), 0, kinds)
        self.assertGreater(kinds.get("verify", 0), 0, kinds)
        verified = [b for b in listed if b.get("last_verification")]
        # Backups newer than the last verification run have none yet; the
        # verified ones carry the result and time.
        for b in verified:
            self.assertEqual(b["last_verification"]["result"], "success", b)
            self.assertRegex(b["last_verification"]["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        d.stop()
        self.env.verify_all(check=0)


if __name__ == "__main__":
    T.main()
