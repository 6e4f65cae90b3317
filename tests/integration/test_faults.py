#!/usr/bin/env python3
"""Faults of the source database and of the processes: a damaged database is never
published as a backup, a database deleted or replaced during its backup gives either
a backup of one consistent state or a clear error, and SIGKILL of sqlbakd during a
backup or of a restore leaves nothing partial behind. After each, the backups that
were there are intact.
"""

import glob
import os
import signal
import subprocess
import time

import sqlbaktest as T


def corrupt_page(path, page_no, page_size=4096):
    """Overwrites the middle of page PAGE_NO with garbage: a b-tree page SQLite's
    integrity_check reports."""
    with open(path, "r+b") as f:
        f.seek((page_no - 1) * page_size + 40)
        f.write(b"\xde\xad\xbe\xef" * 200)


class SourceFaults(T.EnvTestCase):

    def setUp(self):
        super().setUp()
        self.good = self.env.add_database("good")
        T.create_db(self.good, rows=200, row_bytes=200)
        self.good_id = self.env.backup_one("good")["id"]

    def assert_good_backup_intact(self):
        self.assertIn(self.good_id, self.env.list_ids())
        self.env.verify_all(check=0)

    def manifests(self):
        return sorted(glob.glob(os.path.join(self.env.target, "manifests", "*", "*.json")))

    def damaged_db(self, name, journal_mode):
        path = self.env.add_database(name)
        T.create_db(path, rows=3000, row_bytes=300, journal_mode=journal_mode)
        pages = int(T.pragma(path, "page_count"))
        corrupt_page(path, pages // 2)
        self.assertNotEqual(T.integrity_check(path), "ok", "the test failed to damage the database")
        return path

    def test_corrupt_page_is_never_published(self):
        for mode in ("delete", "wal"):
            with self.subTest(journal_mode=mode):
                name = "damaged_" + mode
                self.damaged_db(name, mode)
                before = self.manifests()
                rc, out, err = self.env.ctl("backup", name, check=1)
                self.assertIn(name, err)
                self.assertRegex(err, r"integrity|malformed|corrupt")
                self.assertEqual(self.manifests(), before, "a damaged database was published")
                self.assertNotIn(name, {b["database"] for b in self.env.list()})
                self.assert_good_backup_intact()

    def test_truncated_database(self):
        path = self.env.add_database("cut")
        T.create_db(path, rows=3000, row_bytes=300)
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size // 2)
        before = self.manifests()
        rc, out, err = self.env.ctl("backup", "cut", check=1)
        self.assertIn("cut", err)
        self.assertEqual(self.manifests(), before)
        self.assert_good_backup_intact()

    def _during_backup(self, action):
        """Starts a slow backup of a ~12 MiB database, runs ACTION(path) while it
        runs, and returns (rc, stderr, digest_before)."""
        path = self.env.add_database("moving")
        T.make_slow_db(path, 12)
        self.env.db_settings["moving"] = dict(T.SLOW_SETTINGS)
        self.env.write_config()
        digest = T.db_digest(path)
        p = self.env.spawn([T.SQLBAKCTL] + self.env.ctl_args("backup", "moving"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        self.assertIsNone(p.poll(), "the backup ended before the fault could be injected")
        action(path)
        out, err = p.communicate(timeout=600)
        T.assert_no_crash(p.returncode, out, err)
        return p.returncode, err, digest

    def check_outcome(self, rc, err, digest_before):
        ids = [b["id"] for b in self.env.list() if b["database"] == "moving"]
        if rc == 0:
            # sqlbak read the file it opened: the backup is of that state, whole.
            self.assertEqual(len(ids), 1)
            restored = self.env.restore(ids[0])
            self.assertEqual(T.db_digest(restored), digest_before)
            self.assertEqual(T.integrity_check(restored), "ok")
        else:
            self.assertIn("moving", err)
            self.assertEqual(ids, [])
        self.assert_good_backup_intact()

    def test_database_deleted_mid_backup(self):
        rc, err, digest = self._during_backup(os.unlink)
        self.check_outcome(rc, err, digest)

    def test_database_replaced_mid_backup(self):
        other = self.env.path("other.db")
        T.create_db(other, rows=50, row_bytes=50)
        rc, err, digest = self._during_backup(lambda path: os.replace(other, path))
        self.check_outcome(rc, err, digest)


class ProcessKills(T.DaemonTestCase):

    def test_kill_9_of_restore(self):
        path = self.env.add_database("big")
        T.make_slow_db(path, 30)
        bid = self.env.backup_one("big")["id"]
        digest = T.db_digest(path)
        dest = os.path.join(self.env.out, "restored.db")
        kills = 0
        for _ in range(6):
            p = self.env.spawn([T.SQLBAKCTL] + self.env.ctl_args("restore", bid, "--to", dest, "--force"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(self.rng.uniform(0.0, 0.4))
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                kills += 1
            p.wait()
            # PATH is absent or a complete, correct database: never partial.
            if os.path.exists(dest):
                self.assertEqual(T.db_digest(dest), digest)
        self.assertGreater(kills, 0, "no restore was interrupted: the test proved nothing")
        self.env.restore(bid, to=dest, force=True)
        self.assertEqual(T.db_digest(dest), digest)
        # The temporary files of the killed restores are gone with that last one.
        leftovers = [f for f in os.listdir(self.env.out) if ".sqlbak-restore-" in f]
        self.assertEqual(leftovers, [])

    def test_kill_9_of_sqlbakd_during_backup(self):
        path = self.slow_db("slow", 12)
        self.small_db("small")
        d = self.start_daemon()
        d.ctl("backup", "slow", check=0)
        d.wait_log(r"backup|job", timeout=60)
        time.sleep(0.5)
        d.signal(signal.SIGKILL)
        d.wait_exit()
        # Nothing half-written is listed; the lock died with the process.
        self.assertEqual([b for b in self.env.list() if b["database"] == "slow"], [])
        d2 = self.start_daemon()
        doc = d2.ctl_json("backup", "--wait", "slow", "small", check=0)
        self.assertEqual(doc["errors"], [])
        self.env.verify_all(check=0)
        slow_id = [b["id"] for b in doc["backups"] if b["database"] == "slow"][0]
        self.assertEqual(T.db_digest(self.env.restore(slow_id)), T.db_digest(path))
        d2.stop()


if __name__ == "__main__":
    T.main()
