#!/usr/bin/env python3
"""sqlbakd against the real binaries: systemd notification, control commands, bad
control-socket input, restore, a second daemon, logging.

Every test starts its own sqlbakd on a config in a fresh temporary directory (socket,
notify socket, state and repository all inside it); daemons are killed and the
directory removed in cleanup. Waits poll for a condition with a generous limit
($SQLBAK_TEST_DAEMON_WAIT, default 60 s); nothing asserts that something was fast.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

import sqlbaktest as T


def statuses(msgs):
    return [m["fields"]["STATUS"] for m in msgs if "STATUS" in m["fields"]]


def first_index(msgs, key, value=None):
    for i, m in enumerate(msgs):
        if key in m["fields"] and (value is None or m["fields"][key] == value):
            return i
    return None


class Notify(T.DaemonTestCase):
    """sd_notify: READY, STATUS, WATCHDOG, RELOADING/READY, STOPPING."""

    def listener(self, on_message=None):
        path = self.env.path("notify.sock")
        n = T.NotifyListener(path, on_message=on_message)
        self.addCleanup(n.close)
        return n

    def test_notify_lifecycle(self):
        self.slow_db("slow", 6)
        sock = os.path.join(self.env.root, "control.sock")
        at_ready = []

        def on_message(msg):
            # Runs as READY=1 arrives: the control socket must already listen.
            if msg["fields"].get("READY") == "1" and not at_ready:
                exists = os.path.exists(sock)
                connects = False
                if exists:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(10)
                    try:
                        s.connect(sock)
                        connects = True
                    except OSError:
                        pass
                    finally:
                        s.close()
                at_ready.append((exists, connects))

        n = self.listener(on_message)
        d = self.start_daemon(ready=False, notify=n.path, watchdog_usec=2000000)

        # READY=1, from the daemon itself, once the control socket listens.
        ready = n.wait_field("READY", "1")[0]
        self.assertEqual(at_ready[:1], [(True, True)],
                         "READY=1 arrived before the control socket listened\n" + n.dump())
        if ready["pid"] is not None:
            self.assertEqual(ready["pid"], d.pid, "READY=1 not sent by sqlbakd\n" + n.dump())
        d.wait_ready()
        self.assertIsNone(first_index(n.snapshot(), "STOPPING"), n.dump())
        n.wait_field("STATUS")

        # WATCHDOG=1 repeatedly (WATCHDOG_USEC=2 s: a ping about every second).
        pings = n.wait_field("WATCHDOG", "1", count=3)
        for p in pings:
            if p["pid"] is not None:
                self.assertEqual(p["pid"], d.pid)

        # STATUS= kept current while a backup runs.
        before = len(n.snapshot())
        rc, out, err = d.ctl("backup", "--wait", check=0)
        self.assertRegex(out, T.BACKUP_ID_RE)
        n.wait_for(lambda msgs: any("idle" in s for s in statuses(msgs[before:])),
                   what="STATUS=... idle after the backup")
        during = n.snapshot()[before:]
        busy = [s for s in statuses(during) if "backing up" in s]
        self.assertGreaterEqual(len(set(busy)), 2,
                                "STATUS did not change while the backup ran\n" + n.dump())
        self.assertTrue(any("slow" in s for s in busy), n.dump())
        last = statuses(n.snapshot())[-1]
        self.assertIn("idle", last, n.dump())
        self.assertIn("slow ok", last, n.dump())
        # The loop keeps pinging while a backup runs (it is not blocked by the work).
        first_busy = next(i for i, m in enumerate(during) if "backing up" in m["fields"].get("STATUS", ""))
        idle = next(i for i, m in enumerate(during)
                    if i > first_busy and "idle" in m["fields"].get("STATUS", ""))
        span = during[idle]["t"] - during[first_busy]["t"]
        pings_during = [m for m in during[first_busy:idle] if m["fields"].get("WATCHDOG") == "1"]
        print("backup ran %.1f s with %d watchdog pings" % (span, len(pings_during)))
        if span > 6:
            self.assertGreaterEqual(len(pings_during), 2,
                                    "no watchdog pings while a backup ran\n" + n.dump())

        # SIGHUP: RELOADING=1 + MONOTONIC_USEC, then READY=1.
        before = len(n.snapshot())
        t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
        d.signal(signal.SIGHUP)
        reloading = n.wait_field("RELOADING", "1", since=before)[0]
        idx = n.snapshot().index(reloading)
        n.wait_field("READY", "1", since=idx + 1)
        t1 = time.clock_gettime(time.CLOCK_MONOTONIC)
        self.assertIn("MONOTONIC_USEC", reloading["fields"], n.dump())
        usec = int(reloading["fields"]["MONOTONIC_USEC"])
        self.assertGreaterEqual(usec, int(t0 * 1e6) - 1000, "MONOTONIC_USEC not CLOCK_MONOTONIC")
        self.assertLessEqual(usec, int(t1 * 1e6) + 1000, "MONOTONIC_USEC not CLOCK_MONOTONIC")
        self.assertIsNone(first_index(n.snapshot()[before:idx], "READY"),
                          "READY=1 before RELOADING=1\n" + n.dump())
        d.wait_ready()

        # SIGTERM: STOPPING=1 (after READY), exit 0.
        d.signal(signal.SIGTERM)
        n.wait_field("STOPPING", "1")
        rc = d.wait_exit()
        self.assertEqual(rc, 0, d.describe())
        msgs = n.snapshot()
        self.assertLess(first_index(msgs, "READY", "1"), first_index(msgs, "STOPPING", "1"), n.dump())
        for m in msgs:
            if m["pid"] is not None:
                self.assertEqual(m["pid"], d.pid, "notify message from another process\n" + n.dump())
            self.assertNotIn("hook_error", m)

    def test_stopping_never_before_ready(self):
        """SIGTERM as soon as the control socket appears: exit 0, STOPPING only after READY."""
        for attempt in range(3):
            with self.subTest(attempt=attempt):
                n = T.NotifyListener(self.env.path("notify-%d.sock" % attempt))
                try:
                    sock = self.env.path("control-%d.sock" % attempt)
                    text = self.env.config_text().replace(
                        json.dumps(os.path.join(self.env.root, "control.sock")), json.dumps(sock))
                    cfg = self.env.path("config-%d.yaml" % attempt)
                    with open(cfg, "w") as f:
                        f.write(text)
                    d = T.DaemonProcess(self.env, config=cfg, socket_path=sock, notify=n.path)
                    T.wait_until(lambda: os.path.exists(sock) or not d.running(), interval=0.001,
                                 what=lambda: "the control socket\n" + d.describe())
                    d.signal(signal.SIGTERM)
                    rc = d.wait_exit(30)
                    self.assertEqual(rc, 0, d.describe())
                    msgs = n.snapshot()
                    stop = first_index(msgs, "STOPPING", "1")
                    ready = first_index(msgs, "READY", "1")
                    if stop is not None:
                        self.assertIsNotNone(ready, "STOPPING=1 without READY=1\n" + n.dump())
                        self.assertLess(ready, stop, "STOPPING=1 before READY=1\n" + n.dump())
                finally:
                    n.close()

    def test_sighup_while_stopping(self):
        """A SIGHUP that arrives while sqlbakd is stopping (a job still finishing) must not
        announce READY=1 again after STOPPING=1, and the daemon still exits 0."""
        self.slow_db("slow", 10)
        n = self.listener()
        d = self.start_daemon(notify=n.path)
        d.ctl("backup", "slow", check=0)
        T.wait_until(lambda: (lambda j: j and j["total"] > 0 and j["done"] >= j["total"] - 1)(
            d.status()["databases"][0]["running"]), interval=0.02,
            what="the backup to reach its last phase")
        d.signal(signal.SIGTERM)
        stop = n.wait_field("STOPPING", "1")[0]
        if d.running():
            try:
                d.signal(signal.SIGHUP)
            except ProcessLookupError:
                pass
        rc = d.wait_exit(60)
        self.assertEqual(rc, 0, d.describe())
        msgs = n.snapshot()
        after = msgs[msgs.index(stop) + 1:]
        self.assertEqual([m["text"] for m in after if "READY" in m["fields"] or "RELOADING" in m["fields"]],
                         [], "READY/RELOADING after STOPPING=1\n" + n.dump() + "\n" + d.describe())

    def test_broken_notify_socket_is_ignored(self):
        """NOTIFY_SOCKET naming nothing: sqlbakd still starts, serves and stops cleanly."""
        self.small_db("a")
        d = self.start_daemon(notify=self.env.path("nobody-listens.sock"), watchdog_usec=2000000)
        self.assertEqual(d.status()["databases"][0]["name"], "a")
        self.assertEqual(d.stop(), 0, d.describe())

    def test_no_notify_socket(self):
        """Without NOTIFY_SOCKET (and a stray WATCHDOG_USEC) all of it is skipped."""
        self.small_db("a")
        d = self.start_daemon(extra_env={"WATCHDOG_USEC": "2000000"})
        d.ctl("backup", "--wait", check=0)
        self.assertEqual(d.stop(), 0, d.describe())


class ControlCommands(T.DaemonTestCase):

    def test_status_human_and_json(self):
        self.small_db("alpha")
        self.small_db("beta")
        d = self.start_daemon()
        p = subprocess.run([T.SQLBAKD, "--version"], capture_output=True, text=True, timeout=60)
        version = re.search(r"\d+\.\d+\.\d+\S*", p.stdout)
        doc = d.status()
        self.assertIsInstance(doc.get("version"), str, doc)
        self.assertTrue(doc["version"], doc)
        if version:
            self.assertEqual(doc["version"], version.group(0), p.stdout)
        self.assertEqual(doc.get("pid"), d.pid, doc)
        self.assertIsInstance(doc.get("uptime_seconds"), int, doc)
        names = sorted(x["name"] for x in doc["databases"])
        self.assertEqual(names, ["alpha", "beta"], doc)
        now = time.time()
        for x in doc["databases"]:
            self.assertIn("next_backup", x, doc)
            self.assertIsInstance(x["next_backup"], str, doc)  # the default schedule is daily
            nb = T.parse_time(x["next_backup"]).timestamp()
            self.assertGreater(nb, now - 5, doc)
            self.assertLess(nb, now + 26 * 3600, doc)
            self.assertIsNone(x.get("running"), doc)
        rc, out, err = d.ctl("status", check=0)
        self.assertIn("sqlbakd " + doc["version"], out)
        self.assertIn("alpha", out)
        self.assertIn("beta", out)
        self.assertEqual(err.strip(), "")

    def test_backup_wait_list_show_verify(self):
        self.small_db("alpha")
        self.small_db("beta")
        d = self.start_daemon()
        self.assertEqual(d.list_ids(), [])
        rc, out, err = d.ctl("backup", "alpha", "--wait", check=0)
        ids = T.BACKUP_ID_RE.findall(out)
        self.assertEqual(len(ids), 1, out)
        bid = ids[0]
        listed = d.ctl_json("list")["backups"]
        self.assertEqual([b["id"] for b in listed], [bid])
        self.assertEqual(listed[0]["database"], "alpha")
        rc, out, _ = d.ctl("list", check=0)
        self.assertIn(bid, out)
        # The offline view of the repository agrees with the daemon's.
        self.assertEqual(self.env.list_ids(), [bid])

        rc, out, _ = d.ctl("show", bid, check=0)
        self.assertIn(bid, out)
        self.assertIn("alpha", out)
        doc = d.ctl_json("show", bid)
        self.assertEqual(doc["manifest"]["id"], bid, doc)
        self.assertEqual(doc["manifest"]["database"], "alpha", doc)

        # --json backup --wait of every database: one backup each.
        doc = d.ctl_json("backup", "--wait")
        self.assertEqual(doc.get("errors"), [], doc)
        self.assertEqual(sorted(b["database"] for b in doc["backups"]), ["alpha", "beta"], doc)
        all_ids = d.list_ids()
        self.assertEqual(len(all_ids), 3, all_ids)
        created = [T.parse_time(b["created"]) for b in d.ctl_json("list")["backups"]]
        self.assertEqual(sorted(created, reverse=True), created, "list is not newest first")
        self.assertEqual(d.list_ids("beta"), [b["id"] for b in doc["backups"] if b["database"] == "beta"])

        rc, out, err = d.ctl("verify", "--all", check=0)
        for i in all_ids:
            self.assertIn(i, out)
        doc = d.ctl_json("verify", "--all")
        self.assertEqual(len(doc["results"]), 3, doc)
        self.assertTrue(all(r["ok"] for r in doc["results"]), doc)
        d.ctl("verify", bid, check=0)

        # status shows the last backup of each database.
        st = d.status()
        for x in st["databases"]:
            self.assertIsInstance(x["last_backup"], dict, st)
            self.assertIn(x["last_backup"]["id"], all_ids, st)
            self.assertEqual(x["last_backup"]["result"], "success", st)
        self.assertEqual(d.stop(), 0, d.describe())

    def test_show_unknown_id(self):
        self.small_db("alpha")
        d = self.start_daemon()
        rc, out, err = d.ctl("show", "20200101T000000Z-abcdef")
        self.assertClearError(rc, out, err, expected_rc=1, names=["20200101T000000Z-abcdef"],
                              args=d.ctl_args("show", "20200101T000000Z-abcdef"))

    def test_backup_without_wait_returns_at_once(self):
        self.slow_db("slow", 10)
        d = self.start_daemon()
        rc, out, err = d.ctl("backup", check=0)
        # It returned while the job still runs (the job takes many seconds).
        st = d.status()
        running = st["databases"][0]["running"]
        self.assertIsInstance(running, dict, "backup did not start, or sqlbakctl waited for it: %r" % st)
        # A second request joins the running job.
        rc, out2, err2 = d.ctl("backup", "slow", check=0)
        with self.subTest("the message of `backup` without --wait"):
            info = "stdout: %r stderr: %r" % (out, err)
            self.assertIn("slow", out, info)
            self.assertRegex(out, r"started", info)
            self.assertNotRegex(out, T.BACKUP_ID_RE)
        with self.subTest("the message of `backup` joining a running job"):
            self.assertRegex(out2, r"already running|joined", "stdout: %r stderr: %r" % (out2, err2))
            self.assertIn("job %s" % running["job"], out2)
        doc = d.ctl_json("backup", "slow")
        self.assertEqual([j["job"] for j in doc["jobs"]], [running["job"]], doc)
        self.assertTrue(doc["jobs"][0]["joined"], doc)

    def test_unknown_database(self):
        self.small_db("alpha")
        d = self.start_daemon()
        for args in (("backup", "nosuchdb"), ("backup", "nosuchdb", "--wait"),
                     ("backup", "alpha", "nosuchdb")):
            with self.subTest(args=args):
                rc, out, err = d.ctl(*args)
                self.assertClearError(rc, out, err, expected_rc=1, names=["nosuchdb"],
                                      args=d.ctl_args(*args))
        # Nothing was started for the good name in the mixed request.
        self.assertIsNone(d.status()["databases"][0]["running"])
        self.assertEqual(d.list_ids(), [])

    def test_daemon_not_running(self):
        self.small_db("alpha")
        missing = self.env.path("no-such-dir", "control.sock")
        for args in (("status",), ("backup", "--wait"), ("list",), ("reload",), ("verify", "--all")):
            with self.subTest(args=args):
                a = ["-s", missing, "-c", self.env.config] + list(args)
                rc, out, err = T.run_ctl(a)
                self.assertClearError(rc, out, err, expected_rc=3, names=[missing], args=a)
        # A socket file with nobody listening (a daemon that was killed) is unreachable too.
        dead = self.env.path("dead.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(dead)
        s.close()
        a = ["-s", dead, "status"]
        rc, out, err = T.run_ctl(a)
        self.assertClearError(rc, out, err, expected_rc=3, names=[dead], args=a)

    def test_restore_runs_in_sqlbakctl(self):
        db = self.small_db("alpha", rows=300)
        d = self.start_daemon()
        rc, out, _ = d.ctl("backup", "alpha", "--wait", check=0)
        bid = T.BACKUP_ID_RE.search(out).group(0)
        to = self.env.path("out", "restored.db")
        # Without --offline: sqlbakctl restores by itself (the daemon only runs).
        d.ctl("restore", bid, "--to", to, check=0)
        self.assertEqual(T.db_digest(to), T.db_digest(db))
        self.assertEqual(T.integrity_check(to), "ok")
        # Even with the daemon gone it works: it never needed it.
        self.assertEqual(d.stop(), 0, d.describe())
        to2 = self.env.path("out", "restored2.db")
        d.ctl("restore", bid, "--to", to2, check=0)
        self.assertEqual(T.db_digest(to2), T.db_digest(db))

    def test_raw_restore_request_refused(self):
        self.small_db("alpha")
        d = self.start_daemon()
        rc, out, _ = d.ctl("backup", "--wait", check=0)
        bid = T.BACKUP_ID_RE.search(out).group(0)
        to = self.env.path("out", "by-daemon.db")
        for args in ({"what": bid, "to": to}, {"what": bid, "to": to, "force": True},
                     {"what": "alpha", "at": "2099-01-01T00:00:00Z", "to": to}):
            frames = T.control_request(d.socket, "restore", args)
            self.assertEqual(len(frames), 1, frames)
            self.assertIs(frames[0].get("ok"), False, frames)
            self.assertTrue(frames[0]["error"]["message"], frames)
        self.assertFalse(os.path.exists(to), "the daemon wrote a file for a client")
        self.assertEqual(os.listdir(self.env.out), [])
        d.status()

    def test_second_daemon_refused(self):
        self.small_db("alpha")
        d1 = self.start_daemon()
        d2 = T.DaemonProcess(self.env)
        rc = d2.wait_exit()
        self.assertNotEqual(rc, 0, d2.describe())
        self.assertGreater(rc, 0, "killed by a signal\n" + d2.describe())
        self.assertRegex(d2.log(), r"another sqlbakd", d2.describe())
        self.assertIn(d1.socket, d2.log())
        # The first one is unharmed and still owns the socket.
        self.assertTrue(os.path.exists(d1.socket))
        st = d1.status()
        self.assertEqual(st["pid"], d1.pid, st)
        d1.ctl("backup", "--wait", check=0)
        self.assertEqual(d1.stop(), 0, d1.describe())

    def test_stale_socket_after_kill(self):
        """A daemon killed with SIGKILL leaves its socket file; the next one starts anyway."""
        self.small_db("alpha")
        d1 = self.start_daemon()
        d1.signal(signal.SIGKILL)
        self.assertEqual(d1.wait_exit(), -signal.SIGKILL)
        self.assertTrue(os.path.exists(d1.socket))
        d2 = self.start_daemon()
        self.assertEqual(d2.status()["pid"], d2.pid)
        self.assertEqual(d2.stop(), 0, d2.describe())

    def test_sigint_exits_zero(self):
        self.small_db("alpha")
        d = self.start_daemon()
        d.signal(signal.SIGINT)
        self.assertEqual(d.wait_exit(), 0, d.describe())
        self.assertRegex(d.log(), r"SIGINT")


class Startup(T.DaemonTestCase):
    """sqlbakd's own start-up errors and --check-config."""

    def run_daemon(self, *args):
        p = subprocess.run([T.SQLBAKD] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=T.DAEMON_WAIT)
        T.assert_no_crash(p.returncode if p.returncode <= 3 else None, p.stdout, p.stderr,
                          [T.SQLBAKD] + list(args))
        return p.returncode, p.stdout, p.stderr

    def test_check_config(self):
        self.small_db("alpha")
        rc, out, err = self.run_daemon("--check-config", "-c", self.env.config)
        self.assertEqual(rc, 0, out + err)
        self.assertFalse(os.path.exists(os.path.join(self.env.root, "control.sock")))
        with open(self.env.config) as f:
            good = f.read()
        self.env.write_config(good.replace("defaults:\n", "defaults:\n  bogus_key: 1\n  schedule: \"nope nope\"\n"))
        rc, out, err = self.run_daemon("--check-config", "-c", self.env.config)
        self.assertNotEqual(rc, 0, out + err)
        errors = re.findall(re.escape(self.env.config) + r":(\d+):(\d+): ", err)
        self.assertGreaterEqual(len(errors), 2, "every error as FILE:LINE:COLUMN: message\n" + err)
        self.assertIn(("5", "3"), errors, err)

    def test_invalid_config_at_start(self):
        self.small_db("alpha")
        with open(self.env.config) as f:
            good = f.read()
        self.env.write_config(good + "oops: [\n")
        d = T.DaemonProcess(self.env)
        rc = d.wait_exit()
        self.assertGreater(rc, 0, d.describe())
        self.assertRegex(d.log(), re.escape(self.env.config) + r":\d+:\d+", d.describe())
        self.assertFalse(os.path.exists(d.socket))

    def test_socket_directory_missing(self):
        self.small_db("alpha")
        sock = self.env.path("missing-dir", "control.sock")
        with open(self.env.config) as f:
            text = f.read()
        self.env.write_config(text.replace(json.dumps(os.path.join(self.env.root, "control.sock")),
                                           json.dumps(sock)))
        d = T.DaemonProcess(self.env, socket_path=sock)
        rc = d.wait_exit()
        self.assertGreater(rc, 0, d.describe())
        self.assertIn(sock, d.log(), d.describe())
        self.assertNotIn("terminate called", d.log())

    def test_socket_path_is_a_regular_file(self):
        self.small_db("alpha")
        sock = os.path.join(self.env.root, "control.sock")
        with open(sock, "w") as f:
            f.write("precious\n")
        d = T.DaemonProcess(self.env)
        rc = d.wait_exit()
        self.assertGreater(rc, 0, d.describe())
        self.assertIn(sock, d.log(), d.describe())
        with open(sock) as f:
            self.assertEqual(f.read(), "precious\n", "sqlbakd replaced a file that is not a socket")

    def test_socket_permissions(self):
        """The socket is not world-usable, and sqlbakd refuses a peer that is neither
        root, its own user nor in socket_group even if the file mode would let it in."""
        self.small_db("alpha")
        d = self.start_daemon()
        mode = os.stat(d.socket).st_mode & 0o777
        self.assertEqual(mode & 0o007, 0, "control socket mode %o is world-accessible" % mode)
        if os.geteuid() != 0:
            self.skipTest("needs root to act as another user")
        os.chmod(self.env.root, 0o755)
        os.chmod(d.socket, 0o666)
        code = ("import socket,json,sys\n"
                "s=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM); s.settimeout(60)\n"
                "s.connect(sys.argv[1])\n"
                "b=json.dumps({'v':1,'command':'status','args':{}}).encode()\n"
                "try:\n"
                "  s.sendall(b+b'\\n')\n"
                "except OSError:\n"
                "  pass\n"
                "d=b''\n"
                "while True:\n"
                "  try:\n"
                "    c=s.recv(65536)\n"
                "  except ConnectionResetError:\n"
                "    break\n"
                "  if not c: break\n"
                "  d+=c\n"
                "sys.stdout.write(d.decode())\n")
        py = shutil.which("python3", path="/usr/bin:/bin:/usr/local/bin")
        if py is None:
            self.skipTest("no python3 that another user may run")
        p = subprocess.run([py, "-c", code, d.socket], capture_output=True, text=True,
                           timeout=T.DAEMON_WAIT, user=65534, group=65534, extra_groups=[],
                           cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.strip(), "the refused peer got no reply at all")
        lines = p.stdout.strip().split("\n")
        self.assertEqual(len(lines), 1, p.stdout)
        reply = json.loads(lines[0])
        self.assertIs(reply.get("ok"), False, reply)
        self.assertRegex(reply["error"]["message"].lower(), r"permission|denied|not allowed", reply)
        self.assertNotIn("databases", json.dumps(reply))
        self.assertEqual(d.status()["pid"], d.pid)


