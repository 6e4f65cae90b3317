#!/usr/bin/env python3
"""sqlbakd jobs against the real binaries: joining concurrent requests, the scheduler,
reloading the configuration, and SIGTERM during a backup.

A "slow" database (make_slow_db: hex text, step_pages 1, zstd level 19) makes a
first backup last many seconds, so that requests and signals can reliably arrive
while it runs. Waits poll for a condition with a generous limit; nothing asserts
that something was fast, except the spec's 10 s shutdown bound (asserted as < 30 s
to catch hangs).
"""

import datetime
import json
import os
import re
import signal
import subprocess
import time
import unittest

import sqlbaktest as T


def running_job(d, name):
    """The running job of database NAME in `status`, or None."""
    for x in d.status()["databases"]:
        if x["name"] == name:
            return x.get("running")
    raise AssertionError("no database %r in status" % name)


class Joining(T.DaemonTestCase):

    def spawn_ctl(self, d, *args):
        a = [T.SQLBAKCTL] + d.ctl_args(*args, json_out=True)
        return self.env.spawn(a, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def finish(self, p):
        try:
            out, err = p.communicate(timeout=T.COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail("sqlbakctl did not finish: %s" % T.fmt_cmd(p.args))
        T.assert_no_crash(p.returncode, out, err, p.args)
        return p.returncode, out, err

    def test_concurrent_waits_join(self):
        self.slow_db("slow", 10)
        d = self.start_daemon()
        self.assertEqual(d.list_ids(), [])
        p1 = self.spawn_ctl(d, "backup", "slow", "--wait")
        p2 = self.spawn_ctl(d, "backup", "slow", "--wait")
        docs = []
        for p in (p1, p2):
            rc, out, err = self.finish(p)
            self.assertEqual(rc, 0, T.describe(p.args, rc, out, err) + "\n" + d.describe())
            docs.append(json.loads(out))
        ids = [[b["id"] for b in doc["backups"]] for doc in docs]
        self.assertEqual(len(ids[0]), 1, docs)
        self.assertEqual(ids[0], ids[1], "two waits for one database got different backups: %r" % docs)
        self.assertEqual(d.list_ids(), ids[0], "more than one backup was made")
        self.assertEqual(len(re.findall(r"backup of 'slow' started", d.log())), 1, d.describe())
        d.ctl("verify", "--all", check=0)

    def test_join_all_and_named(self):
        """`backup --wait` (every database) and `backup slow --wait` started while a
        plain `backup slow` runs: all three share one backup of slow."""
        self.slow_db("slow", 10)
        self.small_db("small")
        d = self.start_daemon()
        doc = d.ctl_json("backup", "slow")
        job = doc["jobs"][0]["job"]
        self.assertFalse(doc["jobs"][0]["joined"], doc)
        p_all = self.spawn_ctl(d, "backup", "--wait")
        p_one = self.spawn_ctl(d, "backup", "slow", "--wait")
        rc, out_all, err = self.finish(p_all)
        self.assertEqual(rc, 0, out_all + err)
        rc, out_one, err = self.finish(p_one)
        self.assertEqual(rc, 0, out_one + err)
        all_doc, one_doc = json.loads(out_all), json.loads(out_one)
        slow_all = [b["id"] for b in all_doc["backups"] if b["database"] == "slow"]
        slow_one = [b["id"] for b in one_doc["backups"]]
        self.assertEqual(len(slow_one), 1, one_doc)
        self.assertEqual(slow_all, slow_one, (all_doc, one_doc))
        self.assertEqual(sorted(b["database"] for b in all_doc["backups"]), ["slow", "small"])
        self.assertEqual(len(d.list_ids("slow")), 1)
        self.assertEqual(len(d.list_ids("small")), 1)
        self.assertIn("job=%d" % job, d.log())

    def test_offline_backup_locked_while_daemon_backs_up(self):
        """The daemon and `--offline backup` never back up one database at once."""
        self.slow_db("slow", 10)
        d = self.start_daemon()
        d.ctl("backup", "slow", check=0)
        T.wait_until(lambda: (running_job(d, "slow") or {}).get("done", 0) > 0,
                     what="the backup to make progress")
        rc, out, err = self.env.ctl("backup", "slow")
        if running_job(d, "slow") is None:
            self.skipTest("the daemon's backup ended before the offline one was tried")
        info = T.describe([T.SQLBAKCTL] + self.env.ctl_args("backup", "slow"), rc, out, err)
        self.assertEqual(rc, 1, info)
        self.assertIn("slow", out + err, info)
        self.assertRegex((out + err).lower(), r"lock", info)
        self.assertEqual(d.list_ids(), [])
        with self.subTest("the error is on stderr"):
            self.assertClearError(rc, out, err, expected_rc=1, names=["slow"],
                                  args=[T.SQLBAKCTL] + self.env.ctl_args("backup", "slow"))


class Fairness(T.DaemonTestCase):

    def test_small_database_not_starved(self):
        """Two large backups in their last phase: a backup of a tiny database completes
        while they are still running (the daemon interleaves jobs step by step on its
        pool, so a large database cannot starve a small one; docs in daemon/daemon.h)."""
        self.slow_db("big1", 10)
        self.slow_db("big2", 10)
        self.small_db("small")
        d = self.start_daemon()
        d.ctl("backup", "big1", "big2", check=0)
        # Both in their last phase (every page read; compressing, checking, committing).
        def last_phase(n):
            j = running_job(d, n)
            return bool(j) and j["total"] > 0 and j["done"] >= j["total"] - 1
        T.wait_until(lambda: last_phase("big1") and last_phase("big2"), interval=0.02,
                     what="both large backups to reach their last phase")
        t0 = time.monotonic()
        rc, out, err = d.ctl("backup", "small", "--wait", check=0)
        print("the small backup took %.1f s while two large ones ran" % (time.monotonic() - t0))
        self.assertRegex(out, T.BACKUP_ID_RE)
        still = [n for n in ("big1", "big2") if running_job(d, n)]
        self.assertEqual(still, ["big1", "big2"],
                         "the small backup had to wait for a large one to end\n" + d.describe())

    def test_waiting_client_killed(self):
        """A `backup --wait` client that dies does not disturb the job or the daemon."""
        self.slow_db("slow", 6)
        d = self.start_daemon()
        p = self.env.spawn([T.SQLBAKCTL] + d.ctl_args("backup", "slow", "--wait"),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        T.wait_until(lambda: running_job(d, "slow"), what="the backup to start")
        p.kill()
        p.wait(timeout=60)
        T.wait_until(lambda: running_job(d, "slow") is None, timeout=T.COMMAND_TIMEOUT,
                     what="the backup to end")
        self.assertEqual(len(d.list_ids("slow")), 1, d.describe())
        self.assertTrue(d.running())
        d.ctl("verify", "--all", check=0)


class Schedule(T.DaemonTestCase):

    env_kwargs = {"extra_defaults": {"schedule": '"*:*:0/3"'}}

    def test_scheduled_backups(self):
        self.small_db("tick")
        d = self.start_daemon()
        ids = T.wait_until(lambda: (lambda i: i if len(i) >= 2 else None)(d.list_ids()),
                           what=lambda: "2 scheduled backups\n" + d.describe())
        self.assertEqual(len(set(ids)), len(ids))
        d.wait_log(r"backup of 'tick' started \(schedule\)", count=2)
        self.assertNotIn("started (request)", d.log())
        st = d.status()["databases"][0]
        self.assertEqual(st["schedule"], "*:*:0/3", st)
        self.assertIsInstance(st["next_backup"], str, st)
        self.assertIsInstance(st["last_backup"], dict, st)
        self.assertEqual(d.stop(), 0, d.describe())
        self.env.verify_all(check=0)

    def test_due_while_running_is_skipped(self):
        self.slow_db("slow", 10)
        d = self.start_daemon()
        d.wait_log(r"backup of 'slow' started \(schedule\)")
        lines = d.wait_log(r"[^\n]*already running[^\n]*")
        self.assertIn("slow", lines[0])
        self.assertRegex(lines[0], r"skip")
        # Only the one job ran meanwhile.
        self.assertEqual(len(re.findall(r"backup of 'slow' started", d.log())), 1, d.describe())
        self.assertIsInstance(running_job(d, "slow"), dict)

    def test_catch_up_after_downtime(self):
        """A run missed while sqlbakd was down is caught up once at start."""
        self.small_db("tick")
        self.env.backup_one("tick")  # recorded in the catalog by sqlbakctl --offline
        t_last = time.time()
        # Let at least one 3-second elapse pass while no daemon runs.
        T.wait_until(lambda: time.time() > t_last + 4, what="an elapse to pass")
        d = self.start_daemon()
        d.wait_log(r"backup of 'tick' started \(catch-up\)")
        self.assertRegex(d.log(), r"missed")
        self.assertEqual(len(re.findall(r"started \(catch-up\)", d.log())), 1, d.describe())
        self.assertEqual(d.stop(), 0, d.describe())


class Reload(T.DaemonTestCase):

    def names(self, d):
        return sorted(x["name"] for x in d.status()["databases"])

    def test_sighup_and_ctl_reload(self):
        self.small_db("a")
        d = self.start_daemon()
        self.assertEqual(self.names(d), ["a"])
        self.small_db("b")
        d.signal(signal.SIGHUP)
        T.wait_until(lambda: self.names(d) == ["a", "b"], what="status with 2 databases after SIGHUP")
        d.wait_log(r"configuration reloaded: 2 database")
        self.small_db("c")
        rc, out, err = d.ctl("reload", check=0)
        self.assertIn("3", out)
        self.assertEqual(self.names(d), ["a", "b", "c"])
        # The new database is usable at once.
        rc, out, _ = d.ctl("backup", "c", "--wait", check=0)
        self.assertRegex(out, T.BACKUP_ID_RE)
        self.assertEqual(len(d.list_ids("c")), 1)
        doc = d.ctl_json("reload")
        self.assertIsInstance(doc, dict)
        self.assertEqual(d.stop(), 0, d.describe())

    def test_invalid_config_keeps_old(self):
        self.small_db("a")
        self.small_db("b")
        d = self.start_daemon()
        with open(self.env.config) as f:
            good = f.read()
        cfg = re.escape(self.env.config)
        bad_texts = [
            ("bad YAML", good + "oops: [unclosed\n  - {x: \n"),
            ("unknown key", good.replace("defaults:\n", "defaults:\n  no_such_key: 1\n")),
            ("duplicate database", good + "  - name: a\n    path: %s\n" % json.dumps(self.env.db_path("a"))),
        ]
        for what, text in bad_texts:
            with self.subTest(what=what):
                self.env.write_config(text)
                rc, out, err = d.ctl("reload")
                self.assertClearError(rc, out, err, expected_rc=1, names=[self.env.config],
                                      args=d.ctl_args("reload"))
                self.assertRegex(err, cfg + r":\d+:\d+", "no FILE:LINE:COLUMN")
                self.assertTrue(d.running(), d.describe())
                self.assertEqual(self.names(d), ["a", "b"])
        self.assertRegex(d.log(), r"previous one stays")
        n_before = len(re.findall(r"previous one stays", d.log()))

        # The same through SIGHUP: logged, refused, the daemon keeps its old config.
        self.env.write_config(bad_texts[0][1])
        d.signal(signal.SIGHUP)
        d.wait_log(r"previous one stays", count=n_before + 1)
        self.assertRegex(d.log(), cfg + r":\d+:\d+")
        self.assertTrue(d.running(), d.describe())
        self.assertEqual(self.names(d), ["a", "b"])
        d.ctl("backup", "--wait", check=0)

        # Fixed again: reload works.
        self.env.databases.pop("b")
        self.env.write_config()
        d.ctl("reload", check=0)
        self.assertEqual(self.names(d), ["a"])
        self.assertEqual(d.stop(), 0, d.describe())

    def test_reload_broken_config_with_config_option_only(self):
        """`sqlbakctl -c FILE reload` after FILE was broken (no -s): the user must learn
        that FILE is invalid (FILE:LINE:COLUMN), not be sent to another socket."""
        self.small_db("a")
        d = self.start_daemon()
        with open(self.env.config) as f:
            good = f.read()
        self.env.write_config(good + "oops: [\n")
        a = ["-c", self.env.config, "reload"]
        rc, out, err = T.run_ctl(a)
        T.assert_no_crash(rc, out, err, a)
        info = T.describe([T.SQLBAKCTL] + a, rc, out, err)
        self.assertNotEqual(rc, 0, info)
        self.assertRegex(err, re.escape(self.env.config) + r":\d+:\d+", info)
        self.assertEqual(self.names(d), ["a"])

    def test_reload_schedule_and_socket_change(self):
        self.small_db("a")
        d = self.start_daemon()
        st = d.status()["databases"][0]
        with open(self.env.config) as f:
            text = f.read()
        new_sock = self.env.path("other.sock")
        self.env.write_config(text.replace("\ndefaults:\n", "\ndefaults:\n  schedule: \"Mon *-*-* 03:17:00\"\n")
                              .replace(json.dumps(d.socket), json.dumps(new_sock)))
        d.ctl("reload", check=0)
        st2 = d.status()["databases"][0]
        self.assertEqual(st2["schedule"], "Mon *-*-* 03:17:00", st2)
        self.assertNotEqual(st2["next_backup"], st["next_backup"], (st, st2))
        nb = T.parse_time(st2["next_backup"])
        local = datetime.datetime.fromtimestamp(nb.timestamp())
        self.assertEqual((local.weekday(), local.hour, local.minute, local.second), (0, 3, 17, 0), st2)
        # The socket path does not move under running clients; the old one still answers.
        self.assertFalse(os.path.exists(new_sock))
        self.assertTrue(os.path.exists(d.socket))
        self.assertEqual(d.status()["pid"], d.pid)
        self.assertEqual(d.stop(), 0, d.describe())

    def test_reload_while_backup_runs(self):
        """Running jobs finish across a reload, even one whose database was removed."""
        self.slow_db("slow", 8)
        self.small_db("small")
        d = self.start_daemon()
        p = self.env.spawn([T.SQLBAKCTL] + d.ctl_args("backup", "slow", "--wait", json_out=True),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        T.wait_until(lambda: running_job(d, "slow"), what="the backup to start")
        # Reload adding a database: the job goes on.
        self.small_db("other")
        d.ctl("reload", check=0)
        self.assertEqual(self.names(d), ["other", "slow", "small"])
        self.assertIsInstance(running_job(d, "slow"), dict, "a reload lost the running job")
        # Reload removing the database being backed up: the job still finishes.
        self.env.databases.pop("slow")
        self.env.write_config()
        d.signal(signal.SIGHUP)
        T.wait_until(lambda: self.names(d) == ["other", "small"], what="the reload")
        out, err = p.communicate(timeout=T.COMMAND_TIMEOUT)
        T.assert_no_crash(p.returncode, out, err, p.args)
        self.assertEqual(p.returncode, 0, out + err + d.describe())
        doc = json.loads(out)
        self.assertEqual(len(doc["backups"]), 1, doc)
        self.assertIn(doc["backups"][0]["id"], self.env.list_ids())
        self.assertTrue(d.running(), d.describe())
        self.env.verify_all(check=0)
        self.assertEqual(d.stop(), 0, d.describe())


class Shutdown(T.DaemonTestCase):

    def sigterm_during_backup(self, phase):
        """SIGTERM while database slow is backed up, in PHASE: "copy" (pages still being
        read) or "finish" (every page read: compression, checks, the manifest)."""
        self.small_db("small")
        # The last phase must outlast the daemon's shutdown deadline: a larger database.
        self.slow_db("slow", 20 if phase == "copy" else 40)
        d = self.start_daemon()
        d.ctl("backup", "small", "--wait", check=0)
        before = sorted(self.env.list_ids(), reverse=True)
        self.assertEqual(len(before), 1)
        manifests_before = T.files_under(os.path.join(self.env.target, "manifests"))

        waiter = self.env.spawn([T.SQLBAKCTL] + d.ctl_args("backup", "slow", "--wait"),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if phase == "copy":
            cond = lambda j: 0 < j["done"] < j["total"] * 3 // 4  # noqa: E731
        else:
            cond = lambda j: j["total"] > 0 and j["done"] >= j["total"] - 1  # noqa: E731
        job = T.wait_until(lambda: (lambda j: j if j and cond(j) else None)(running_job(d, "slow")),
                           interval=0.01, what="the backup to reach its %s phase" % phase)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        rc = d.wait_exit(120)
        took = time.monotonic() - t0
        print("SIGTERM at %d/%d pages: sqlbakd exited %.1f s later, status %s" % (
            job["done"], job["total"], took, rc))
        self.assertEqual(rc, 0, d.describe())
        self.assertLess(took, 30, "sqlbakd took %.1f s to stop (the spec allows 10 s)\n%s" % (
            took, d.describe()))
        out, err = waiter.communicate(timeout=T.COMMAND_TIMEOUT)
        T.assert_no_crash(waiter.returncode, out, err, waiter.args)
        completed = re.search(r"backup (\S+) of 'slow'", d.log())
        if completed:
            # The job got to its commit point within the shutdown deadline: a complete
            # backup, which is fine. The checks below still apply to it.
            print("the backup completed before SIGTERM took effect: %s" % completed.group(1))
            before = sorted(before + [completed.group(1)], reverse=True)
        else:
            # The client waiting for the backup is told it did not complete.
            self.assertEqual(waiter.returncode, 1, T.describe(waiter.args, waiter.returncode, out, err))
            self.assertNotRegex(out, T.BACKUP_ID_RE)
            self.assertRegex(d.log(), r"cancel|did not stop", d.describe())

        # Nothing of the cancelled backup is listed; no partial files remain.
        self.assertEqual(sorted(self.env.list_ids(), reverse=True), before)
        if not completed:
            self.assertEqual(T.files_under(os.path.join(self.env.target, "manifests")), manifests_before)
        for tmp in (os.path.join(self.env.target, "tmp"), os.path.join(self.env.state, "tmp")):
            with self.subTest("no partial files", dir=tmp):
                left = T.files_under(tmp) if os.path.isdir(tmp) else []
                self.assertEqual(left, [], "partial files left behind in %s\n%s" % (tmp, d.describe()))
        self.env.verify_all(check=0)

        # The lock was released: an offline backup of the same database succeeds (with
        # fast settings: the lock is what matters here).
        self.env.db_settings["slow"] = {}
        self.env.write_config()
        b = self.env.backup_one("slow")
        self.assertIn(b["id"], self.env.list_ids())
        self.env.verify_all(check=0)
        self.assertEqual(T.integrity_check(self.env.restore(b["id"])), "ok")

    def test_sigterm_while_copying(self):
        self.sigterm_during_backup("copy")

    def test_sigterm_while_finishing(self):
        self.sigterm_during_backup("finish")

    def test_sigterm_idle_then_restart(self):
        self.small_db("a")
        d = self.start_daemon()
        self.assertEqual(d.stop(), 0, d.describe())
        self.assertRegex(d.log(), r"stopping \(SIGTERM\)")
        # A new daemon starts on the same path afterwards.
        d2 = self.start_daemon()
        self.assertEqual(d2.stop(), 0, d2.describe())


if __name__ == "__main__":
    T.main()
