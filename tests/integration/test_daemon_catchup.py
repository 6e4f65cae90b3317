#!/usr/bin/env python3
"""A run missed while sqlbakd was down is caught up once at start (like
systemd's Persistent=true), and a daemon that has never run a backup does not
start one at boot."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

SQLBAKD = os.environ.get("SQLBAKD", "")
SQLBAKCTL = os.environ.get("SQLBAKCTL", "")


class CatchUp(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.path.exists(SQLBAKD) and os.path.exists(SQLBAKCTL), "set SQLBAKD and SQLBAKCTL")
        self.dir = tempfile.mkdtemp(prefix="sqlbak-catchup-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.makedirs(os.path.join(self.dir, "repo"))
        self.db = os.path.join(self.dir, "app.db")
        subprocess.run(["sqlite3", self.db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);"],
                       check=True, capture_output=True)
        self.sock = os.path.join(self.dir, "control.sock")
        self.config = os.path.join(self.dir, "sqlbak.yaml")
        self.daemon = None

    def write_config(self, schedule):
        with open(self.config, "w") as f:
            f.write(f"socket: {self.sock}\nstate_dir: {self.dir}/state\n"
                    f"defaults: {{schedule: \"{schedule}\"}}\n"
                    f"targets: {{local: {{type: local, path: {self.dir}/repo}}}}\n"
                    f"databases:\n  - {{name: app, path: {self.db}}}\n")

    def ctl(self, *args):
        return subprocess.run([SQLBAKCTL, "-c", self.config, *args], capture_output=True, text=True, timeout=120)

    def start_daemon(self):
        self.log = open(os.path.join(self.dir, "sqlbakd.log"), "w+")
        self.addCleanup(self.log.close)
        self.daemon = subprocess.Popen([SQLBAKD, "-c", self.config], stderr=self.log)
        self.addCleanup(self.stop_daemon)
        deadline = time.time() + 30
        while not os.path.exists(self.sock):
            self.assertIsNone(self.daemon.poll(), "sqlbakd exited at start")
            self.assertLess(time.time(), deadline)
            time.sleep(0.05)

    def stop_daemon(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.terminate()
            self.daemon.wait(30)

    def log_text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def backups(self):
        r = self.ctl("--offline", "--json", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["backups"]

    def test_missed_run_is_caught_up_once(self):
        # Yearly: the next regular elapse is far away, so any run at start is the catch-up.
        self.write_config("*-01-01 00:00:00")
        r = self.ctl("--offline", "backup")
        self.assertEqual(r.returncode, 0, r.stderr)
        # Pretend the last run was two years ago: the 1 January elapse since then was missed.
        catalog = os.path.join(self.dir, "state", "catalog.db")
        two_years_ms = 2 * 366 * 86400 * 1000
        subprocess.run(["sqlite3", catalog, f"UPDATE jobs SET started_at_ms = started_at_ms - {two_years_ms}"],
                       check=True)
        self.start_daemon()
        deadline = time.time() + 60
        while len(self.backups()) < 2:
            self.assertLess(time.time(), deadline, "no catch-up backup:\n" + self.log_text())
            time.sleep(0.2)
        self.assertIn("missed while sqlbakd was down", self.log_text())
        self.assertIn("started (catch-up)", self.log_text())
        # Once: a restart now (the catalog has a fresh run) does not run it again.
        self.stop_daemon()
        self.start_daemon()
        status = json.loads(self.ctl("--json", "status").stdout)
        self.assertIsNone(status["databases"][0]["running"])
        time.sleep(1)
        self.assertEqual(len(self.backups()), 2)
        self.assertEqual(self.log_text().count("started (catch-up)"), 0)

    def test_no_history_no_run_at_start(self):
        self.write_config("*-01-01 00:00:00")
        self.start_daemon()
        status = json.loads(self.ctl("--json", "status").stdout)
        self.assertIsNone(status["databases"][0]["last_backup"])
        self.assertIsNone(status["databases"][0]["running"])
        time.sleep(1)
        self.assertEqual(self.backups(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