class BadSocketInput(T.DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.small_db("alpha")
        self.d = self.start_daemon()

    def assert_error_reply(self, data, words=()):
        frames, leftover, err = T.control_exchange(self.d.socket, data)
        self.assertEqual(len(frames), 1, "expected one reply frame, got %r (+%r, %r)\n%s" % (
            frames, leftover, err, self.d.describe()))
        self.assertEqual(leftover, b"")
        r = frames[0]
        self.assertIs(r.get("ok"), False, r)
        msg = r.get("error", {}).get("message", "")
        self.assertTrue(msg, r)
        self.assertTrue(r["error"].get("code"), r)
        if words:
            self.assertTrue(any(w.lower() in msg.lower() for w in words), r)
        # The daemon keeps serving.
        self.assertTrue(self.d.running(), self.d.describe())
        self.assertEqual(self.d.status()["pid"], self.d.pid)
        return r

    def test_oversized_line(self):
        """A line longer than 1 MiB (with or without its newline): an error reply."""
        self.assert_error_reply(b"x" * (T.MAX_LINE_BYTES + 100 * 1024), words=["longer", "bytes", "limit"])
        pad = "p" * (T.MAX_LINE_BYTES + 10)
        self.assert_error_reply(T.encode_frame({"v": 1, "command": "status", "args": {"pad": pad}}),
                                words=["longer", "bytes", "limit"])

    def test_binary_garbage(self):
        """The bytes of a huge length prefix (0x7fffffff), then a newline; other binary."""
        self.assert_error_reply(b"\x7f\xff\xff\xff\n")
        self.assert_error_reply(b"\x00\x00\x00\x10" + b'{"v":1,"command":"status"}' + b"\n")
        self.assert_error_reply(b"\xff\xfe\x00garbage\n")

    def test_empty_line(self):
        self.assert_error_reply(b"\n")
        self.assert_error_reply(b"   \r\n")

    def test_not_json(self):
        self.assert_error_reply(T.encode_frame(b"not json"), words=["json"])
        self.assert_error_reply(T.encode_frame(b'{"v": 1, "command": "status"'))
        self.assert_error_reply(T.encode_frame(b'{"v": 1, "command": "status"}}'))

    def test_json_not_object(self):
        for body in ([], ["status"], "status", 1, None):
            with self.subTest(body=body):
                self.assert_error_reply(T.encode_frame(json.dumps(body).encode()), words=["object"])

    def test_unknown_command(self):
        r = self.assert_error_reply(T.encode_frame({"v": 1, "command": "frobnicate", "args": {}}))
        self.assertIn("frobnicate", r["error"]["message"])

    def test_bad_version(self):
        for v in (99, 0, "1", None):
            with self.subTest(v=v):
                self.assert_error_reply(T.encode_frame({"v": v, "command": "status", "args": {}}),
                                        words=["version"])
        self.assert_error_reply(T.encode_frame({"command": "status", "args": {}}), words=["version"])

    def test_bad_fields(self):
        for body in ({"v": 1}, {"v": 1, "command": ""}, {"v": 1, "command": 7},
                     {"v": 1, "command": "status", "args": []},
                     {"v": 1, "command": "backup", "args": "alpha"}):
            with self.subTest(body=body):
                self.assert_error_reply(T.encode_frame(body))
        # Wrong types inside args never crash the daemon.
        for args in ({"databases": "alpha"}, {"databases": [1, None]}, {"wait": "yes"},
                     {"id": 5}, {"ids": "x"}):
            for cmd in ("backup", "show", "verify", "list"):
                frames, _, _ = T.control_exchange(
                    self.d.socket, T.encode_frame({"v": 1, "command": cmd, "args": args}))
                self.assertTrue(frames and "ok" in frames[-1], (cmd, args, frames))
                self.assertTrue(self.d.running(), self.d.describe())
        self.assertEqual(self.d.status()["pid"], self.d.pid)

    def test_request_id_echoed(self):
        frames = T.control_request(self.d.socket, "status", request_id=42)
        self.assertEqual(len(frames), 1, frames)
        self.assertEqual(frames[0].get("id"), 42, frames)
        self.assertIs(frames[0]["ok"], True, frames)
        frames = T.control_request(self.d.socket, "nosuchcommand", request_id=7)
        self.assertEqual(frames[-1].get("id"), 7, frames)
        self.assertIs(frames[-1]["ok"], False, frames)
        frames = T.control_request(self.d.socket, "backup", {"databases": ["alpha"], "wait": True},
                                   request_id=9)
        self.assertIs(frames[-1]["ok"], True, frames)
        self.assertTrue(all(f.get("id") == 9 for f in frames), frames)
        for bad in ("x", 1.5, [1]):
            with self.subTest(id=bad):
                self.assert_error_reply(T.encode_frame({"v": 1, "id": bad, "command": "status"}))

    def test_two_requests_in_one_connection(self):
        data = T.encode_frame({"v": 1, "command": "status", "args": {}}) * 2
        frames, _, _ = T.control_exchange(self.d.socket, data)
        self.assertEqual(len(frames), 1, frames)
        self.assertIs(frames[0]["ok"], True)
        self.d.status()

    def test_silent_client_is_disconnected(self):
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        partial = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(silent.close)
        self.addCleanup(partial.close)
        silent.connect(self.d.socket)
        partial.connect(self.d.socket)
        partial.sendall(b'{"v": 1, "command": "sta')  # a line without its end
        prefix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(prefix.close)
        prefix.connect(self.d.socket)
        prefix.sendall(b"\x7f\xff\xff\xff")  # a huge binary length prefix, no newline
        t0 = time.monotonic()
        # Meanwhile others are served.
        self.assertEqual(self.d.status()["pid"], self.d.pid)
        self.d.ctl("backup", "--wait", check=0)
        for s in (silent, partial, prefix):
            s.settimeout(T.DAEMON_WAIT)
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
            except socket.timeout:
                self.fail("sqlbakd kept a silent client connected for %ss" % T.DAEMON_WAIT)
            # Closed, at most with one error reply.
            frames, leftover = T.decode_frames(data)
            self.assertEqual(leftover, b"", data)
            self.assertLessEqual(len(frames), 1, frames)
            for f in frames:
                self.assertIs(f.get("ok"), False, f)
        elapsed = time.monotonic() - t0
        print("silent client disconnected after %.1f s" % elapsed)
        # Not before a reasonable grace period (the daemon documents 10 s).
        self.assertGreater(elapsed, 3)
        self.assertEqual(self.d.status()["pid"], self.d.pid)

    def test_many_connections(self):
        """More idle connections than the daemon's limit: it refuses the extra ones with
        an error or keeps them waiting, and serves again once they are gone."""
        conns = []
        try:
            for _ in range(80):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.d.socket)
                conns.append(s)
        finally:
            for s in conns:
                s.close()
        T.wait_until(lambda: self._status_ok(), what="status after many connections")

    def _status_ok(self):
        try:
            frames = T.control_request(self.d.socket, "status", timeout=30)
        except (OSError, AssertionError):
            return False
        return bool(frames) and frames[-1].get("ok") is True


class Logging(T.DaemonTestCase):

    def test_plain_stderr_without_journal(self):
        """JOURNAL_STREAM that does not match stderr: plain lines on stderr."""
        self.small_db("alpha")
        d = self.start_daemon(extra_env={"JOURNAL_STREAM": "1:2"})
        d.ctl("backup", "--wait", check=0)
        self.assertEqual(d.stop(), 0, d.describe())
        log = d.log()
        self.assertRegex(log, r"started")
        self.assertRegex(log, r"backup \S+ of 'alpha'")
        self.assertRegex(log, r"stopping \(SIGTERM\)")

    def test_journal_fields(self):
        journald = os.path.exists("/run/systemd/journal/socket")
        if shutil.which("systemd-cat") and not journald:
            self.skipTest("systemd-cat exists but journald is not running")
        if not journald or not shutil.which("journalctl"):
            self.skipTest("journald is not running")
        # journald runs: give sqlbakd a journal stream as stderr (via systemd-cat) and
        # tell it so through JOURNAL_STREAM, then look for its structured fields.
        name = "jdb%d" % os.getpid()
        self.small_db(name)
        ident = "sqlbak-it-%d" % os.getpid()
        script = ('JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@"')
        penv = dict(os.environ)
        penv.pop("NOTIFY_SOCKET", None)
        p = self.env.spawn(["systemd-cat", "-t", ident, "sh", "-c", script, T.SQLBAKD,
                            "-c", self.env.config], env=penv, stdin=subprocess.DEVNULL)
        sock = os.path.join(self.env.root, "control.sock")
        T.wait_until(lambda: os.path.exists(sock), what="the control socket")
        a = ["-s", sock, "backup", name, "--wait"]
        T.run_ctl(a, check=0)
        os.kill(p.pid, signal.SIGTERM)
        p.wait(timeout=60)

        def entries():
            r = subprocess.run(["journalctl", "-o", "json", "--no-pager", "SQLBAK_DB=" + name],
                               capture_output=True, text=True, timeout=60)
            out = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
            return out if any(e.get("SQLBAK_BACKUP") for e in out) else None
        got = T.wait_until(entries, what="journal entries with SQLBAK_DB=" + name)
        self.assertTrue(all("PRIORITY" in e for e in got), got)


if __name__ == "__main__":
    T.main()
